"""Grad-CAM and Grad-CAM++ equal pytorch-grad-cam's GradCAM / GradCAMPlusPlus."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image
from pytorch_grad_cam import GradCAM as ReferenceGradCAM
from pytorch_grad_cam import GradCAMPlusPlus as ReferenceGradCAMPlusPlus
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

import picasso
from picasso.core.errors import SettingsError
from picasso.demo import demo_images
from picasso.visualizations.imaging import resize_bilinear

REFERENCES = {"grad-cam": ReferenceGradCAM, "grad-cam++": ReferenceGradCAMPlusPlus}


def reference_maps(method, module, batch, layer_module, targets):
    x = torch.from_numpy(np.repeat(batch, len(targets), axis=0))
    with REFERENCES[method](model=module, target_layers=[layer_module]) as cam:
        return cam(input_tensor=x, targets=[ClassifierOutputTarget(t) for t in targets])


@pytest.mark.parametrize("method", ["grad-cam", "grad-cam++"])
def test_resnet18_matches_pytorch_grad_cam(method, astronaut_small):
    torch.manual_seed(0)
    module = torchvision.models.resnet18(num_classes=10).eval()
    model = picasso.from_torch(
        module, input_size=(96, 128), mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)
    )
    exp = picasso.explain(model, astronaut_small, method=method, top_k=3)
    assert exp.extras["layer"] == "layer4"  # the last layer with a spatial output
    batch = model.preprocess([Image.fromarray(astronaut_small)])
    ref = reference_maps(method, module, batch, module.layer4, [t.index for t in exp.targets])
    assert ref.std() > 0.01
    np.testing.assert_allclose(exp.attributions, ref, atol=1e-4, rtol=0)


@pytest.mark.parametrize("method", ["grad-cam", "grad-cam++"])
@pytest.mark.parametrize("name", ["tanks-biased", "tanks-fair", "digits"])
def test_demo_models_match_pytorch_grad_cam(method, name):
    model = picasso.load_model(f"demo:{name}")
    image = demo_images("digit-3" if name == "digits" else "tank-overcast")[0]
    exp = picasso.explain(model, image, method=method, top_k=2, layer="features.4")
    batch = model.preprocess([Image.open(image).convert("RGB")])
    ref = reference_maps(
        method, model.module, batch, model.module.features[4], [t.index for t in exp.targets]
    )
    np.testing.assert_allclose(exp.attributions, ref, atol=1e-4, rtol=0)


def test_keras_export_gives_the_same_grad_cam():
    original = picasso.load_model("demo:tanks-fair")
    exported = picasso.load_model("demo:tanks-fair-keras")
    image = demo_images("tank-overcast")[0]
    a = picasso.explain(original, image, method="grad-cam", target=1)
    b = picasso.explain(exported, image, method="grad-cam", target=1)
    assert a.extras["layer"] == "features" and b.extras["layer"].startswith("re_lu")
    np.testing.assert_allclose(b.attribution, a.attribution, atol=1e-4)


def test_bad_layers_are_refused(astronaut_small):
    model = picasso.load_model("demo:digits")
    with pytest.raises(SettingsError, match="has no layer 'nope'"):
        picasso.explain(model, astronaut_small, method="grad-cam", layer="nope")
    with pytest.raises(SettingsError, match="neither a spatial map nor a square grid of tokens"):
        picasso.explain(model, astronaut_small, method="grad-cam", layer="classifier")


def test_resize_matches_opencv():
    import cv2

    image = np.random.default_rng(0).random((7, 5)).astype(np.float32)
    for height, width in ((28, 20), (64, 33), (7, 5)):
        np.testing.assert_allclose(
            resize_bilinear(image, height, width), cv2.resize(image, (width, height)), atol=1e-5
        )


def tiny_vit():
    torch.manual_seed(0)
    vit = torchvision.models.VisionTransformer(
        image_size=32,
        patch_size=8,
        num_layers=2,
        num_heads=2,
        hidden_dim=16,
        mlp_dim=32,
        num_classes=3,
    ).eval()
    torch.nn.init.normal_(vit.heads.head.weight, std=0.5)  # torchvision starts it at zero
    return vit


@pytest.mark.parametrize("method", ["grad-cam", "grad-cam++"])
def test_vision_transformer_tokens_are_reshaped(method, astronaut_small):
    module = tiny_vit()
    model = picasso.from_torch(module, input_size=(32, 32))
    layer = "encoder.layers.encoder_layer_1.ln_1"
    exp = picasso.explain(model, astronaut_small, method=method, top_k=2, layer=layer)
    batch = model.preprocess([Image.fromarray(astronaut_small)])

    def reshape(tensor):  # pytorch-grad-cam's vit_reshape_transform for a 4x4 grid
        return tensor[:, 1:, :].reshape(tensor.size(0), 4, 4, tensor.size(2)).permute(0, 3, 1, 2)

    x = torch.from_numpy(np.repeat(batch, 2, axis=0))
    with REFERENCES[method](
        model=module, target_layers=[module.encoder.layers[-1].ln_1], reshape_transform=reshape
    ) as cam:
        ref = cam(input_tensor=x, targets=[ClassifierOutputTarget(t.index) for t in exp.targets])
    assert ref.std() > 0.01
    np.testing.assert_allclose(exp.attributions, ref, atol=1e-4, rtol=0)


def test_vision_transformer_default_layer_reaches_the_classifier(astronaut_small):
    model = picasso.from_torch(tiny_vit(), input_size=(32, 32))
    exp = picasso.explain(model, astronaut_small, method="grad-cam", top_k=2)
    # Patch tokens after the last attention never reach the class token (zero
    # gradients), so the default steps back to the last block's first norm: the layer
    # pytorch-grad-cam recommends for ViTs.
    assert exp.extras["layer"] == "encoder.layers.encoder_layer_1.ln_1"
    assert exp.attributions.std() > 0.01
