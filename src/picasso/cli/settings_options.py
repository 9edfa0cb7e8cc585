"""Command-line options generated from the methods' ``Settings`` models, so a plugin's
settings appear as flags without any change to the CLI."""

from __future__ import annotations

import types
import typing
from typing import Any, Literal

import click

from ..plugins import MethodRegistry


def _click_type(annotation: Any) -> Any:
    if annotation is bool:
        return bool
    if annotation is int:
        return click.INT
    if annotation is float:
        return click.FLOAT
    if typing.get_origin(annotation) is Literal:
        values = typing.get_args(annotation)
        if all(isinstance(v, str) for v in values):
            return click.Choice(values)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return click.STRING  # e.g. float | Literal["mean", "blur"]: pydantic decides
    return click.STRING


def setting_options(registry: MethodRegistry) -> dict[str, dict[str, Any]]:
    """One option per setting name across all methods: its type and which methods
    use it with which default."""
    options: dict[str, dict[str, Any]] = {}
    for method_name, cls in sorted(registry.items()):
        for field_name, field in cls.Settings.model_fields.items():
            kind = _click_type(field.annotation)
            entry = options.setdefault(
                field_name, {"type": kind, "help": field.description or "", "methods": []}
            )
            if entry["type"] != kind:  # methods disagree on the type: let pydantic check
                entry["type"] = click.STRING
            entry["methods"].append(f"{method_name}={field.default}")
    return options


def add_setting_options(command: click.Command, registry: MethodRegistry) -> None:
    """Append every setting of every method to ``command`` as an option (default None:
    a setting not given keeps the method's default)."""
    for name, spec in setting_options(registry).items():
        flag = "--" + name.replace("_", "-")
        help_text = f"{spec['help']} [default: {', '.join(spec['methods'])}]"
        option: click.Option
        if spec["type"] is bool:
            option = click.Option([f"{flag}/--no-{flag[2:]}", name], default=None, help=help_text)
        else:
            option = click.Option([flag, name], type=spec["type"], default=None, help=help_text)
        command.params.append(option)


def given_settings(raw: dict[str, Any]) -> dict[str, Any]:
    """The settings a user gave on the command line (the others keep their defaults)."""
    return {k: v for k, v in raw.items() if v is not None}
