"""Form fields generated from a method's Settings JSON schema, and form values turned
back into settings. Pydantic validates the values (its lax mode parses the strings a
form sends), so the page, the API and the CLI accept exactly the same settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..core.method import Method
from ..core.model import LAYERS, LayerModel, Model, require


@dataclass
class FormField:
    name: str  # the setting's name
    label: str
    kind: str  # "integer", "number", "select", "checkbox", "text"
    default: Any
    help: str = ""
    minimum: float | None = None
    maximum: float | None = None
    choices: list[str] = field(default_factory=list)  # select options, or suggestions
    max_length: int | None = None

    @property
    def step(self) -> str:
        return "1" if self.kind == "integer" else "any"


def form_fields(method: type[Method], model: Model | None = None) -> list[FormField]:
    """One field per setting; the shared ``batch_size`` comes last."""
    schema = method.Settings.model_json_schema()
    defs = schema.get("$defs", {})
    fields = []
    for name, prop in schema.get("properties", {}).items():
        prop = _resolve(prop, defs)
        fields.append(_field(name, prop, defs, model))
    return sorted(fields, key=lambda f: f.name == "batch_size")


def _resolve(prop: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    ref = prop.get("$ref", "")
    if ref.startswith("#/$defs/"):
        return {
            **defs[ref.removeprefix("#/$defs/")],
            **{k: v for k, v in prop.items() if k != "$ref"},
        }
    return prop


def _field(name: str, prop: dict[str, Any], defs: dict[str, Any], model: Model | None) -> FormField:
    base = FormField(
        name=name,
        label=prop.get("title", name),
        kind="text",
        default=prop.get("default"),
        help=prop.get("description", ""),
        max_length=prop.get("maxLength"),
    )
    if "enum" in prop:
        base.kind, base.choices = "select", [str(v) for v in prop["enum"]]
    elif prop.get("type") in ("integer", "number"):
        base.kind = prop["type"]
        base.minimum = prop.get("minimum", prop.get("exclusiveMinimum"))
        base.maximum = prop.get("maximum", prop.get("exclusiveMaximum"))
    elif prop.get("type") == "boolean":
        base.kind = "checkbox"
    elif "anyOf" in prop:  # e.g. a number or one of a few words: free text with hints
        for option in (_resolve(o, defs) for o in prop["anyOf"]):
            base.choices += [str(v) for v in option.get("enum", [])]
            if "const" in option:
                base.choices.append(str(option["const"]))
    if name == "layer" and model is not None and LAYERS in model.capabilities:
        base.choices = list(require(model, LayerModel).layer_names())
    return base


def settings_from_form(method: type[Method], form: Any) -> dict[str, Any]:
    """The submitted values of ``method``'s fields (named ``<method>.<setting>``);
    empty ones are left out, so the setting keeps its default."""
    values: dict[str, Any] = {}
    for item in form_fields(method):
        given = [v for v in form.getlist(f"{method.name}.{item.name}") if isinstance(v, str)]
        if item.kind == "checkbox":  # a hidden "false" precedes the box: the last one wins
            if given:
                values[item.name] = given[-1]
        elif given and given[-1].strip():
            values[item.name] = given[-1].strip()
    return values
