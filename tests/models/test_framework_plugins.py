"""A new kind of model is an entry point: no change to Picasso's code."""

from __future__ import annotations

import sys
import textwrap

import numpy as np
import pytest

import picasso
from picasso.core.errors import CapabilityError, ModelLoadError
from picasso.models import discover_frameworks, discover_sources

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


GRADIENT_ADAPTER = ADAPTER.replace(
    "def detect(path):",
    '''class LinearWithGradients(LinearModel):
    """Implementing `gradients` is all it takes to have the capability."""

    def gradients(self, batch, targets, score="logit"):
        logits = self.forward(batch)
        rows = np.arange(len(batch))
        grads = self.weights[list(targets)].reshape(batch.shape)
        return logits[rows, list(targets)], grads


def detect(path):''',
).replace("return LinearModel(weights,", "return LinearWithGradients(weights,")


def test_capabilities_follow_from_what_a_model_implements(linear_framework, tmp_path):
    weights = np.random.default_rng(1).normal(size=(3, 3 * 8 * 8)).astype(np.float32)
    np.savez(tmp_path / "toy.linear.npz", weights=weights)
    plain = picasso.load_model(tmp_path / "toy.linear.npz", input_size=(8, 8))
    assert plain.capabilities == frozenset()
    assert "linear models do not provide gradients" in plain.capability_problem("gradients")
    with pytest.raises(CapabilityError, match="saliency needs gradients"):
        picasso.explain(plain, np.zeros((8, 8, 3), np.uint8), method="saliency")

    (linear_framework / "toy_linear.py").write_text(GRADIENT_ADAPTER)
    sys.modules.pop("toy_linear", None)
    model = picasso.load_model(tmp_path / "toy.linear.npz", input_size=(8, 8))
    assert model.capabilities == frozenset({"gradients"})
    image = np.random.default_rng(2).integers(0, 255, (8, 8, 3), dtype=np.uint8)
    exp = picasso.explain(model, image, method="saliency")
    # |d logit / d pixel| max over channels, for a linear model: |W[target]| max over channels
    expected = np.abs(weights[exp.targets[0].index].reshape(3, 8, 8)).max(axis=0)
    np.testing.assert_allclose(exp.attribution, expected, rtol=1e-6)


SOURCE = textwrap.dedent('''
    """A toy model zoo: load_model("zoo:NAME") builds a linear model by name."""
    import numpy as np
    import picasso

    def names():
        return ["tiny"]

    def describe(name):
        return "a tiny zoo model"

    def load(name, **overrides):
        if name != "tiny":
            raise picasso.PicassoError(f"no zoo model {name!r}")
        import torch

        torch.manual_seed(0)
        net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 4 * 4, 2))
        return picasso.from_torch(net, input_size=(4, 4), labels=["a", "b"], name="zoo-tiny")
''')


def test_a_third_party_model_source(tmp_path, monkeypatch):
    """A model zoo is an entry point of picasso.model_sources, as demo: is."""
    (tmp_path / "toy_zoo.py").write_text(SOURCE)
    info = tmp_path / "toy_zoo-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-zoo\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[picasso.model_sources]\nzoo = toy_zoo\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert {"demo", "zoo"} <= set(discover_sources())
    model = picasso.load_model("zoo:tiny")
    assert model.info.name == "zoo-tiny" and model.info.labels == ("a", "b")
    with pytest.raises(picasso.PicassoError, match="no zoo model 'huge'"):
        picasso.load_model("zoo:huge")
    # a prefix nobody registered is a path, as before
    with pytest.raises(ModelLoadError, match="no such file"):
        picasso.load_model("nozoo:tiny")
