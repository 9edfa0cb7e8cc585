"""Segmentation models: the explained score of class k is the sum of k's logits over a
region (pytorch-grad-cam's SemanticSegmentationTarget); every method runs on it and
equals the references on the same score."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image

import picasso
from hf_models import save_segformer
from picasso.core.errors import CapabilityError, InvalidImageError, TargetError

LABELS = ["background", "tank", "sky"]


@pytest.fixture(scope="module")
def segmenter():
    torch.manual_seed(0)
    module = torchvision.models.segmentation.lraspp_mobilenet_v3_large(
        weights=None, weights_backbone=None, num_classes=3
    ).eval()
    model = picasso.from_torch(module, input_size=(64, 64), labels=LABELS)
    return module, model


@pytest.fixture(scope="module")
def scene():
    from picasso.demo import demo_images

    return np.asarray(Image.open(demo_images("tank-overcast")[0]).convert("RGB"))


class Out(torch.nn.Module):
    """The module's per-pixel logits as a tensor (pytorch-grad-cam's wrapper)."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return self.inner(x)["out"]


def test_torchvision_segmentation_models_are_recognised(segmenter, scene):
    _, model = segmenter
    assert model.info.task == "segmentation"
    exp = picasso.explain(model, scene, "saliency")
    labels = exp.segmentation
    assert labels.shape == (64, 64)
    shares = {s["index"]: s["share"] for s in exp.extras["segments"]}
    assert sum(shares.values()) == pytest.approx(1.0)
    top = max(shares, key=shares.get)
    assert exp.targets[0].index == top and exp.targets[0].probability == pytest.approx(shares[top])


def test_grad_cam_equals_pytorch_grad_cam_with_the_segmentation_target(segmenter, scene):
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import SemanticSegmentationTarget

    module, model = segmenter
    layer = "backbone.16"
    exp = picasso.explain(model, scene, "grad-cam", layer=layer)
    k = exp.targets[0].index
    batch = torch.from_numpy(model.preprocess([Image.fromarray(scene)]))
    mask = (exp.segmentation == k).astype(np.float32)
    target_layer = dict(module.named_modules())[layer]
    with GradCAM(model=Out(module), target_layers=[target_layer]) as cam:
        ref = cam(input_tensor=batch, targets=[SemanticSegmentationTarget(k, mask)])
    assert ref.std() > 0.01
    np.testing.assert_allclose(exp.attributions, ref, atol=1e-3, rtol=0)


@pytest.mark.parametrize("region", [None, {"boxes": [(8, 30, 40, 50)]}])
def test_occlusion_and_saliency_equal_captum_on_the_region_sum(segmenter, scene, region):
    from captum.attr import Occlusion, Saliency

    module, model = segmenter
    occlusion = picasso.explain(
        model, scene, "occlusion", score="logit", window=8, stride=8, region=region
    )
    k = occlusion.targets[0].index  # the class covering most pixels
    saliency = picasso.explain(model, scene, "saliency", region=region, target=k)
    batch = torch.from_numpy(model.preprocess([Image.fromarray(scene)]))
    if region is None:
        mask = torch.from_numpy((occlusion.segmentation == k).astype(np.float32))
    else:
        mask = torch.zeros(64, 64)
        mask[30:50, 8:40] = 1

    def region_sum(x):
        return (module(x)["out"] * mask).sum(dim=(2, 3))

    ref = Occlusion(region_sum).attribute(
        batch, sliding_window_shapes=(3, 8, 8), strides=(3, 8, 8), baselines=0.0, target=k
    )
    expected = ref[0, 0].detach().numpy()
    assert np.abs(expected).max() > 0
    # the scores are float32 sums over up to 4,096 pixels: they agree to the rounding
    # of such sums (1e-6 of the summed magnitudes), not to 1e-6 of their differences
    with torch.no_grad():
        magnitude = float((module(batch)["out"][0, k].abs() * mask).sum())
    np.testing.assert_allclose(occlusion.attribution, expected, atol=1e-6 * magnitude, rtol=0)
    grads = Saliency(region_sum).attribute(batch, target=k, abs=True)
    expected = grads.amax(dim=1)[0].numpy()
    np.testing.assert_allclose(
        saliency.attribution, expected, atol=1e-5 * expected.max(), rtol=1e-4
    )
    assert occlusion.extras["region"] == ("given" if region else "predicted pixels")


