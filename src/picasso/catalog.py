"""What Picasso offers, described once for every face: the REST API's ``/methods`` and
``/models``, ``picasso methods --json`` and ``picasso models --model M``."""

from __future__ import annotations

from typing import Any

from .core.method import Method
from .core.model import Model


def method_entry(cls: type[Method]) -> dict[str, Any]:
    """A method's name, description, paper, needs, sign convention, cost and the JSON
    schema of its settings (from which forms and flags are generated)."""
    return {
        "name": cls.name,
        "description": cls.description,
        "reference": cls.reference,
        "requires": sorted(cls.requires),
        "signed": cls.signed,
        "produces_map": cls.produces_map,
        "cost": cls.cost,
        "settings": cls.Settings.model_json_schema(),
    }


def model_entry(model: Model) -> dict[str, Any]:
    """A model's summary (framework, input size, preprocessing, file hash, ...), its
    description, labels, capabilities and why any capability is missing."""
    info = model.info
    return {
        **info.summary(),
        "description": info.description,
        "labels": list(info.labels),
        "capabilities": sorted(model.capabilities),
    }
