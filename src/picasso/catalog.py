"""What Picasso offers, described once for every face: the REST API's ``/methods`` and
``/models``, ``picasso methods --json`` and ``picasso models --model M``."""

from __future__ import annotations

from typing import Any

from .core.method import Method
from .core.model import CAPABILITIES, Model


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
    pre = info.preprocessing
    return {
        **info.summary(),
        "description": info.description,
        "labels": list(info.labels),
        "capabilities": sorted(model.capabilities),
        "unavailable": {
            name: model.capability_problem(name) or "not provided"
            for name in CAPABILITIES
            if name not in model.capabilities
        },
        "preprocessing": {
            "resize": pre.resize,
            "mean": list(pre.mean),
            "std": list(pre.std),
            "channel_order": pre.channel_order,
            "grayscale": pre.grayscale,
        },
    }
