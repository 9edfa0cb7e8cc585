"""Hugging Face transformers folders and timm models: loaded offline with their own
preprocessing, explained like any classifier; ViT layers without reshapes; attention
rollout. Tiny random models are built in the tests with ``save_pretrained``."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

import picasso
from hf_models import save_vit
from picasso.core.errors import CapabilityError, ModelLoadError
from picasso.visualizations.attention_rollout import rollout

transformers = pytest.importorskip("transformers")

LABELS = {0: "cat", 1: "dog", 2: "fox"}


def tiny_vit(folder, processor: dict | None = None, seed: int = 0):
    """A 2-layer ViT on 32x32 inputs (4x4 patches of 8 pixels), saved with a processor."""
    return save_vit(folder, list(LABELS.values()), processor, seed)


@pytest.fixture(scope="module")
def vit_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("vit")
    tiny_vit(folder)
    return folder


def reference_probabilities(folder, image):
    """The model run through transformers with its own (PIL) image processor."""
    processor = transformers.AutoImageProcessor.from_pretrained(folder, backend="pil")
    module = transformers.AutoModelForImageClassification.from_pretrained(folder).eval()
    with torch.no_grad():
        logits = module(**processor(images=image, return_tensors="pt")).logits
    return torch.softmax(logits, dim=1)[0].numpy()


@pytest.mark.parametrize(
    ("processor", "size"),
    [
        ({"size": {"height": 32, "width": 32}}, (57, 41)),  # stretched
        (  # shorter side to 36, then the centre 32x32
            {
                "size": {"shortest_edge": 36},
                "do_center_crop": True,
                "crop_size": {"height": 32, "width": 32},
            },
            (80, 45),
        ),
        ({"size": {"height": 32, "width": 32}, "resample": 3}, (70, 50)),  # bicubic
    ],
)
def test_probabilities_equal_transformers_with_its_processor(
    tmp_path, astronaut_small, processor, size
):
    tiny_vit(tmp_path, processor)
    image = Image.fromarray(astronaut_small).resize(size)
    model = picasso.load_model(tmp_path)
    assert model.info.labels == ("cat", "dog", "fox") and model.info.input_size == (32, 32)
    assert model.info.framework == "transformers"
    ours = model.probabilities(model.preprocess([image]))[0]
    np.testing.assert_allclose(ours, reference_probabilities(tmp_path, image), atol=1e-5)
    assert abs(ours - 1 / 3).max() > 1e-3  # not a uniform answer


def test_a_card_or_keywords_override_the_processor(vit_folder):
    model = picasso.load_model(vit_folder, mean=(0.0, 0.0, 0.0), labels=["a", "b", "c"])
    assert model.info.preprocessing.mean == (0.0, 0.0, 0.0)
    assert model.info.preprocessing.std == pytest.approx((0.2, 0.25, 0.3))
    assert model.info.labels == ("a", "b", "c")


def test_grad_cam_on_a_vit_layer_equals_pytorch_grad_cam_with_the_usual_reshape(
    vit_folder, astronaut_small
):
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    model = picasso.load_model(vit_folder)
    layer = "vit.layers.1.layernorm_before"  # named_modules() paths, no reshape by hand
    assert layer in model.layer_names()
    exp = picasso.explain(model, astronaut_small, "grad-cam", target=2, layer=layer)
    batch = torch.from_numpy(model.preprocess([Image.fromarray(astronaut_small)]))

    def reshape(tensor, side=4):  # pytorch-grad-cam's ViT tutorial
        result = tensor[:, 1:, :].reshape(tensor.size(0), side, side, tensor.size(2))
        return result.transpose(2, 3).transpose(1, 2)

    class Logits(torch.nn.Module):  # pytorch-grad-cam wants a tensor out
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x):
            return self.inner(x).logits

    wrapped = Logits(model.module)
    target_layer = dict(model.module.named_modules())[layer]
    with GradCAM(model=wrapped, target_layers=[target_layer], reshape_transform=reshape) as cam:
        ref = cam(input_tensor=batch, targets=[ClassifierOutputTarget(2)])
    assert ref.std() > 0.01
    np.testing.assert_allclose(exp.attributions, ref, atol=1e-3, rtol=0)


def test_attention_rollout_equals_the_formula_on_the_models_own_attentions(
    vit_folder, astronaut_small
):
    model = picasso.load_model(vit_folder)
    assert "attentions" in model.capabilities
    exp = picasso.explain(model, astronaut_small, "attention-rollout", top_k=2)
    assert exp.extras == {"layers": 2, "grid": 4}
    np.testing.assert_array_equal(exp.attributions[0], exp.attributions[1])  # class-free
    batch = torch.from_numpy(model.preprocess([Image.fromarray(astronaut_small)]))
    with torch.no_grad():
        attentions = model.module(batch, output_attentions=True).attentions
    flow = torch.eye(17)  # the formula, written again with torch
    for layer in attentions:
        mixed = (layer[0].mean(dim=0) + torch.eye(17)) / 2
        flow = (mixed / mixed.sum(dim=-1, keepdim=True)) @ flow
    patches = flow[0, 1:].reshape(4, 4).numpy()
    small = (patches - patches.min()) / (patches.max() - patches.min())
    # the map is the patch grid resized: its centre pixels of each patch order as the grid
    centres = exp.attribution[4::8, 4::8]
    assert np.corrcoef(centres.ravel(), small.ravel())[0, 1] > 0.95
    assert exp.attribution.max() == pytest.approx(1.0) and exp.attribution.min() == 0.0


def test_rollout_known_answers():
    tokens = 5
    identity = np.broadcast_to(np.eye(tokens), (1, 2, tokens, tokens))
    np.testing.assert_allclose(rollout([identity, identity])[0], np.eye(tokens))
    to_patch = np.zeros((1, 1, tokens, tokens))
    to_patch[0, 0, :, 3] = 1.0  # every token attends to token 3 only
    flow = rollout([to_patch])[0]
    np.testing.assert_allclose(flow[0], [0.5, 0, 0, 0.5, 0])  # half itself, half token 3
    sharp = rollout([np.random.default_rng(0).random((1, 2, tokens, tokens))], discard_ratio=0.5)
    assert np.allclose(sharp.sum(axis=-1), 1)


def test_models_without_attention_weights_are_refused_with_the_reason(tiny_model, astronaut_small):
    with pytest.raises(CapabilityError, match="only Hugging Face transformers"):
        picasso.explain(tiny_model, astronaut_small, "attention-rollout")


def test_heads_picasso_does_not_explain_are_refused_with_what_they_are(tmp_path, vit_folder):
    """Universal (panoptic/instance) segmentation and depth heads are refused before
    their weights load, with what they are."""
    for name in ("model.safetensors", "preprocessor_config.json"):
        (tmp_path / name).write_bytes((vit_folder / name).read_bytes())
    config = json.loads((vit_folder / "config.json").read_text())
    for architecture, what in (
        ("Mask2FormerForUniversalSegmentation", "is a segmentation model"),
        ("DPTForDepthEstimation", "is not an image model Picasso knows"),
    ):
        config["architectures"] = [architecture]
        (tmp_path / "config.json").write_text(json.dumps(config))
        with pytest.raises(ModelLoadError, match=f"{architecture} {what}"):
            picasso.load_model(tmp_path)


def test_a_broken_folder_is_a_clear_error(tmp_path, vit_folder):
    for name in ("config.json", "preprocessor_config.json"):
        (tmp_path / name).write_text((vit_folder / name).read_text())
    (tmp_path / "model.safetensors").write_bytes(b"not weights")
    with pytest.raises(ModelLoadError, match="transformers could not load it"):
        picasso.load_model(tmp_path)
    (tmp_path / "preprocessor_config.json").write_text("{oops")
    with pytest.raises(ModelLoadError, match="not valid JSON"):
        picasso.load_model(tmp_path)
    assert json.loads((vit_folder / "config.json").read_text())["architectures"]


def test_from_timm_takes_timms_preprocessing_and_equals_its_transform(astronaut_small):
    timm = pytest.importorskip("timm")
    torch.manual_seed(0)
    net = timm.create_model("resnet18", pretrained=False, num_classes=1000).eval()
    model = picasso.from_timm(net)
    pre = model.info.preprocessing
    assert pre.input_size == (224, 224) and pre.interpolation == "bicubic"
    assert pre.resize == "center-crop" and pre.shorter_side == 235  # floor(224 / 0.95)
    assert model.info.labels[0] == "tench, Tinca tinca"
    # timm's own eval transform; 235 - 224 is odd: the crop rounds as torchvision's does
    image = Image.fromarray(astronaut_small).resize((300, 200))  # -> 352 x 235
    transform = timm.data.create_transform(**timm.data.resolve_model_data_config(net))
    expected = transform(image).numpy()
    ours = model.preprocess([image])[0]
    assert np.abs(ours - expected).max() < 1e-4
    exp = picasso.explain(model, image, "grad-cam")
    assert exp.extras["layer"] == "layer4"
