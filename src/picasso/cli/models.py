"""``picasso models``: the models of every model source, or one model described, from
the same catalog the REST API serves."""

from __future__ import annotations

import json

import click

from ..catalog import model_entry
from ..core.errors import PicassoError
from .common import fail, model_option


def models_command() -> click.Command:
    @click.command("models")
    @model_option(None)
    def models_cmd(model_ref: str | None) -> None:
        """List the models of every model source (demo:NAME), or describe one model."""
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
        click.echo(json.dumps(model_entry(model), indent=2))

    return models_cmd
