"""Windowed vision transformers without hand-written reshapes: Grad-CAM on a Swin
layer equals pytorch-grad-cam with the reshape its tutorials write by hand, for the
Hugging Face Swin (token outputs, (N, h*w, C)) and timm's (channels-last maps,
(N, h, w, C))."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import picasso
from picasso.visualizations.grad_cam import channels_last


def reshape(t: torch.Tensor) -> torch.Tensor:
    """pytorch-grad-cam's Swin reshape_transform: tokens or channels-last to NCHW."""
    if t.dim() == 3:
        n, length, c = t.shape
        side = int(length**0.5)
        t = t.reshape(n, side, side, c)
    return t.permute(0, 3, 1, 2)


class Logits(torch.nn.Module):
    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        out = self.inner(x)
        return getattr(out, "logits", out)


def compare(module, model, size, layers, target=1):
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    image = (np.random.default_rng(0).random((size, size, 3)) * 255).astype(np.uint8)
    batch = torch.from_numpy(model.preprocess([Image.fromarray(image)]))
    for layer in layers:
        exp = picasso.explain(model, image, "grad-cam", layer=layer, target=target)
        target_layer = dict(module.named_modules())[layer]
        with GradCAM(Logits(module), [target_layer], reshape_transform=reshape) as cam:
            ref = cam(batch, targets=[ClassifierOutputTarget(target)])
        assert ref.std() > 0.01, layer
        np.testing.assert_allclose(exp.attributions, ref, atol=1e-3, rtol=0)


def test_hugging_face_swin():
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    config = transformers.SwinConfig(
        image_size=32,
        patch_size=4,
        embed_dim=16,
        depths=[1, 1],
        num_heads=[1, 2],
        window_size=4,
        num_labels=2,
    )
    module = transformers.SwinForImageClassification(config).eval()
    model = picasso.from_torch(module, input_size=(32, 32))
    layers = [f"swin.encoder.layers.{i}.blocks.0.layernorm_after" for i in (0, 1)]
    compare(module, model, 32, layers)


def test_timm_swin_channels_last_maps():
    pytest.importorskip("timm")
    from timm.models.swin_transformer import SwinTransformer

    torch.manual_seed(0)
    module = SwinTransformer(
        img_size=64,
        patch_size=4,
        window_size=4,
        embed_dim=24,
        depths=(1, 1),
        num_heads=(1, 2),
        num_classes=3,
    ).eval()
    model = picasso.from_torch(module, input_size=(64, 64))
    shapes = model.layer_shapes(np.zeros((1, 3, 64, 64), np.float32))
    assert shapes["layers.0.blocks.0.norm1"] == (1, 16, 16, 24)  # channels-last
    compare(module, model, 64, ["layers.0.blocks.0.norm1", "layers.1.blocks.0.norm2", "norm"], 2)


def test_channels_last_is_told_apart_by_the_aspect_ratio():
    assert channels_last((1, 7, 7, 768), (224, 224))
    assert not channels_last((1, 512, 7, 7), (224, 224))
    assert not channels_last((1, 7, 7, 7), (224, 224))  # ambiguous: channels first
    assert channels_last((1, 14, 7, 96), (448, 224))
    assert not channels_last((1, 64, 14, 7), (448, 224))
