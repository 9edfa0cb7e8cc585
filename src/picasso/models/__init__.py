"""Loading models: one loader for files, folders, model cards and demo models."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..core.errors import ModelLoadError
from ..core.model import Model, ModelInfo
from .card import ModelCard, card_from_dict, read_card, resolve_callable

__all__ = ["from_torch", "load_model"]

_PREPROCESSING_KEYS = {"input_size", "resize", "mean", "std", "channel_order", "grayscale"}
_CARD_KEYS = {
    "name",
    "description",
    "labels",
    "output",
    "framework",
    "architecture",
    "architecture_kwargs",
    "layout",
    "signature",
    "input_name",
    "output_name",
}
_CARD_NAMES = ("model.toml", "picasso.toml")


def _find_card(path: Path) -> Path | None:
    if path.is_dir():
        for name in _CARD_NAMES:
            if (path / name).is_file():
                return path / name
        cards = sorted(path.glob("*.toml"))
        return cards[0] if len(cards) == 1 else None
    sibling = path.with_suffix(".toml")
    if sibling.is_file():
        return sibling
    for name in _CARD_NAMES:  # a folder card that names this very file
        candidate = path.parent / name
        if candidate.is_file():
            card = read_card(candidate)
            if card.file and card.resolve(card.file).resolve() == path.resolve():
                return candidate
    return None


def _apply_overrides(card: ModelCard, overrides: dict[str, Any]) -> ModelCard:
    unknown = set(overrides) - _PREPROCESSING_KEYS - _CARD_KEYS - {"preprocess", "decode"}
    if unknown:
        raise TypeError(f"load_model() got unknown keyword(s): {', '.join(sorted(unknown))}")
    data = card.model_dump(exclude_none=True)
    pre = dict(data.get("preprocessing", {}))
    for key, value in overrides.items():
        if value is None or key in ("preprocess", "decode"):
            continue
        if key in _PREPROCESSING_KEYS:
            pre[key] = list(value) if isinstance(value, (tuple, list)) else value
        elif key == "architecture" and callable(value):
            continue  # a live callable is passed through separately
        else:
            data[key] = list(value) if key == "labels" and not isinstance(value, str) else value
    data["preprocessing"] = pre
    return card_from_dict(data, card.card_path).model_copy(
        update={"base_dir": card.base_dir, "card_path": card.card_path}
    )


def load_model(source: str | Path, **overrides: Any) -> Model:
    """Load a model from a file, a folder, a model card (``.toml``) or ``demo:NAME``.

    Keyword arguments (``input_size``, ``mean``, ``std``, ``labels``, ``output``,
    ``resize``, ``channel_order``, ``grayscale``, ``name``, ``architecture``,
    ``preprocess``, ``decode``) override the model card, so a bare file can be
    tried without writing a card first.
    """
    text = str(source)
    if text.startswith("demo:"):
        from ..demo import demo_card_path

        path = demo_card_path(text[len("demo:") :])
    else:
        path = Path(text).expanduser()
        if not path.exists():
            raise ModelLoadError(f"{path}: no such file or folder")

    card_path = path if path.suffix == ".toml" else _find_card(path)
    card = read_card(card_path) if card_path is not None else ModelCard(base_dir=path.parent)
    if card.file is None and card_path != path:
        card = card.model_copy(update={"file": str(path.resolve())})
    card = _apply_overrides(card, overrides)
    if card.file is None:
        raise ModelLoadError(f"{card_path}: the model card names no model file (file = ...)")
    weights = card.resolve(card.file)
    if not weights.exists():
        raise ModelLoadError(f"{card_path or path}: model file {weights} not found")

    framework = card.framework or _detect_framework(weights)
    loaders = {
        "torch": _load_torch,
        "onnx": _load_onnx,
        "keras": _load_keras,
        "tensorflow": _load_tensorflow,
    }
    if framework not in loaders:
        raise ModelLoadError(
            f"{weights}: framework {framework!r} is not supported "
            f"(supported: {', '.join(sorted(loaders))})"
        )
    return loaders[framework](card, weights, overrides)


def _detect_framework(path: Path) -> str:
    from .keras_adapter import SUFFIXES as KERAS_SUFFIXES
    from .tensorflow_adapter import is_saved_model
    from .torch_adapter import SUFFIXES as TORCH_SUFFIXES

    if path.suffix in TORCH_SUFFIXES:
        return "torch"
    if path.suffix == ".onnx":
        return "onnx"
    if path.suffix in KERAS_SUFFIXES:
        return "keras"
    if is_saved_model(path):
        return "tensorflow"
    known = sorted([*TORCH_SUFFIXES, ".onnx", *KERAS_SUFFIXES])
    raise ModelLoadError(
        f"{path}: cannot tell the framework from the name; supported: {', '.join(known)} "
        "files and SavedModel folders (or set framework = ... in a model card)"
    )


def _build_info(card: ModelCard, weights: Path, framework: str, extras: dict) -> ModelInfo:
    """Model info from a card; cheap checks (preprocessing, labels) fail first."""
    from .hashing import path_sha256

    return ModelInfo(
        name=card.name or weights.stem,
        framework=framework,
        preprocessing=card.preprocessing_spec(),
        output=card.output,
        labels=card.label_names(),
        path=str(weights),
        sha256=path_sha256(weights),
        description=card.description,
        extras={**extras, "card": str(card.card_path) if card.card_path else None},
    )


def _load_onnx(card: ModelCard, weights: Path, overrides: dict[str, Any]) -> Model:
    from .onnx_adapter import load_onnx

    return load_onnx(weights, card, overrides, _build_info)


def _load_keras(card: ModelCard, weights: Path, overrides: dict[str, Any]) -> Model:
    from .keras_adapter import load_keras

    return load_keras(weights, card, overrides, _build_info)


def _load_tensorflow(card: ModelCard, weights: Path, overrides: dict[str, Any]) -> Model:
    from .tensorflow_adapter import load_saved_model

    return load_saved_model(weights, card, overrides, _build_info)


def _load_torch(card: ModelCard, weights: Path, overrides: dict[str, Any]) -> Model:
    from .torch_adapter import SUFFIXES, TorchModel, _torch, load_module

    _torch()  # a missing PyTorch is named (with its extra) before anything imports it
    kind = SUFFIXES.get(weights.suffix)
    if kind is None:
        raise ModelLoadError(f"{weights}: not a PyTorch file ({', '.join(sorted(SUFFIXES))})")
    card.preprocessing_spec()  # cheap checks before the weights load
    card.label_names()
    architecture = overrides.get("architecture")
    if not callable(architecture):
        architecture = (
            resolve_callable(card.architecture, card.base_dir, card.card_path)
            if card.architecture
            else None
        )
    module = load_module(weights, kind, architecture, card.architecture_kwargs)
    model = TorchModel(
        module,
        _build_info(card, weights, "torch", {"format": kind}),
        preprocess_hook=overrides.get("preprocess") or card.load_hook("preprocess"),
        decode_hook=overrides.get("decode") or card.load_hook("decode"),
    )
    if kind == "safetensors":
        # Our own copy of the weights: store them channels-last too (faster convs).
        import torch

        module.to(memory_format=torch.channels_last)
    return model


def from_torch(
    module: Any,
    input_size: tuple[int, int],
    mean: Sequence[float] = (0.0, 0.0, 0.0),
    std: Sequence[float] = (1.0, 1.0, 1.0),
    labels: Sequence[str] | None = None,
    output: str = "logits",
    name: str | None = None,
    resize: str = "stretch",
    channel_order: str = "RGB",
    grayscale: bool = False,
    preprocess: Callable | None = None,
    decode: Callable | None = None,
) -> Model:
    """Wrap a live ``torch.nn.Module`` (put into eval mode; its weights are not
    modified). Preprocessing arguments mean what they mean in a model card."""
    from .torch_adapter import TorchModel, module_sha256

    card = card_from_dict(
        {
            "name": name or type(module).__name__,
            "output": output,
            "labels": list(labels) if labels is not None else None,
            "preprocessing": {
                "input_size": list(input_size),
                "mean": list(mean),
                "std": list(std),
                "resize": resize,
                "channel_order": channel_order,
                "grayscale": grayscale,
            },
        },
        None,
    )
    info = ModelInfo(
        name=card.name,
        framework="torch",
        preprocessing=card.preprocessing_spec(),
        output=card.output,
        labels=card.label_names(),
        sha256=module_sha256(module),
        extras={"format": "module"},
    )
    return TorchModel(module, info, preprocess_hook=preprocess, decode_hook=decode)
