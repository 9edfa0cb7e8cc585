"""Loading PyTorch models from every supported form, with model cards and overrides."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

import picasso
from conftest import FlatNet, TinyConvNet, seeded
from picasso.core.errors import (
    CapabilityError,
    MissingDependencyError,
    ModelLoadError,
    PicassoError,
)


@pytest.fixture
def net():
    return seeded(TinyConvNet(classes=3), seed=1)


@pytest.fixture
def image(astronaut_small):
    return Image.fromarray(astronaut_small)


def reference_probs(module, batch):
    with torch.no_grad():
        return torch.softmax(module(torch.from_numpy(batch)), 1).numpy()


def test_from_torch_matches_the_module(net, image):
    model = picasso.from_torch(
        net, input_size=(20, 30), mean=(0.5, 0.5, 0.5), std=(0.2, 0.2, 0.2), labels=["x", "y", "z"]
    )
    batch = model.preprocess([image])
    assert batch.shape == (1, 3, 20, 30) and batch.dtype == np.float32
    np.testing.assert_allclose(model.probabilities(batch), reference_probs(net, batch), atol=1e-6)
    assert model.info.label(2) == "z" and model.info.label(7) == "class 7"
    assert len(model.info.sha256) == 64


def test_default_preprocessing_is_the_documented_recipe(net, image):
    model = picasso.from_torch(net, input_size=(10, 12), mean=(0.1, 0.2, 0.3), std=(0.5, 0.4, 0.3))
    expected = (
        np.asarray(image.convert("RGB").resize((12, 10), Image.Resampling.BILINEAR), np.float32)
        / 255.0
    )
    expected = ((expected - [0.1, 0.2, 0.3]) / [0.5, 0.4, 0.3]).transpose(2, 0, 1)
    np.testing.assert_allclose(model.preprocess([image])[0], expected, atol=1e-6)
    bgr = picasso.from_torch(net, input_size=(10, 12), channel_order="BGR")
    rgb = picasso.from_torch(net, input_size=(10, 12))
    np.testing.assert_allclose(bgr.preprocess([image])[0], rgb.preprocess([image])[0][::-1])


def test_center_crop_policy(net):
    wide = Image.fromarray(np.tile(np.arange(200, dtype=np.uint8), (50, 1)))  # 200 x 50
    model = picasso.from_torch(net, input_size=(10, 10), resize="center-crop")
    fitted = np.asarray(model.fit_image(wide.convert("RGB")))
    assert fitted.shape == (10, 10, 3)
    assert 80 < fitted[:, :, 0].mean() < 120  # the middle of the ramp, not all of it


def test_torchscript_file(tmp_path, net, image):
    path = tmp_path / "net.pt"
    torch.jit.script(net).save(str(path))
    model = picasso.load_model(path, input_size=(16, 16))
    batch = model.preprocess([image])
    np.testing.assert_allclose(model.probabilities(batch), reference_probs(net, batch), atol=1e-6)
    assert model.info.extras["format"] == "torchscript"
    # Hooks do not work on ScriptModules: layers are not offered, and the reason is said.
    assert model.capabilities == {"gradients"}
    assert "TorchScript modules take no Python hooks" in model.capability_problem("layers")
    with pytest.raises(picasso.PicassoError, match=r"grad-cam needs layers.*TorchScript"):
        picasso.explain(model, image, method="grad-cam")


def test_the_cli_prints_one_line_for_a_model_failure(tmp_path):
    """A failure inside a model (not a PicassoError) is one line, not a traceback."""
    import subprocess
    import sys

    card = tmp_path / "broken.toml"
    module = tmp_path / "broken.py"
    module.write_text(
        "import torch\n"
        "class Broken(torch.nn.Module):\n"
        "    def forward(self, x):\n"
        "        if x.shape[0] > 1:\n"
        "            raise RuntimeError('this network breaks on batches')\n"
        "        return torch.zeros(x.shape[0], 2)\n"
        "def build():\n    return Broken()\n"
    )
    weights = tmp_path / "broken.safetensors"
    from safetensors.torch import save_file

    save_file({}, str(weights))
    card.write_text(
        'file = "broken.safetensors"\narchitecture = "broken.py:build"\n'
        "[preprocessing]\ninput_size = [8, 8]\n"
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "picasso",
            "explain",
            "-m",
            str(card),
            "--method",
            "occlusion",
            "--window",
            "4",
            "--stride",
            "4",
            "demo:tank-sunny",
            "-o",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "RuntimeError: this network breaks on batches" in result.stderr


def test_torch_export_file_with_static_batch(tmp_path, image):
    module = seeded(FlatNet((16, 16)), seed=2)
    program = torch.export.export(module, (torch.zeros(1, 3, 16, 16),))
    path = tmp_path / "net.pt2"
    torch.export.save(program, str(path))
    model = picasso.load_model(path, input_size=(16, 16))
    batch = np.repeat(model.preprocess([image]), 5, axis=0)  # 5 items through a batch-1 graph
    batch[1:] += np.random.default_rng(0).normal(size=batch[1:].shape).astype(np.float32)
    np.testing.assert_allclose(
        model.probabilities(batch), reference_probs(module, batch), atol=1e-6
    )
    exp = picasso.explain(model, image, method="saliency")
    assert exp.attribution.shape == (16, 16) and exp.attribution.max() > 0


def write_card(path, body: str):
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    return path


def test_safetensors_with_a_model_card_and_hooks(tmp_path, net, image):
    save_file(net.state_dict(), str(tmp_path / "weights.safetensors"))
    (tmp_path / "arch.py").write_text(
        textwrap.dedent("""
        from conftest import TinyConvNet
        def build(classes):
            return TinyConvNet(classes=classes)
    """)
    )
    (tmp_path / "labels.txt").write_text("cat\ndog\nbird\n")
    (tmp_path / "hooks.py").write_text(
        textwrap.dedent("""
        import numpy as np
        def decode(raw):
            e = np.exp(raw - raw.max(axis=1, keepdims=True))
            return e / e.sum(axis=1, keepdims=True)
    """)
    )
    card = write_card(
        tmp_path / "model.toml",
        """
        name = "pets"
        file = "weights.safetensors"
        architecture = "arch.py:build"
        architecture_kwargs = { classes = 3 }
        labels = "labels.txt"
        [preprocessing]
        input_size = [18, 22]
        mean = [0.5]
        std = [0.25]
        [hooks]
        module = "hooks.py"
        decode = "decode"
    """,
    )
    for source in (card, tmp_path, tmp_path / "weights.safetensors"):
        model = picasso.load_model(source)
        assert model.info.name == "pets" and model.info.labels == ("cat", "dog", "bird")
        assert model.info.preprocessing.mean == (0.5, 0.5, 0.5)
        batch = model.preprocess([image])
        np.testing.assert_allclose(
            model.probabilities(batch), reference_probs(net, batch), atol=1e-6
        )
    with pytest.raises(CapabilityError, match="saliency needs gradients"):
        picasso.explain(model, image, method="saliency")  # the decode hook is outside autograd
    overridden = picasso.load_model(card, input_size=(8, 9), labels=["a", "b", "c"])
    assert overridden.info.input_size == (8, 9) and overridden.info.labels == ("a", "b", "c")


def test_preprocess_hook_replaces_the_declarative_pipeline(tmp_path, net, image):
    calls = []

    def preprocess(images):
        calls.append(len(images))
        return np.zeros((len(images), 3, 12, 12), np.float32)

    model = picasso.from_torch(net, input_size=(12, 12), preprocess=preprocess)
    assert not model.preprocess([image, image]).any() and calls == [2]
    bad = picasso.from_torch(net, input_size=(13, 12), preprocess=preprocess)
    with pytest.raises(ModelLoadError, match="preprocess hook returned shape"):
        bad.preprocess([image])


def test_probability_output_models(net, image):
    probs_module = torch.nn.Sequential(net, torch.nn.Softmax(dim=1)).eval()
    model = picasso.from_torch(probs_module, input_size=(16, 16), output="probabilities")
    logits_model = picasso.from_torch(net, input_size=(16, 16))
    batch = model.preprocess([image])
    np.testing.assert_allclose(
        model.probabilities(batch), logits_model.probabilities(batch), atol=1e-6
    )
    # log-probabilities differ from logits by a per-image constant
    diff = model.logits(batch) - logits_model.logits(batch)
    np.testing.assert_allclose(diff, diff[:, :1].repeat(3, axis=1), atol=1e-4)


@pytest.mark.parametrize(
    ("card", "fragment"),
    [
        ("file = 'w.safetensors'\n[preprocessing]\ninput_size = [8, 8]\n", "architecture"),
        ("file = 'missing.pt'\n", "not found"),
        ("file = 'w.safetensors'\nframework = 'torch'\ncolour = 1\n", "colour"),
        ("file = 'w.safetensors'\n[preprocessing]\ninput_size = [0, 8]\n", "input_size"),
        ("file = 'w.safetensors'\n[preprocessing]\nstd = [0, 1, 1]\n", "std"),
        (
            "file = 'w.safetensors'\narchitecture = 'conftest:TinyConvNet'\n"
            "[preprocessing]\nmean = [0, 1]\ninput_size = [4, 4]\n",
            "mean has 2 values",
        ),
        ("file = 'w.safetensors'\n[preprocessing]\nsize = [4, 4]\n", "preprocessing.size"),
        ("file = = 'broken", "not a valid TOML"),
        ("output = 'scores'\nfile = 'w.safetensors'\n", "output"),
    ],
)
def test_bad_cards_say_what_is_wrong(tmp_path, net, card, fragment):
    save_file(net.state_dict(), str(tmp_path / "w.safetensors"))
    path = tmp_path / "model.toml"
    path.write_text(card)
    with pytest.raises(ModelLoadError, match=fragment) as info:
        picasso.load_model(path)
    assert any(name in str(info.value) for name in ("model.toml", "w.safetensors", "missing.pt"))


def test_corrupt_and_unknown_files(tmp_path):
    bad = tmp_path / "broken.pt"
    bad.write_bytes(b"not a torchscript archive")
    with pytest.raises(ModelLoadError, match=r"broken\.pt"):
        picasso.load_model(bad, input_size=(8, 8))
    other = tmp_path / "model.bin"
    other.write_bytes(b"?")
    with pytest.raises(ModelLoadError, match="cannot tell the framework"):
        picasso.load_model(other)
    with pytest.raises(ModelLoadError, match="no such file"):
        picasso.load_model(tmp_path / "nothing.pt")
    with pytest.raises(ModelLoadError, match="unknown demo model"):
        picasso.load_model("demo:nope")
    with pytest.raises(ModelLoadError, match="input size unknown"):
        torch.jit.script(TinyConvNet()).save(str(tmp_path / "ok.pt"))
        picasso.load_model(tmp_path / "ok.pt")


def test_non_classifier_output_is_refused(image):
    model = picasso.from_torch(torch.nn.Conv2d(3, 2, 3).eval(), input_size=(8, 8))
    with pytest.raises(PicassoError, match="expected \\(batch, classes\\)"):
        model.probabilities(model.preprocess([image]))


def test_missing_framework_names_the_extra():
    err = MissingDependencyError("onnxruntime", "onnx", "Loading an ONNX model")
    assert "pip install 'picasso-vision[onnx]'" in str(err)


def test_view_based_models_fall_back_from_channels_last(image):
    module = seeded(FlatNet((12, 14)), seed=4)  # .view() rejects channels-last tensors
    model = picasso.from_torch(module, input_size=(12, 14))
    batch = model.preprocess([image])
    np.testing.assert_allclose(
        model.probabilities(batch), reference_probs(module, batch), atol=1e-6
    )


def test_from_torch_leaves_the_module_weights_alone(net):
    before = {k: v.clone() for k, v in net.state_dict().items()}
    strides = {k: v.stride() for k, v in net.state_dict().items()}
    picasso.from_torch(net, input_size=(8, 8)).probabilities(np.zeros((2, 3, 8, 8), np.float32))
    for key, value in net.state_dict().items():
        assert torch.equal(value, before[key]) and value.stride() == strides[key]


def test_a_model_pickles_for_workers_after_it_was_prepared():
    """Ray sends live models to its actors pickled: the lock and the traced graph stay
    behind, and the copy computes the same."""
    import pickle

    import numpy as np

    model = picasso.load_model("demo:tanks-fair")
    model.prepare()  # traced, with its lock
    copy = pickle.loads(pickle.dumps(model))
    batch = np.random.default_rng(0).normal(size=(2, 3, 64, 64)).astype(np.float32)
    np.testing.assert_array_equal(copy.forward(batch), model.forward(batch))
    copy.prepare()  # traces again where it lands
