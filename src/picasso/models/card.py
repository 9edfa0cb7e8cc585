"""Model cards: a TOML file beside a model that says how to use it.

See ``docs/model-card.md`` for the format with a complete example. Cards and the
Python hooks they name are trusted configuration (code-equivalent), written by
whoever runs Picasso; they are never accepted from web users.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..core.errors import ModelLoadError
from ..core.preprocessing import Preprocessing
from ..core.pyfiles import import_file

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


class PreprocessingCard(BaseModel):
    model_config = ConfigDict(extra="forbid")

    input_size: tuple[int, int] | None = Field(None, description="(height, width)")
    resize: Literal["stretch", "center-crop"] = "stretch"
    mean: tuple[float, ...] = (0.0, 0.0, 0.0)
    std: tuple[float, ...] = (1.0, 1.0, 1.0)
    channel_order: Literal["RGB", "BGR"] = "RGB"
    grayscale: bool = False
    interpolation: Literal["bilinear", "bicubic", "nearest"] = "bilinear"
    shorter_side: int | None = Field(
        None, ge=1, description="center-crop: resize the shorter side to this first"
    )
    crop_rounding: Literal["floor", "round"] = "floor"

    @field_validator("input_size")
    @classmethod
    def _positive(cls, v: tuple[int, int] | None) -> tuple[int, int] | None:
        if v is not None and min(v) < 1:
            raise ValueError("input_size must be positive (height, width)")
        return v

    @field_validator("std")
    @classmethod
    def _nonzero(cls, v: tuple[float, ...]) -> tuple[float, ...]:
        if any(s == 0 for s in v):
            raise ValueError("std must not contain zeros")
        return v


class HooksCard(BaseModel):
    model_config = ConfigDict(extra="forbid")

    module: str = Field(description="a .py file relative to the card, or an importable module")
    preprocess: str | None = None
    decode: str | None = None


class ModelCard(BaseModel):
    """The parsed content of a model card."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    description: str = ""
    framework: str | None = None
    file: str | None = None
    architecture: str | None = None
    architecture_kwargs: dict[str, Any] = Field(default_factory=dict)
    output: Literal["logits", "probabilities"] = "logits"
    task: Literal["classification", "segmentation", "detection"] = Field(
        "classification",
        description="classification: (N, classes) out; segmentation: (N, classes, H, W); "
        "detection: boxes, labels and scores per image",
    )
    signature: str | None = Field(None, description="TensorFlow SavedModel signature")
    input_name: str | None = Field(None, description="the image input, where there are several")
    output_name: str | None = Field(None, description="the class scores, where there are several")
    layout: Literal["NCHW", "NHWC"] | None = Field(
        None, description="the network's input layout; detected from the file where it can be"
    )
    labels: list[str] | str | None = None
    preprocessing: PreprocessingCard = Field(default_factory=PreprocessingCard)
    hooks: HooksCard | None = None

    # Set by read_card, not by the TOML file.
    base_dir: Path | None = Field(None, exclude=True)
    card_path: Path | None = Field(None, exclude=True)

    def resolve(self, relative: str) -> Path:
        path = Path(relative).expanduser()
        if not path.is_absolute() and self.base_dir is not None:
            path = self.base_dir / path
        return path

    def label_names(self) -> tuple[str, ...]:
        if self.labels is None:
            return ()
        if isinstance(self.labels, list):
            return tuple(self.labels)
        path = self.resolve(self.labels)
        if not path.is_file():
            raise ModelLoadError(f"{self.card_path}: labels file {path} not found")
        return tuple(
            line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()
        )

    def preprocessing_spec(self) -> Preprocessing:
        p = self.preprocessing
        size = p.input_size
        if size is None:
            raise ModelLoadError(
                f"{self.card_path or self.name}: input size unknown; set "
                "[preprocessing] input_size = [height, width] in the model card "
                "or pass input_size=(H, W)"
            )
        channels = 1 if p.grayscale else 3
        for key in ("mean", "std"):
            values = getattr(p, key)
            if len(values) == 1:
                values = values * channels
            if len(values) != channels:
                raise ModelLoadError(
                    f"{self.card_path or self.name}: {key} has {len(values)} values "
                    f"for {channels} channel(s)"
                )
            p = p.model_copy(update={key: tuple(values)})
        return Preprocessing(
            input_size=(size[0], size[1]),
            resize=p.resize,
            mean=tuple(p.mean),
            std=tuple(p.std),
            channel_order=p.channel_order,
            grayscale=p.grayscale,
            interpolation=p.interpolation,
            shorter_side=p.shorter_side,
            crop_rounding=p.crop_rounding,
        )

    def load_hook(self, which: Literal["preprocess", "decode"]) -> Callable | None:
        if self.hooks is None or getattr(self.hooks, which) is None:
            return None
        module = load_python(self.hooks.module, self.base_dir, self.card_path)
        fn = getattr(module, getattr(self.hooks, which), None)
        if not callable(fn):
            raise ModelLoadError(
                f"{self.card_path}: hook {getattr(self.hooks, which)!r} not found in "
                f"{self.hooks.module}"
            )
        return fn


def hook_kwargs(card: ModelCard, overrides: dict) -> dict[str, Callable | None]:
    """The preprocess/decode hooks for a model: keyword overrides, else the card's."""
    return {
        "preprocess_hook": overrides.get("preprocess") or card.load_hook("preprocess"),
        "decode_hook": overrides.get("decode") or card.load_hook("decode"),
    }


def load_python(module: str, base_dir: Path | None, card_path: Path | None) -> ModuleType:
    """Import a module by name, or a ``.py`` file relative to the card."""
    try:
        if module.endswith(".py"):
            path = Path(module)
            if not path.is_absolute() and base_dir is not None:
                path = base_dir / path
            if not path.is_file():
                raise ModelLoadError(f"{card_path}: Python file {path} not found")
            return import_file(f"picasso_card_{path.stem}", path)
        return importlib.import_module(module)
    except ModelLoadError:
        raise
    except Exception as exc:
        raise ModelLoadError(f"{card_path}: cannot import {module}: {exc}") from exc


def resolve_callable(ref: str, base_dir: Path | None, card_path: Path | None) -> Callable:
    """``"package.module:factory"`` or ``"file.py:factory"`` to the callable."""
    module, sep, attr = ref.rpartition(":")
    if not sep or not module or not attr:
        raise ModelLoadError(
            f"{card_path}: architecture {ref!r} must look like 'package.module:factory'"
        )
    fn = getattr(load_python(module, base_dir, card_path), attr, None)
    if not callable(fn):
        raise ModelLoadError(f"{card_path}: {attr!r} not found in {module}")
    return fn


def read_card(path: Path) -> ModelCard:
    """Parse and validate a model card, with errors that name the file and the key."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelLoadError(f"{path}: model card not found") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ModelLoadError(f"{path}: not a valid TOML model card ({exc})") from None
    return card_from_dict(data, path)


def card_from_dict(data: dict[str, Any], path: Path | None) -> ModelCard:
    try:
        card = ModelCard.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise ModelLoadError(f"{path or 'model card'}: {problems}") from None
    if path is not None:
        card = card.model_copy(update={"base_dir": path.parent, "card_path": path})
    return card
