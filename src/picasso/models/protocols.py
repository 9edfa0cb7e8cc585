"""The contracts a new kind of model implements: a framework adapter (files of one
framework become a :class:`~picasso.core.model.Model`) and a model source (named
models behind a prefix, as ``demo:NAME``). Both are found through entry points, so
Picasso's own adapters and a third party's travel the same road."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from ..core.model import Model, ModelInfo
from .card import ModelCard


class BuildInfo(Protocol):
    """Makes a model's :class:`ModelInfo` from its card (name, preprocessing, labels,
    output) and file (path, sha256); ``extras`` records the format, layout, backend."""

    def __call__(
        self, card: ModelCard, weights: Path, framework: str, extras: dict[str, Any]
    ) -> ModelInfo: ...


class FrameworkAdapter(Protocol):
    """An entry point of group ``picasso.frameworks`` (usually a module).

    ``detect(path)`` says whether a file or folder looks like this framework's;
    ``load`` builds the model. ``card`` is the validated model card (keyword overrides
    already applied), ``overrides`` the keywords as given (hooks, a live architecture
    callable), and ``build_info`` makes the model's info. Errors are
    :class:`~picasso.core.errors.ModelLoadError` naming the file.
    """

    def detect(self, path: Path) -> bool: ...

    def load(
        self, path: Path, card: ModelCard, overrides: dict[str, Any], build_info: BuildInfo
    ) -> Model: ...


class ModelSource(Protocol):
    """An entry point of group ``picasso.model_sources``: its name is a prefix, and
    ``load_model("PREFIX:NAME")`` asks it for model NAME."""

    def names(self) -> list[str]: ...

    def describe(self, name: str) -> str: ...

    def load(self, name: str, **overrides: Any) -> Model: ...
