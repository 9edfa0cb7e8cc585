"""``picasso methods`` and ``picasso models``: what is installed, from the same catalog
the REST API serves."""

from __future__ import annotations

import json

import click

from ..catalog import method_entry, model_entry
from ..core.errors import PicassoError
from ..plugins import MethodRegistry
from .common import fail, model_option


def methods_command(registry: MethodRegistry) -> click.Command:
    @click.command("methods")
    @click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
    def methods_cmd(as_json: bool) -> None:
        """List the visualizations (built-ins and plugins) and their settings."""
        if as_json:
            listing = {name: method_entry(cls) for name, cls in sorted(registry.items())}
            click.echo(json.dumps(listing, indent=2))
            return
        for name, cls in sorted(registry.items()):
            click.echo(f"{name}: {cls.description}")
            if cls.reference:
                click.echo(f"    reference: {cls.reference}")
            if cls.requires:
                click.echo(f"    requires: {', '.join(sorted(cls.requires))}")
            for field_name, field in cls.Settings.model_fields.items():
                click.echo(
                    f"    --{field_name.replace('_', '-')} (default {field.default}): "
                    f"{field.description or ''}"
                )
        for problem in registry.problems:
            click.echo(f"warning: {problem}", err=True)

    return methods_cmd


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
