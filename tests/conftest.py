"""Shared fixtures: tiny seeded PyTorch models built in code, and test images."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's start-up chatter

import numpy as np
import pytest
import torch
from torch import nn

from picasso.models.shapes import preload_triton

# Test modules and the docs' examples import TensorFlow (Keras) themselves; Triton
# (which transformers and torch._dynamo import) must come first, as the adapters ensure.
preload_triton()


class TinyConvNet(nn.Module):
    """Conv + BN + pooling + linear head; works at any input size."""

    def __init__(self, channels: int = 3, classes: int = 4) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, 8, 3, padding=1),
            nn.BatchNorm2d(8),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(2),
        )
        self.head = nn.Linear(64, classes)

    def forward(self, x):
        return self.head(torch.flatten(self.body(x), 1))


class FlatNet(nn.Module):
    """Strided conv and a dense layer over the flattened map: fixed input size,
    position-dependent weights (so occlusion maps are not translation-invariant)."""

    def __init__(self, size: tuple[int, int], classes: int = 5) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 5, stride=2, padding=2)
        h, w = (size[0] + 1) // 2, (size[1] + 1) // 2
        self.fc = nn.Linear(6 * h * w, classes)

    def forward(self, x):
        return self.fc(torch.tanh(self.conv(x)).view(x.shape[0], -1))


def seeded(module: nn.Module, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    for p in module.parameters():
        nn.init.normal_(p, std=0.3)
    for m in module.modules():  # give BatchNorm non-trivial statistics
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.normal_(0, 0.2)
            m.running_var.uniform_(0.5, 2.0)
    return module.eval()


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture
def astronaut_small() -> np.ndarray:
    """A real photograph shipped with scikit-image, downscaled (uint8 H x W x 3)."""
    import skimage.data as skimage_data
    from PIL import Image

    return np.asarray(Image.fromarray(skimage_data.astronaut()).resize((96, 80)))


@pytest.fixture
def tiny_model():
    import picasso

    return picasso.from_torch(
        seeded(TinyConvNet()),
        input_size=(24, 32),
        mean=(0.5, 0.5, 0.5),
        std=(0.25, 0.25, 0.25),
        labels=["a", "b", "c", "d"],
    )


def assert_maps_close(actual: np.ndarray, expected: np.ndarray, rel: float = 1e-5) -> None:
    """Maps agree to ``rel`` of the reference's largest magnitude (so the tolerance
    follows the map's scale), and the comparison is not of (nearly) empty maps: most
    reference pixels must stand above the tolerance, so a zero or sign error shows."""
    expected = np.asarray(expected, np.float64)
    scale = float(np.abs(expected).max())
    assert scale > 0, "the reference map is all zeros"
    tolerance = rel * scale
    assert np.mean(np.abs(expected) > tolerance) > 0.5, "most reference pixels are ~0"
    np.testing.assert_allclose(actual, expected, atol=tolerance, rtol=0)
