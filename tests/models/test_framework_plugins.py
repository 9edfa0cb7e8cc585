"""A new kind of model is an entry point: no change to Picasso's code."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest

import picasso
from picasso.core.errors import ModelLoadError
from picasso.models import discover_frameworks

ADAPTER = textwrap.dedent('''
    """A toy framework: a linear classifier stored as a .linear.npz file."""
    import numpy as np
    from picasso.core.model import Model

    class LinearModel(Model):
        def __init__(self, weights, info):
            super().__init__(info)
            self.weights = weights

        def forward(self, batch):
            return batch.reshape(len(batch), -1) @ self.weights.T

    def detect(path):
        return path.name.endswith(".linear.npz")

    def load(path, card, overrides, build_info):
        weights = np.load(path)["weights"]
        return LinearModel(weights, build_info(card, path, "linear", {"format": "npz"}))
''')


@pytest.fixture
def linear_framework(tmp_path, monkeypatch):
    """Install a tiny distribution that declares a picasso.frameworks entry point."""
    (tmp_path / "toy_linear.py").write_text(ADAPTER)
    info = tmp_path / "toy_linear-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-linear\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[picasso.frameworks]\nlinear = toy_linear\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_builtin_adapters_are_entry_points():
    assert {"torch", "onnx", "keras", "tensorflow"} <= set(discover_frameworks())


def test_a_third_party_framework_loads_and_explains(linear_framework, tmp_path, astronaut_small):
    assert "linear" in discover_frameworks()
    weights = np.random.default_rng(0).normal(size=(3, 3 * 8 * 8)).astype(np.float32)
    np.savez(tmp_path / "toy.linear.npz", weights=weights)
    model = picasso.load_model(
        tmp_path / "toy.linear.npz", input_size=(8, 8), labels=["a", "b", "c"]
    )
    assert model.info.framework == "linear"
    exp = picasso.explain(
        model, astronaut_small, method="occlusion", window=2, stride=2, score="logit"
    )
    # For a linear model the logit drop of hiding a pixel block is sum(w * x) over it.
    batch = model.preprocess([exp_image(astronaut_small)])[0]
    target = exp.targets[0].index
    contribution = (weights[target].reshape(3, 8, 8) * batch).sum(axis=0)
    blocks = contribution.reshape(4, 2, 4, 2).sum(axis=(1, 3))
    np.testing.assert_allclose(
        exp.attribution, np.kron(blocks, np.ones((2, 2))), rtol=1e-4, atol=1e-5
    )


def exp_image(array):
    from PIL import Image

    return Image.fromarray(array)


def test_unknown_framework_in_a_card(tmp_path):
    (tmp_path / "m.bin").write_bytes(b"x")
    (tmp_path / "m.toml").write_text('file = "m.bin"\nframework = "caffe"\n')
    with pytest.raises(ModelLoadError, match=r"framework 'caffe' is not supported \(supported:"):
        picasso.load_model(tmp_path / "m.toml")
