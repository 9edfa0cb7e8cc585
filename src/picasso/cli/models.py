"""``picasso models``: the models of every model source, or one model described, from
the same catalog the REST API serves."""

from __future__ import annotations

import json
from typing import Any

import click

from ..catalog import model_entry
from ..core.errors import PicassoError
from ..core.model import LAYERS, LayerModel, require
from .common import fail, model_option


def models_command() -> click.Command:
    @click.command("models")
    @model_option(None)
    @click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
    def models_cmd(model_ref: str | None, as_json: bool) -> None:
        """List the models of every model source (demo:NAME), or describe one model:
        what its input must be, what it can do (and why not), its layers and classes."""
        from ..models import discover_sources, load_model

        if model_ref is None:
            for prefix, source in sorted(discover_sources().items()):
                for name in source.names():
                    try:
                        description = source.describe(name)
                    except PicassoError as exc:
                        description = f"(unreadable: {exc})"
                    click.echo(f"{prefix}:{name}: {description}")
            return
        try:
            model = load_model(model_ref)
        except PicassoError as exc:
            fail(str(exc))
        entry = model_entry(model)
        if LAYERS in model.capabilities:
            entry["layers"] = require(model, LayerModel).layer_names()
        if as_json:
            click.echo(json.dumps(entry, indent=2))
            return
        for line in describe(entry):
            click.echo(line)

    return models_cmd


def describe(entry: dict[str, Any]) -> list[str]:
    """A model's entry as lines a person reads before choosing settings."""
    pre = entry["preprocessing"]
    height, width = entry["input_size"]
    labels = entry["labels"]
    shown = ", ".join(labels[:10]) + (f", ... ({len(labels)} in all)" if len(labels) > 10 else "")
    lines = [
        f"{entry['name']} ({entry['framework']}, {entry.get('format', '?')}): "
        f"{entry['description'] or 'no description'}",
        f"  file: {entry.get('file') or '(a live module)'}"
        + (f", sha256 {entry['sha256'][:12]}" if entry.get("sha256") else ""),
        f"  input: {height} x {width} {'grey' if pre['grayscale'] else pre['channel_order']}, "
        f"{pre['resize']}, mean {pre['mean']}, std {pre['std']}, layout {entry['layout']}, "
        f"output {entry['output']}",
        f"  classes ({len(labels)}): {shown or 'unnamed'}",
        f"  capabilities: {', '.join(entry['capabilities']) or 'forward passes only'}",
    ]
    lines += [f"  no {name}: {why}" for name, why in entry["unavailable"].items()]
    if "layers" in entry:
        layers = entry["layers"]
        lines.append(
            f"  layers ({len(layers)}; Grad-CAM's --layer takes one; the last ones first): "
            + ", ".join(reversed(layers[-12:]))
            + (", ..." if len(layers) > 12 else "")
        )
    return lines
