"""The occluder for models on another device (a GPU) builds each occluded batch there;
on the CPU (where tests run) it must give exactly the dense occluder's scores."""

from __future__ import annotations

import numpy as np
import pytest

import picasso
from conftest import TinyConvNet, seeded
from picasso.core.model import Occluder
from picasso.models.torch_adapter import DeviceOccluder


@pytest.mark.parametrize("fill", [0.0, "image"])
@pytest.mark.parametrize("kind", ["probability", "logit"])
def test_device_batches_equal_the_dense_occluder(fill, kind):
    model = picasso.from_torch(seeded(TinyConvNet(), 3), input_size=(24, 32))
    rng = np.random.default_rng(0)
    image = rng.normal(size=(1, 3, 24, 32)).astype(np.float32)
    filled = rng.normal(size=(3, 24, 32)).astype(np.float32) if fill == "image" else fill
    boxes = [(0, 8, 0, 8), (4, 12, 20, 32), (16, 24, 28, 32), (0, 24, 0, 32)]
    expected = Occluder(model, image, filled).scores(boxes, kind)
    found = DeviceOccluder(model, image, filled).scores(boxes, kind)
    np.testing.assert_allclose(found, expected, rtol=1e-5, atol=1e-6)


def test_a_model_off_the_cpu_gets_the_device_occluder(monkeypatch):
    torch = pytest.importorskip("torch")
    model = picasso.from_torch(seeded(TinyConvNet(), 3), input_size=(24, 32))
    image = np.zeros((1, 3, 24, 32), np.float32)
    assert not isinstance(model.occluder(image, 0.0), DeviceOccluder)  # CPU: incremental
    model.device = torch.device("meta")  # stands for a GPU: never computed here
    model._traced = False
    assert isinstance(model.occluder(image, 0.0), DeviceOccluder)
