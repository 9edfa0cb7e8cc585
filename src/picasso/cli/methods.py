"""``picasso methods``: the visualizations (built-ins and plugins) and their settings,
from the same catalog the REST API serves."""

from __future__ import annotations

import json

import click

from ..catalog import method_entry
from ..plugins import MethodRegistry


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