def test_a_region_changes_the_map(segmenter, scene):
    _, model = segmenter
    whole = picasso.explain(model, scene, "saliency", target=1, region={"boxes": [(0, 0, 64, 64)]})
    corner = picasso.explain(model, scene, "saliency", target=1, region={"boxes": [(0, 0, 16, 16)]})
    assert not np.allclose(whole.attribution, corner.attribution)


def test_bad_regions_and_targets_get_clear_errors(segmenter, scene, tiny_model):
    _, model = segmenter
    with pytest.raises(InvalidImageError, match="outside the 64x64 image"):
        picasso.explain(model, scene, "saliency", region={"boxes": [(64, 0, 70, 8)]})
    with pytest.raises(TargetError, match="the region is empty"):
        everything_but_all = {"boxes": [(0, 0, 64, 64)], "invert": True}
        picasso.explain(model, scene, "saliency", region=everything_but_all)
    absent = picasso.explain(model, scene, "saliency").extras["segments"]
    missing = [k for k in range(3) if k not in {s["index"] for s in absent}]
    if missing:
        with pytest.raises(TargetError, match="covers no pixel of the prediction; give a region"):
            picasso.explain(model, scene, "saliency", target=missing[0])
    with pytest.raises(TargetError, match="a region is for segmentation models"):
        picasso.explain(tiny_model, scene, "saliency", region={"boxes": [(0, 0, 4, 4)]})
    with pytest.raises(TargetError, match="target class 5 does not exist"):
        picasso.explain(model, scene, "saliency", target=5)


def test_what_serves_classifiers_only_says_so(segmenter, scene):
    _, model = segmenter
    with pytest.raises(CapabilityError, match="sanity checks serve classifiers"):
        picasso.sanity_check(model, scene, "saliency")
    with pytest.raises(CapabilityError, match="serve classifiers"):
        picasso.predict(model, scene)


def test_results_carry_the_predicted_segmentation(segmenter, scene, tmp_path):
    _, model = segmenter
    exp = picasso.explain(model, scene, "grad-cam", layer="backbone.16")
    paths = exp.save(tmp_path)
    assert Image.open(paths["segmentation"]).size == (64, 64)
    summary = exp.summary()
    assert summary["model"]["task"] == "segmentation"
    assert summary["extras"]["segments"][0]["label"] in LABELS


def test_hugging_face_semantic_segmentation_folders_load(tmp_path, scene):
    transformers = pytest.importorskip("transformers")
    save_segformer(tmp_path, LABELS)
    model = picasso.load_model(tmp_path)
    assert model.info.task == "segmentation" and model.info.labels == tuple(LABELS)
    logits = model.segment(model.preprocess([Image.fromarray(scene)]))
    assert logits.shape == (1, 3, 64, 64)  # the quarter-size head, resized as HF does
    processor = transformers.AutoImageProcessor.from_pretrained(tmp_path, backend="pil")
    module = transformers.AutoModelForSemanticSegmentation.from_pretrained(tmp_path).eval()
    with torch.no_grad():
        out = module(**processor(images=Image.fromarray(scene), return_tensors="pt")).logits
    reference = processor.post_process_semantic_segmentation(
        transformers.modeling_outputs.SemanticSegmenterOutput(logits=out), target_sizes=[(64, 64)]
    )[0].numpy()
    np.testing.assert_array_equal(logits[0].argmax(axis=0), reference)
    exp = picasso.explain(model, scene, "grad-cam")
    assert exp.attribution.shape == (64, 64)


