"""Broken or unsuitable model files fail at load time with one line naming the file."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import picasso
from picasso.core.errors import ModelLoadError


def test_corrupt_keras_file(tmp_path):
    source = picasso.load_model("demo:digits-keras").info.path
    data = Path(source).read_bytes()
    (tmp_path / "truncated.keras").write_bytes(data[: len(data) // 3])
    with pytest.raises(ModelLoadError, match=r"truncated\.keras: not a loadable Keras model"):
        picasso.load_model(tmp_path / "truncated.keras")


def test_keras_model_that_is_not_a_classifier(tmp_path):
    import keras

    inputs = keras.Input((16, 16, 3))
    keras.Model(inputs, keras.layers.Conv2D(4, 3)(inputs)).save(tmp_path / "conv.keras")
    with pytest.raises(ModelLoadError, match=r"conv\.keras: .*expected \(batch, classes\)"):
        picasso.load_model(tmp_path / "conv.keras")
    with pytest.raises(ModelLoadError, match=r"network takes 16x16 images"):
        picasso.load_model(tmp_path / "conv.keras", input_size=(20, 20))
    with pytest.raises(ModelLoadError, match=r"takes 3 channel\(s\)"):
        picasso.load_model(tmp_path / "conv.keras", grayscale=True, mean=(0,), std=(1,))


def test_saved_model_problems(tmp_path):
    source = picasso.load_model("demo:digits-tensorflow").info.path
    folder = tmp_path / "sm"
    shutil.copytree(source, folder)
    with pytest.raises(ModelLoadError, match=r"no signature 'predict' \(available: "):
        picasso.load_model(folder, signature="predict", input_size=(32, 32))
    (folder / "saved_model.pb").write_bytes(b"garbage")
    with pytest.raises(ModelLoadError, match=r"sm: not a loadable SavedModel"):
        picasso.load_model(folder, input_size=(32, 32))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelLoadError, match="cannot tell the framework"):
        picasso.load_model(tmp_path / "empty")


def test_saved_model_with_two_outputs_needs_output_name(tmp_path):
    import keras
    import tensorflow as tf

    inputs = keras.Input((8, 8, 3))
    flat = keras.layers.GlobalAveragePooling2D()(inputs)
    network = keras.Model(
        inputs, {"scores": keras.layers.Dense(3)(flat), "embedding": keras.layers.Dense(2)(flat)}
    )
    tf.saved_model.save(network, str(tmp_path / "two"))
    with pytest.raises(ModelLoadError, match="name the class scores with output_name"):
        picasso.load_model(tmp_path / "two")
    model = picasso.load_model(tmp_path / "two", output_name="scores")
    assert model.info.input_size == (8, 8)


@pytest.mark.parametrize(
    ("blocked", "reference", "extra"),
    [
        ("keras", "demo:digits-keras", "keras"),
        ("tensorflow", "demo:digits-tensorflow", "tensorflow"),
        ("onnxruntime", "demo:digits-onnx", "onnx"),
    ],
)
def test_missing_framework_names_its_extra(blocked, reference, extra):
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        f"        if name.split('.')[0] == {blocked!r}:\n"
        "            raise ImportError(name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "import picasso\n"
        "try:\n"
        f"    picasso.load_model({reference!r})\n"
        "except picasso.PicassoError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert f"pip install 'picasso-vision[{extra}]'" in out


def test_wrong_layout_in_the_card_is_caught_at_load(tmp_path):
    import keras

    inputs = keras.Input((16, 16, 3))
    outputs = keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(inputs))
    keras.Model(inputs, outputs).save(tmp_path / "nhwc.keras")
    with pytest.raises(ModelLoadError, match=r"nhwc\.keras: the network takes 16 channel"):
        picasso.load_model(tmp_path / "nhwc.keras", layout="NCHW")


COMPILED_ELSEWHERE = """
import sys, picasso
model = picasso.load_model(sys.argv[1], labels=["a", "b"])
print(model.info.extras["backend"], model.probabilities(
    model.preprocess([__import__("PIL.Image").Image.new("RGB", (16, 16))])).shape)
"""


def test_keras_file_saved_compiled_loads_under_another_backend(tmp_path):
    import os

    import keras

    inputs = keras.Input((16, 16, 3))
    network = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Flatten()(inputs)))
    network.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    network.save(tmp_path / "compiled.keras")  # compiled under the TensorFlow backend
    env = {**os.environ, "KERAS_BACKEND": "torch"}
    out = subprocess.run(
        [sys.executable, "-c", COMPILED_ELSEWHERE, str(tmp_path / "compiled.keras")],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout
    assert out.strip().splitlines()[-1] == "torch (1, 2)"
