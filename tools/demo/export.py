"""Export the PyTorch demo models to other formats, as selectable demo models.

    python -m tools.demo.export     # demo:<name>-onnx, -keras and -tensorflow for each

Each export gets a model card beside it with the same preprocessing and labels, so
``demo:tanks-fair`` and ``demo:tanks-fair-onnx`` give the same maps. The Keras model
is the same network rebuilt with Keras layers (channels-last) and the PyTorch weights
copied in; the SavedModel is that Keras model exported (TensorFlow backend).
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

from picasso.demo import MODELS_DIR, demo_card_path

from .train import TANK_BIAS

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

SOURCES = (*TANK_BIAS, "digits")
FORMATS = ("onnx", "keras", "tensorflow")


def to_onnx(module, path: Path, input_shape: tuple[int, ...], dynamic_batch: bool = True) -> None:
    """``torch.onnx.export`` with a dynamic batch axis, opset 17 and the TorchScript
    exporter (``dynamo=False``): what onnx2torch can convert back for gradients."""
    import torch

    module = module.to(memory_format=torch.contiguous_format).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            module,
            (torch.zeros(1, *input_shape[1:]),),
            str(path),
            dynamo=False,
            input_names=["image"],
            output_names=["scores"],
            dynamic_axes={"image": {0: "batch"}, "scores": {0: "batch"}} if dynamic_batch else None,
            opset_version=17,
        )


def _toml_value(value) -> str:
    return json.dumps(value) if not isinstance(value, bool) else str(value).lower()


def write_card(path: Path, card: dict) -> None:
    """A minimal TOML writer for the flat cards the exports need."""
    lines = [f"# Exported from demo:{card.pop('source')} by python -m tools.demo.export"]
    tables = {k: v for k, v in card.items() if isinstance(v, dict)}
    lines += [f"{k} = {_toml_value(v)}" for k, v in card.items() if k not in tables]
    for name, table in tables.items():
        lines += ["", f"[{name}]", *(f"{k} = {_toml_value(v)}" for k, v in table.items())]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def to_keras(module, input_shape: tuple[int, ...]):
    """Rebuild a :class:`~picasso.demo.nets.SmallCNN` with Keras layers (NHWC input)
    and copy its weights."""
    import keras

    _, channels, height, width = input_shape
    inputs = keras.Input((height, width, channels))
    x = inputs
    convs = [m for m in module.features if hasattr(m, "__getitem__")]
    copies = []
    for i, block in enumerate(convs):
        conv, bn = block[0], block[1]
        k_conv = keras.layers.Conv2D(conv.out_channels, 3, padding="same", use_bias=False)
        k_bn = keras.layers.BatchNormalization(epsilon=bn.eps)
        x = keras.layers.ReLU()(k_bn(k_conv(x)))
        if i < len(convs) - 1:
            x = keras.layers.MaxPooling2D(2)(x)
        copies.append((k_conv, [conv.weight.detach().numpy().transpose(2, 3, 1, 0)]))
        copies.append(
            (
                k_bn,
                [t.detach().numpy() for t in (bn.weight, bn.bias, bn.running_mean, bn.running_var)],
            )
        )
    dense = keras.layers.Dense(module.classifier.out_features)
    outputs = dense(keras.layers.GlobalAveragePooling2D()(x))
    copies.append(
        (
            dense,
            [module.classifier.weight.detach().numpy().T, module.classifier.bias.detach().numpy()],
        )
    )
    network = keras.Model(inputs, outputs)
    for layer, weights in copies:
        layer.set_weights(weights)
    return network


def export(name: str, out: Path, formats: tuple[str, ...] = FORMATS) -> list[Path]:
    import picasso

    model = picasso.load_model(f"demo:{name}")
    source = tomllib.loads(demo_card_path(name).read_text(encoding="utf-8"))
    shape = (1, model.info.preprocessing.channels, *model.info.input_size)
    written = []
    network = None
    for fmt in formats:
        target = out / f"{name}-{fmt}"
        target.mkdir(parents=True, exist_ok=True)
        if fmt == "onnx":
            to_onnx(model.module, target / "model.onnx", shape)
            framework, file, engine = "onnx", "model.onnx", "onnxruntime"
        else:
            network = network or to_keras(model.module, shape)
            if fmt == "keras":
                network.save(target / "model.keras")
                framework, file, engine = "keras", "model.keras", "Keras"
            else:
                network.export(str(target / "saved_model"), format="tf_saved_model", verbose=False)
                framework, file, engine = "tensorflow", "saved_model", "a TensorFlow SavedModel"
        card = {
            "source": name,
            "name": f"{name}-{fmt}",
            "description": f"{source['description']} ({engine} export)",
            "framework": framework,
            "file": file,
            "output": source.get("output", "logits"),
            "labels": source["labels"],
            "preprocessing": source["preprocessing"],
        }
        write_card(target / "model.toml", card)
        written.append(target)
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=MODELS_DIR)
    parser.add_argument("--only", choices=SOURCES, default=None)
    parser.add_argument("--formats", nargs="+", choices=FORMATS, default=list(FORMATS))
    args = parser.parse_args(argv)
    for name in SOURCES:
        if args.only in (None, name):
            for target in export(name, args.out, tuple(args.formats)):
                print(f"exported demo:{name} to {target}")


if __name__ == "__main__":
    main()
