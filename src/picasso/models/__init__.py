"""Loading models: one loader for files, folders, model cards and demo models."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from ..core.errors import ModelLoadError
from ..core.model import Model, ModelInfo
from .card import ModelCard, card_from_dict, read_card
from .protocols import FrameworkAdapter, ModelSource

__all__ = [
    "FrameworkAdapter",
    "ModelSource",
    "build_info",
    "discover_frameworks",
    "discover_sources",
    "from_torch",
    "load_model",
]

log = logging.getLogger(__name__)
FRAMEWORKS_GROUP = "picasso.frameworks"
SOURCES_GROUP = "picasso.model_sources"

_PREPROCESSING_KEYS = {
    "input_size",
    "resize",
    "mean",
    "std",
    "channel_order",
    "grayscale",
    "interpolation",
    "shorter_side",
    "crop_rounding",
}
_CARD_KEYS = {
    "name",
    "description",
    "labels",
    "output",
    "task",
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
    data = card.model_dump(exclude_none=True, exclude_unset=True)  # what was said
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
    """Load a model from a file, a folder, a model card (``.toml``) or a model source
    (``demo:NAME``; sources are the ``picasso.model_sources`` entry points).

    Keyword arguments (``input_size``, ``mean``, ``std``, ``labels``, ``output``,
    ``resize``, ``channel_order``, ``grayscale``, ``name``, ``layout``,
    ``architecture``, ``signature``, ``input_name``, ``output_name``, ``preprocess``,
    ``decode``) override the model card, so a bare file can be tried without writing
    a card first. The framework comes from ``framework = ...`` in the card or from
    the first adapter (entry-point group ``picasso.frameworks``) that recognises the
    path.
    """
    text = str(source)
    scheme, sep, name = text.partition(":")
    if sep and not isinstance(source, Path):
        sources = discover_sources()
        if scheme in sources:
            return sources[scheme].load(name, **overrides)
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

    frameworks = discover_frameworks()
    framework = card.framework or _detect_framework(weights, frameworks)
    if framework not in frameworks:
        raise ModelLoadError(
            f"{weights}: framework {framework!r} is not supported "
            f"(supported: {', '.join(sorted(frameworks))})"
        )
    return frameworks[framework].load(weights, card, overrides, build_info)


def discover_frameworks() -> dict[str, FrameworkAdapter]:
    """Model adapters from the ``picasso.frameworks`` entry-point group (see
    :class:`~picasso.models.protocols.FrameworkAdapter`). Picasso's own adapters are
    registered the same way."""
    return _entry_points(FRAMEWORKS_GROUP, "model adapter", ("detect", "load"))


def discover_sources() -> dict[str, ModelSource]:
    """Model sources from the ``picasso.model_sources`` entry-point group (see
    :class:`~picasso.models.protocols.ModelSource`): the entry point's name is the
    prefix (``demo`` for ``demo:NAME``)."""
    return _entry_points(SOURCES_GROUP, "model source", ("names", "describe", "load"))


def _entry_points(group: str, what: str, functions: tuple[str, ...]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for ep in sorted(entry_points(group=group), key=lambda e: e.name):
        try:
            plugin = ep.load()
        except Exception as exc:  # a broken plugin must not break the others
            log.warning("cannot load %s %s: %s", what, ep.name, exc)
            continue
        if all(callable(getattr(plugin, f, None)) for f in functions):
            found.setdefault(ep.name, plugin)
        else:
            log.warning("%s %s lacks one of %s()", what, ep.name, "(), ".join(functions))
    return found


def _detect_framework(path: Path, frameworks: dict[str, FrameworkAdapter]) -> str:
    for name, adapter in frameworks.items():
        if adapter.detect(path):
            return name
    raise ModelLoadError(
        f"{path}: cannot tell the framework from the name (known frameworks: "
        f"{', '.join(sorted(frameworks))}); set framework = ... in a model card"
    )


def build_info(card: ModelCard, weights: Path, framework: str, extras: dict[str, Any]) -> ModelInfo:
    """Model info from a card; cheap checks (preprocessing, labels) fail first."""
    from .hashing import path_sha256

    return ModelInfo(
        name=card.name or weights.stem,
        framework=framework,
        preprocessing=card.preprocessing_spec(),
        output=card.output,
        task=card.task,
        labels=card.label_names(),
        path=str(weights),
        sha256=path_sha256(weights),
        description=card.description,
        extras={**extras, "card": str(card.card_path) if card.card_path else None},
    )


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
    interpolation: str = "bilinear",
    shorter_side: int | None = None,
    crop_rounding: str = "floor",
    task: str | None = None,
) -> Model:
    """Wrap a live ``torch.nn.Module`` (put into eval mode; its weights are not
    modified). Preprocessing arguments mean what they mean in a model card. ``task``:
    ``"classification"``, ``"segmentation"`` or ``"detection"``; by default, the task
    torchvision's segmentation and detection models (and Hugging Face heads) declare,
    else classification."""
    from .torch_adapter import TorchModel, module_sha256

    card = card_from_dict(
        {
            "name": name or type(module).__name__,
            "output": output,
            "task": task or _task_of_module(module),
            "labels": list(labels) if labels is not None else None,
            "preprocessing": {
                "input_size": list(input_size),
                "mean": list(mean),
                "std": list(std),
                "resize": resize,
                "channel_order": channel_order,
                "grayscale": grayscale,
                "interpolation": interpolation,
                "shorter_side": shorter_side,
                "crop_rounding": crop_rounding,
            },
        },
        None,
    )
    info = ModelInfo(
        name=card.name or type(module).__name__,
        framework="torch",
        preprocessing=card.preprocessing_spec(),
        output=card.output,
        task=card.task,
        labels=card.label_names(),
        sha256=module_sha256(module),
        extras={"format": "module"},
    )
    return TorchModel(module, info, preprocess_hook=preprocess, decode_hook=decode)


def _task_of_module(module: Any) -> str:
    """Segmentation or detection for torchvision's segmentation and detection models
    (and Hugging Face semantic segmentation and object detection heads passed as
    modules), else classification."""
    kind = type(module)
    if kind.__module__.startswith("torchvision.models.segmentation"):
        return "segmentation"
    if kind.__name__.endswith("ForSemanticSegmentation"):
        return "segmentation"
    if kind.__module__.startswith("torchvision.models.detection"):
        return "detection"
    if kind.__name__.endswith("ForObjectDetection"):
        return "detection"
    return "classification"


def from_timm(
    model: Any,
    labels: Sequence[str] | None = None,
    name: str | None = None,
) -> Model:
    """Wrap a timm model, its preprocessing filled from timm's data config: input
    size, mean and std, interpolation, and the centre crop (the shorter side resized to
    ``floor(size / crop_pct)`` first, as timm's eval transform does). ImageNet-1k
    models get the ImageNet class names unless ``labels`` are given."""
    import math

    from ..core.errors import MissingDependencyError

    try:
        import timm.data
    except ImportError:
        raise MissingDependencyError("timm", "timm", "Wrapping a timm model") from None
    config = timm.data.resolve_model_data_config(model)
    _, height, width = config["input_size"]
    crop_pct = float(config.get("crop_pct") or 1.0)
    cropped = config.get("crop_mode", "center") == "center" and height == width
    if labels is None and getattr(model, "num_classes", None) == 1000:
        info = timm.data.ImageNetInfo()
        labels = [info.index_to_description(i) for i in range(1000)]
    interpolation = config.get("interpolation", "bilinear")
    if interpolation not in ("bilinear", "bicubic", "nearest"):
        interpolation = "bilinear"  # e.g. "random" (training only)
    return from_torch(
        model,
        input_size=(height, width),
        mean=config["mean"],
        std=config["std"],
        labels=labels,
        name=name or getattr(model, "default_cfg", {}).get("architecture") or type(model).__name__,
        resize="center-crop" if cropped else "stretch",
        shorter_side=math.floor(height / crop_pct) if cropped else None,
        interpolation=interpolation,
        crop_rounding="round",  # torchvision's CenterCrop, which timm uses
    )
