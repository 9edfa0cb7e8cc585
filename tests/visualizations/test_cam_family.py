"""The CAM family equals pytorch-grad-cam on the same model, layer and classes:
HiRes-CAM, Layer-CAM, Eigen-CAM, Score-CAM, Ablation-CAM, Guided Backprop and Guided
Grad-CAM."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image
from pytorch_grad_cam import (
    AblationCAM,
    EigenCAM,
    GradCAM,
    GuidedBackpropReLUModel,
    HiResCAM,
    LayerCAM,
    ScoreCAM,
)
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

import picasso
from picasso.core.errors import CapabilityError
from picasso.demo import demo_images
from picasso.visualizations.cam_family import upsample_corners

REFERENCES = {
    "hirescam": HiResCAM,
    "layer-cam": LayerCAM,
    "eigen-cam": EigenCAM,
    "score-cam": ScoreCAM,
    "ablation-cam": AblationCAM,
}


@pytest.fixture(scope="module")
def resnet():
    torch.manual_seed(0)
    module = torchvision.models.resnet18(num_classes=10).eval()
    model = picasso.from_torch(
        module, input_size=(64, 80), mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)
    )
    return module, model


def reference(method, module, batch, layer, targets):
    x = torch.from_numpy(np.repeat(batch, len(targets), axis=0))
    with REFERENCES[method](model=module, target_layers=[layer]) as cam:
        if method in ("score-cam", "ablation-cam"):
            cam.batch_size = 16
        return cam(input_tensor=x, targets=[ClassifierOutputTarget(t) for t in targets])


@pytest.mark.parametrize(
    ("method", "layer"),
    [
        ("hirescam", "layer4"),
        ("layer-cam", "layer4"),
        ("layer-cam", "layer2"),  # Layer-CAM is meant for earlier layers too
        ("eigen-cam", "layer4"),
        ("score-cam", "layer3"),
        ("ablation-cam", "layer3"),
    ],
)
def test_resnet18_matches_pytorch_grad_cam(resnet, astronaut_small, method, layer):
    module, model = resnet
    exp = picasso.explain(model, astronaut_small, method=method, top_k=2, layer=layer)
    batch = model.preprocess([Image.fromarray(astronaut_small)])
    targets = [t.index for t in exp.targets]
    ref = reference(method, module, batch, dict(module.named_modules())[layer], targets)
    assert ref.std() > 0.01  # not a flat map
    np.testing.assert_allclose(exp.attributions, ref, atol=1e-3, rtol=0)


@pytest.mark.parametrize("method", ["hirescam", "layer-cam", "score-cam", "ablation-cam"])
def test_demo_models_match_pytorch_grad_cam(method):
    model = picasso.load_model("demo:tanks-biased")
    image = demo_images("tank-sunny")[0]
    exp = picasso.explain(model, image, method=method, target=1, layer="features.4")
    batch = model.preprocess([Image.open(image).convert("RGB")])
    ref = reference(method, model.module, batch, model.module.features[4], [1])
    np.testing.assert_allclose(exp.attributions, ref, atol=1e-3, rtol=0)


def test_eigen_cam_is_the_same_for_every_class(resnet, astronaut_small):
    _, model = resnet
    exp = picasso.explain(model, astronaut_small, method="eigen-cam", top_k=3)
    np.testing.assert_array_equal(exp.attributions[0], exp.attributions[2])


def test_the_per_channel_methods_report_progress_per_channel(resnet, astronaut_small):
    _, model = resnet
    seen = []
    picasso.explain(
        model,
        astronaut_small,
        "score-cam",
        top_k=2,
        layer="layer2",
        progress=lambda d, t: seen.append((d, t)),
    )
    assert seen[-1] == (256, 256)  # 2 targets x 128 channels
    assert len(seen) > 10 and all(a[0] <= b[0] for a, b in itertools.pairwise(seen))


def guided_reference(module, batch, target):
    out = GuidedBackpropReLUModel(model=module, device="cpu")(torch.from_numpy(batch), target)
    return np.abs(out).max(axis=2)  # (H, W, C) -> |.| max over channels


def test_guided_backprop_matches_pytorch_grad_cam_and_captum(resnet, astronaut_small):
    from captum.attr import GuidedBackprop as CaptumGuidedBackprop

    module, model = resnet
    exp = picasso.explain(model, astronaut_small, method="guided-backprop", top_k=2)
    batch = model.preprocess([Image.fromarray(astronaut_small)])
    for i, target in enumerate(exp.targets):
        ref = guided_reference(module, batch, target.index)
        assert ref.max() > 0
        np.testing.assert_allclose(exp.attributions[i], ref, atol=1e-6 * ref.max(), rtol=1e-4)
        captum = CaptumGuidedBackprop(module).attribute(
            torch.from_numpy(batch), target=target.index
        )
        np.testing.assert_allclose(
            exp.attributions[i],
            captum.abs().amax(dim=1)[0].numpy(),
            atol=1e-6 * ref.max(),
            rtol=1e-4,
        )
    # the guided gradients differ from plain ones (the guide does something)
    plain = picasso.explain(model, astronaut_small, method="saliency", target=exp.targets[0].index)
    assert not np.allclose(plain.attribution, exp.attribution, rtol=0.05)


def test_guided_grad_cam_is_guided_backprop_times_grad_cam(resnet, astronaut_small):
    module, model = resnet
    exp = picasso.explain(model, astronaut_small, method="guided-grad-cam", target=3)
    batch = model.preprocess([Image.fromarray(astronaut_small)])
    with GradCAM(model=module, target_layers=[module.layer4]) as cam:
        grad_cam = cam(input_tensor=torch.from_numpy(batch), targets=[ClassifierOutputTarget(3)])[0]
    guided = guided_reference(module, batch, 3)
    expected = grad_cam * guided
    np.testing.assert_allclose(exp.attribution, expected, atol=1e-3 * expected.max(), rtol=0)
    assert exp.extras["layer"] == "layer4"


def test_upsampling_matches_torch_align_corners():
    maps = np.random.default_rng(0).random((3, 5, 7)).astype(np.float32)
    ref = torch.nn.UpsamplingBilinear2d(size=(13, 20))(torch.from_numpy(maps)[None])[0]
    np.testing.assert_allclose(upsample_corners(maps, 13, 20), ref.numpy(), atol=1e-5)


@pytest.mark.parametrize(
    ("name", "method", "fragment"),
    [
        ("demo:tanks-fair-onnx", "guided-backprop", "guided-gradients"),
        ("demo:tanks-fair-keras", "ablation-cam", "layer-edits"),
        ("demo:tanks-fair-onnx", "score-cam", "layers"),
    ],
)
def test_models_without_the_capability_are_refused_with_the_reason(name, method, fragment):
    with pytest.raises(CapabilityError, match=fragment):
        picasso.explain(name, demo_images("tank-sunny")[0], method=method)