def test_the_cli_takes_a_region(tmp_path, scene):
    pytest.importorskip("transformers")
    from click.testing import CliRunner

    from picasso.cli import build_cli
    from picasso.plugins import discover

    folder = save_segformer(tmp_path / "segformer")
    Image.fromarray(scene).save(tmp_path / "scene.png")
    cli = build_cli(discover(plugin_dirs=[]))
    args = ["explain", "-q", "-m", str(folder), "--method", "saliency", str(tmp_path / "scene.png")]
    result = CliRunner().invoke(cli, [*args, "--region", "0,0,32,32", "-o", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "scene.saliency.segmentation.png").is_file()
    bad = CliRunner().invoke(cli, [*args, "--region", "0,0,32"])
    assert bad.exit_code == 2 and "expected four whole numbers" in bad.output


class TinySegmenter(torch.nn.Module):
    """Two convolutions at half resolution, logits resized to the input (bilinear)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.features = torch.nn.Sequential(
            torch.nn.Conv2d(3, 8, 3, stride=2, padding=1),
            torch.nn.ReLU(),
            torch.nn.Conv2d(8, 3, 3, padding=1),
        )

    def forward(self, x):
        logits = self.features(x)
        return torch.nn.functional.interpolate(logits, size=x.shape[-2:], mode="bilinear")


def test_onnx_segmentation_models_explain_with_forward_passes(scene, tmp_path):
    """A segmentation network exported to ONNX: the same segmentation, and occlusion
    equal to the PyTorch module's on the same region sums; gradient methods say why
    not. (torchvision's LR-ASPP does not survive the TorchScript ONNX export: its
    outputs differ by 2 from the module's, so a network built here stands in.)"""
    pytest.importorskip("onnxruntime")
    module = TinySegmenter().eval()
    model = picasso.from_torch(module, input_size=(64, 64), labels=LABELS, task="segmentation")
    torch.onnx.export(
        module,
        torch.rand(1, 3, 64, 64),
        tmp_path / "seg.onnx",
        dynamo=False,
        input_names=["image"],
        dynamic_axes={"image": {0: "batch"}},
    )
    (tmp_path / "seg.toml").write_text(
        'file = "seg.onnx"\ntask = "segmentation"\nlabels = ["background", "tank", "sky"]\n'
    )
    onnx_model = picasso.load_model(tmp_path / "seg.toml")
    batch = model.preprocess([Image.fromarray(scene)])
    np.testing.assert_allclose(onnx_model.segment(batch), model.segment(batch), atol=1e-4)
    for region in (None, {"boxes": [(8, 30, 40, 50)]}):
        ours = picasso.explain(
            onnx_model, scene, "occlusion", score="logit", window=16, stride=16, region=region
        )
        reference = picasso.explain(
            model, scene, "occlusion", score="logit", window=16, stride=16, region=region
        )
        assert ours.targets == reference.targets
        np.testing.assert_array_equal(ours.segmentation, reference.segmentation)
        scale = np.abs(reference.attribution).max()
        assert scale > 0
        np.testing.assert_allclose(ours.attribution, reference.attribution, atol=1e-4 * scale)
    with pytest.raises(CapabilityError, match="forward passes only here: explain them with"):
        picasso.explain(onnx_model, scene, "saliency")


def test_keras_segmentation_models_sum_their_logits_over_the_region(scene, tmp_path):
    keras = pytest.importorskip("keras")
    keras.utils.set_random_seed(0)
    inputs = keras.Input((64, 64, 3))
    hidden = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(inputs)
    logits = keras.layers.Conv2D(3, 3, padding="same")(hidden)
    keras.Model(inputs, logits).save(tmp_path / "seg.keras")
    (tmp_path / "seg.toml").write_text('file = "seg.keras"\ntask = "segmentation"\n')
    model = picasso.load_model(tmp_path / "seg.toml")
    assert model.info.layout == "NHWC"
    batch = model.preprocess([Image.fromarray(scene)])
    dense = model.segment(batch)
    assert dense.shape == (1, 3, 64, 64)
    exp = picasso.explain(model, scene, "occlusion", score="logit", window=16, stride=16)
    k = exp.targets[0].index
    mask = (exp.segmentation == k).astype(np.float32)
    # the first window's drop, recomputed from the network's own outputs
    hidden_batch = batch.copy()
    hidden_batch[:, :, :16, :16] = 0.0
    drop = (dense[0, k] * mask).sum() - (model.segment(hidden_batch)[0, k] * mask).sum()
    np.testing.assert_allclose(exp.attribution[:16, :16], drop, rtol=1e-4, atol=1e-5)
    assert exp.attribution.std() > 0
