"""Saliency equals captum.attr.Saliency(abs=True) reduced by a max over channels."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from captum.attr import Saliency as CaptumSaliency
from PIL import Image

import picasso
from conftest import FlatNet, TinyConvNet, seeded
from picasso.core.errors import CapabilityError


@pytest.mark.parametrize(
    ("factory", "size", "batch_size"),
    [
        (lambda s: TinyConvNet(), (24, 32), 16),
        (lambda s: TinyConvNet(), (31, 19), 1),
        (lambda s: FlatNet(s), (22, 17), 2),
    ],
)
def test_matches_captum(factory, size, batch_size, astronaut_small):
    module = seeded(factory(size), seed=size[0])
    model = picasso.from_torch(module, input_size=size, mean=(0.5, 0.4, 0.3), std=(0.2, 0.2, 0.2))
    exp = picasso.explain(model, astronaut_small, method="saliency", top_k=3, batch_size=batch_size)
    x = torch.from_numpy(model.preprocess([Image.fromarray(astronaut_small)]))
    for target, ours in zip(exp.targets, exp.attributions, strict=True):
        ref = CaptumSaliency(module).attribute(x, target=target.index, abs=True)
        ref = ref[0].max(dim=0).values.detach().numpy()
        assert ref.max() > 0
        np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-7)


def test_model_without_gradients_is_refused_before_work(tiny_model, astronaut_small):
    class NoGradients(type(tiny_model)):
        capabilities = frozenset()

    model = NoGradients(tiny_model.module, tiny_model.info)
    with pytest.raises(CapabilityError, match="saliency needs gradients"):
        picasso.explain(model, astronaut_small, method="saliency")


def test_class_probabilities_lists_top_k(tiny_model, astronaut_small):
    exp = picasso.explain(tiny_model, astronaut_small, method="class-probabilities", classes=4)
    classes = exp.extras["classes"]
    probs = tiny_model.probabilities(tiny_model.preprocess([Image.fromarray(astronaut_small)]))[0]
    assert [c["index"] for c in classes] == list(np.argsort(-probs)[:4])
    assert classes[0]["probability"] == pytest.approx(float(probs.max()))
    assert exp.attributions.shape[0] == 0
    with pytest.raises(ValueError, match="no attribution map"):
        _ = exp.attribution
