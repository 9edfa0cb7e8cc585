"""ONNX models: the same maps as the PyTorch original, layouts, and bad files."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image

import picasso
from conftest import TinyConvNet, assert_maps_close, seeded
from picasso.core.errors import CapabilityError, ModelLoadError
from picasso.demo import demo_images
from picasso.models import onnx_adapter
from tools.demo.export import to_onnx


def explain_both(torch_model, onnx_model, image, method, **settings):
    a = picasso.explain(torch_model, image, method=method, top_k=2, **settings)
    b = picasso.explain(
        onnx_model, image, method=method, target=[t.index for t in a.targets], **settings
    )
    return a, b


@pytest.mark.parametrize(
    ("name", "image"),
    [("tanks-biased", "tank-overcast"), ("tanks-fair", "tank-sunny"), ("digits", "digit-7")],
)
def test_demo_exports_agree_with_pytorch(name, image):
    original = picasso.load_model(f"demo:{name}")
    exported = picasso.load_model(f"demo:{name}-onnx")
    assert exported.info.framework == "onnx" and exported.info.labels == original.info.labels
    path = demo_images(image)[0]
    batch = original.preprocess([Image.open(path).convert("RGB")])
    np.testing.assert_allclose(
        exported.probabilities(batch), original.probabilities(batch), atol=1e-5, rtol=0
    )
    a, b = explain_both(original, exported, path, "occlusion", window=8, stride=4)
    assert b.extras["engine"] == "dense"
    np.testing.assert_allclose(b.attributions, a.attributions, atol=1e-4, rtol=0)
    a, b = explain_both(original, exported, path, "saliency")
    assert_maps_close(b.attributions, a.attributions)


def test_standard_architecture_agrees(tmp_path, astronaut_small):
    torch.manual_seed(0)
    module = torchvision.models.resnet18(num_classes=7).eval()
    to_onnx(module, tmp_path / "resnet.onnx", (1, 3, 64, 80))
    exported = picasso.load_model(
        tmp_path / "resnet.onnx", mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)
    )
    assert exported.info.input_size == (64, 80)  # read from the graph
    original = picasso.from_torch(
        module, input_size=(64, 80), mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)
    )
    batch = original.preprocess([Image.fromarray(astronaut_small)])
    np.testing.assert_allclose(
        exported.probabilities(batch), original.probabilities(batch), atol=1e-5, rtol=0
    )
    a, b = explain_both(original, exported, astronaut_small, "occlusion", window=16, stride=8)
    np.testing.assert_allclose(b.attributions, a.attributions, atol=1e-4, rtol=0)


class ChannelsLastInput(torch.nn.Module):
    """A network whose exported graph takes NHWC images (as Keras/TF exports do)."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return self.inner(x.permute(0, 3, 1, 2))


def test_nhwc_graphs_are_handled_by_the_adapter(tmp_path, astronaut_small):
    inner = seeded(TinyConvNet(), seed=3)
    to_onnx(ChannelsLastInput(inner), tmp_path / "nhwc.onnx", (1, 20, 24, 3))
    exported = picasso.load_model(tmp_path / "nhwc.onnx")
    assert exported.layout == "NHWC" and exported.info.input_size == (20, 24)
    original = picasso.from_torch(inner, input_size=(20, 24))
    a, b = explain_both(original, exported, astronaut_small, "saliency")
    assert_maps_close(b.attributions, a.attributions)
    a, b = explain_both(original, exported, astronaut_small, "occlusion", window=6, stride=3)
    np.testing.assert_allclose(b.attributions, a.attributions, atol=1e-4, rtol=0)


def test_fixed_batch_graphs_run_in_chunks(tmp_path, astronaut_small):
    module = seeded(TinyConvNet(), seed=4)
    to_onnx(module, tmp_path / "b1.onnx", (1, 3, 16, 16), dynamic_batch=False)
    exported = picasso.load_model(tmp_path / "b1.onnx")
    assert exported.static_batch == 1
    original = picasso.from_torch(module, input_size=(16, 16))
    a, b = explain_both(
        original, exported, astronaut_small, "occlusion", window=4, stride=2, batch_size=5
    )
    np.testing.assert_allclose(b.attributions, a.attributions, atol=1e-4, rtol=0)


def test_without_onnx2torch_gradient_methods_name_the_extra(monkeypatch, astronaut_small):
    model = picasso.load_model("demo:digits-onnx")
    monkeypatch.setattr(onnx_adapter, "gradients_available", lambda: False)
    with pytest.raises(CapabilityError, match=r"picasso-vision\[onnx-torch\]"):
        picasso.explain(model, astronaut_small, method="saliency")
    picasso.explain(model, astronaut_small, method="occlusion", window=8)  # forward-only works


def test_bad_onnx_files_fail_at_load_naming_the_file(tmp_path):
    good = (onnx_adapter.Path(picasso.load_model("demo:digits-onnx").info.path)).read_bytes()
    (tmp_path / "truncated.onnx").write_bytes(good[: len(good) // 2])
    (tmp_path / "garbage.onnx").write_bytes(b"\x00not onnx at all")
    for name in ("truncated.onnx", "garbage.onnx"):
        with pytest.raises(ModelLoadError, match=name):
            picasso.load_model(tmp_path / name, input_size=(32, 32))
    # outputs a map, not class scores
    to_onnx(torch.nn.Conv2d(3, 2, 3).eval(), tmp_path / "map.onnx", (1, 3, 8, 8))
    with pytest.raises(ModelLoadError, match=r"map\.onnx.*expected \(batch, classes\)"):
        picasso.load_model(tmp_path / "map.onnx")
    with pytest.raises(ModelLoadError, match=r"network takes 8x8 images"):
        picasso.load_model(tmp_path / "map.onnx", input_size=(9, 9))


def test_graphs_with_deduplicated_initializers_convert(tmp_path, astronaut_small):
    """docs/own-model.md's export of a freshly initialised ResNet-18: the exporter folds
    its batch norms and deduplicates the equal biases into Identity nodes, which
    onnx2torch cannot resolve; they are folded back before conversion."""
    import onnx

    torch.manual_seed(0)
    module = torchvision.models.resnet18(num_classes=10).eval()
    path = tmp_path / "resnet.onnx"
    torch.onnx.export(
        module,
        (torch.zeros(1, 3, 64, 64),),
        str(path),
        dynamo=False,
        opset_version=17,
        input_names=["image"],
        output_names=["scores"],
        dynamic_axes={"image": {0: "batch"}, "scores": {0: "batch"}},
    )
    assert any(n.op_type == "Identity" for n in onnx.load(str(path)).graph.node)
    exported = picasso.load_model(path)
    original = picasso.from_torch(module, input_size=(64, 64))
    a, b = explain_both(original, exported, astronaut_small, "saliency")
    assert_maps_close(b.attributions, a.attributions)
