"""Every framework gives the same picture: demo exports to ONNX, Keras and a TensorFlow
SavedModel agree with the PyTorch original (probabilities 1e-5, occlusion 1e-4,
saliency 1e-3, absolute)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import picasso
from conftest import assert_maps_close
from picasso.demo import demo_images

CASES = [("tanks-biased", "tank-overcast"), ("tanks-fair", "tank-sunny"), ("digits", "digit-3")]
FORMATS = ["onnx", "keras", "tensorflow"]


@pytest.fixture(scope="module")
def originals():
    return {name: picasso.load_model(f"demo:{name}") for name, _ in CASES}


def assert_same_picture(original, exported, image, window: int, stride: int) -> None:
    """Probabilities to 1e-5; occlusion (logit) maps to 1e-4 and saliency maps to 1e-5
    of their largest value (ResNet-18's occlusion differs by 3e-5 of it in float32)."""
    pil = Image.fromarray(image) if isinstance(image, np.ndarray) else Image.open(image)
    batch = original.preprocess([pil.convert("RGB")])
    np.testing.assert_allclose(
        exported.probabilities(batch), original.probabilities(batch), atol=1e-5, rtol=0
    )
    for method, settings, rel in (
        ("occlusion", {"window": window, "stride": stride, "score": "logit"}, 1e-4),
        ("saliency", {}, 1e-5),
    ):
        a = picasso.explain(original, image, method=method, top_k=2, **settings)
        b = picasso.explain(
            exported, image, method=method, target=[t.index for t in a.targets], **settings
        )
        assert_maps_close(b.attributions, a.attributions, rel)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(("name", "image"), CASES)
def test_export_agrees_with_pytorch(originals, name, image, fmt):
    original = originals[name]
    exported = picasso.load_model(f"demo:{name}-{fmt}")
    assert exported.info.framework == fmt
    assert exported.info.labels == original.info.labels
    assert_same_picture(original, exported, demo_images(image)[0], window=8, stride=4)


KERAS_ON_TORCH = """
import json, numpy as np, picasso
from picasso.demo import demo_images
model = picasso.load_model("demo:tanks-fair-keras")
path = demo_images("tank-overcast")[0]
sal = picasso.explain(model, path, method="saliency", target=1)
probs = picasso.explain(model, path, method="class-probabilities")
print(json.dumps({"backend": model.info.extras["backend"], "saliency": sal.attribution.tolist(),
                  "top": [t.probability for t in probs.top]}))
"""


@pytest.mark.parametrize("backend", ["torch", "jax"])
def test_keras_file_saved_under_tensorflow_runs_on_other_backends(originals, backend):
    env = {**os.environ, "KERAS_BACKEND": backend}
    result = subprocess.run(
        [sys.executable, "-c", KERAS_ON_TORCH], capture_output=True, text=True, env=env, check=True
    )
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["backend"] == backend
    path = demo_images("tank-overcast")[0]
    reference = picasso.explain(originals["tanks-fair"], path, method="saliency", target=1)
    assert_maps_close(np.array(out["saliency"]), reference.attribution)
    top = picasso.explain(originals["tanks-fair"], path, method="class-probabilities").top
    np.testing.assert_allclose(out["top"], [t.probability for t in top], atol=1e-5)


def test_legacy_h5_files_load(tmp_path, originals):
    import keras

    network = keras.saving.load_model(
        picasso.load_model("demo:digits-keras").info.path, compile=False
    )
    network.save(tmp_path / "digits.h5")
    model = picasso.load_model(
        tmp_path / "digits.h5",
        mean=(0.25,),
        std=(0.35,),
        grayscale=True,
        labels=[str(d) for d in range(10)],
    )
    assert model.info.input_size == (32, 32)  # read from the network
    path = demo_images("digit-7")[0]
    exp = picasso.explain(model, path, method="class-probabilities")
    assert exp.top[0].label == "7"


def test_standard_resnet_agrees_in_keras_and_savedmodel(tmp_path, astronaut_small):
    import torch
    import torchvision

    from tools.demo.resnet_keras import resnet_to_keras

    torch.manual_seed(0)
    module = torchvision.models.resnet18(num_classes=6).eval()
    network = resnet_to_keras(module, (64, 80))
    network.save(tmp_path / "resnet.keras")
    network.export(str(tmp_path / "resnet_savedmodel"), format="tf_saved_model", verbose=False)
    norm = {"mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225)}
    original = picasso.from_torch(module, input_size=(64, 80), **norm)
    for path in (tmp_path / "resnet.keras", tmp_path / "resnet_savedmodel"):
        exported = picasso.load_model(path, **norm)
        assert exported.info.input_size == (64, 80)
        assert_same_picture(original, exported, astronaut_small, window=16, stride=8)


@pytest.mark.parametrize("fmt", ["keras", "tensorflow", "onnx"])
def test_smoothgrad_and_integrated_gradients_agree_across_frameworks(originals, fmt):
    """The gradient methods built on the same `gradients` call give the PyTorch maps."""
    original = originals["tanks-fair"]
    exported = picasso.load_model(f"demo:tanks-fair-{fmt}")
    image = demo_images("tank-overcast")[0]
    for method, settings in (
        ("smoothgrad", {"samples": 4, "noise": 0.1, "seed": 3}),
        ("integrated-gradients", {"steps": 16, "baseline": "blur"}),
    ):
        a = picasso.explain(original, image, method=method, target=[0, 1], **settings)
        b = picasso.explain(exported, image, method=method, target=[0, 1], **settings)
        assert_maps_close(b.attributions, a.attributions)
        if method == "integrated-gradients":
            np.testing.assert_allclose(
                b.extras["completeness_gap"], a.extras["completeness_gap"], atol=1e-5
            )


KERAS_THEN_ONNX = """
import picasso
from picasso.demo import demo_images
image = demo_images("tank-overcast")[0]
keras_model = picasso.load_model("demo:tanks-fair-keras")   # imports TensorFlow
picasso.explain(keras_model, image, method="saliency")
onnx_model = picasso.load_model("demo:tanks-fair-onnx")     # gradients: onnx2torch, torchvision
print(picasso.explain(onnx_model, image, method="saliency").attribution.shape)
"""


def test_a_keras_model_then_an_onnx_model_in_one_process():
    """TensorFlow first, then Triton (through onnx2torch's torchvision) used to crash the
    process with a segmentation fault; the adapters now import Triton first."""
    env = {**os.environ, "KERAS_BACKEND": "tensorflow"}
    done = subprocess.run(
        [sys.executable, "-c", KERAS_THEN_ONNX], capture_output=True, text=True, env=env
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().endswith("(64, 64)")
