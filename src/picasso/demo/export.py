"""Export the PyTorch demo models to other formats, as selectable demo models.

    python -m picasso.demo.export            # writes demo:<name>-onnx for every model

Each export gets a model card beside it with the same preprocessing and labels, so
``demo:tanks-fair`` and ``demo:tanks-fair-onnx`` give the same maps.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

from . import MODELS_DIR, demo_card_path
from .train import TANK_BIAS

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

SOURCES = (*TANK_BIAS, "digits")


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
    lines = [f"# Exported from demo:{card.pop('source')} by python -m picasso.demo.export"]
    tables = {k: v for k, v in card.items() if isinstance(v, dict)}
    lines += [f"{k} = {_toml_value(v)}" for k, v in card.items() if k not in tables]
    for name, table in tables.items():
        lines += ["", f"[{name}]", *(f"{k} = {_toml_value(v)}" for k, v in table.items())]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def export(name: str, out: Path) -> Path:
    import picasso

    model = picasso.load_model(f"demo:{name}")
    source = tomllib.loads(demo_card_path(name).read_text(encoding="utf-8"))
    target = out / f"{name}-onnx"
    target.mkdir(parents=True, exist_ok=True)
    shape = (1, model.info.preprocessing.channels, *model.info.input_size)
    to_onnx(model.module, target / "model.onnx", shape)
    card = {
        "source": name,
        "name": f"{name}-onnx",
        "description": f"{source['description']} (ONNX export, run by onnxruntime)",
        "framework": "onnx",
        "file": "model.onnx",
        "output": source.get("output", "logits"),
        "labels": source["labels"],
        "preprocessing": source["preprocessing"],
    }
    write_card(target / "model.toml", card)
    return target


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=MODELS_DIR)
    parser.add_argument("--only", choices=SOURCES, default=None)
    args = parser.parse_args(argv)
    for name in SOURCES:
        if args.only in (None, name):
            print(f"exported demo:{name} to {export(name, args.out)}")


if __name__ == "__main__":
    main()
