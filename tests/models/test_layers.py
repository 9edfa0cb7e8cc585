"""The `layers` capability: activations and gradients at a named layer (for CAM
methods), for PyTorch and Keras models, refused elsewhere."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import picasso
from conftest import seeded
from picasso.core.errors import CapabilityError, PicassoError
from picasso.core.method import Method
from picasso.core.model import LAYERS
from picasso.demo import demo_images


class PooledHead(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = torch.nn.Sequential(torch.nn.Conv2d(3, 6, 3, padding=1), torch.nn.ReLU())
        self.pool = torch.nn.AdaptiveAvgPool2d(1)
        self.head = torch.nn.Linear(6, 4)

    def forward(self, x):
        return self.head(torch.flatten(self.pool(self.features(x)), 1))


def test_torch_layer_gradients_have_the_known_answer(astronaut_small):
    module = seeded(PooledHead(), seed=2)
    model = picasso.from_torch(module, input_size=(12, 10))
    assert LAYERS in model.capabilities
    assert model.layer_names()[:2] == ["features", "features.0"]
    batch = np.repeat(model.preprocess([Image.fromarray(astronaut_small)]), 2, axis=0)
    scores, activation, grads = model.layer_gradients(batch, "features", [1, 3])
    assert activation.shape == grads.shape == (2, 6, 12, 10)
    np.testing.assert_allclose(scores, model.logits(batch)[[0, 1], [1, 3]], rtol=1e-5)
    # logit_t = sum_c W[t, c] * mean(A_c): the gradient is W[t, c] / (h * w) everywhere
    weights = module.head.weight.detach().numpy()
    for i, t in enumerate((1, 3)):
        expected = np.broadcast_to((weights[t] / 120)[:, None, None], (6, 12, 10))
        np.testing.assert_allclose(grads[i], expected, rtol=1e-5)
    with pytest.raises(PicassoError, match="has no layer 'nope'"):
        model.layer_gradients(batch, "nope", [0, 0])


def test_keras_layers_match_the_pytorch_original():
    original = picasso.load_model("demo:tanks-fair")
    exported = picasso.load_model("demo:tanks-fair-keras")
    assert LAYERS in exported.capabilities
    last_relu = [n for n in exported.layer_names() if "re_lu" in n][-1]
    batch = original.preprocess([Image.open(demo_images("tank-overcast")[0]).convert("RGB")])
    t_scores, t_act, t_grads = original.layer_gradients(batch, "features.6", [1])
    k_scores, k_act, k_grads = exported.layer_gradients(batch, last_relu, [1])
    assert k_act.shape == t_act.shape == (1, 64, 8, 8)  # NCHW from a channels-last network
    np.testing.assert_allclose(k_scores, t_scores, atol=1e-4)
    np.testing.assert_allclose(k_act, t_act, atol=1e-4)
    np.testing.assert_allclose(k_grads, t_grads, atol=1e-5)
    assert np.abs(t_grads).max() > 1e-4


class NeedsLayers(Method):
    name = "needs-layers"
    description = "A method that requires the layers capability."
    requires = frozenset({LAYERS})


@pytest.mark.parametrize("reference", ["demo:digits-onnx", "demo:digits-tensorflow"])
def test_formats_without_layers_refuse_layer_methods(reference, astronaut_small):
    model = picasso.load_model(reference)
    assert LAYERS not in model.capabilities
    with pytest.raises(CapabilityError, match="needs-layers needs layers"):
        picasso.explain(model, astronaut_small, method=NeedsLayers)
