"""Form fields from a Settings schema, and form values back into settings."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from starlette.datastructures import FormData

from picasso.core.method import Method, MethodSettings
from picasso.web.forms import form_fields, settings_from_form


class KitchenSink(MethodSettings):
    count: int = Field(3, ge=1, le=9, description="How many.")
    ratio: float = Field(0.5, gt=0, lt=1, description="A fraction.")
    mode: Literal["fast", "exact"] = Field("fast", description="Which path.")
    smooth: bool = Field(True, description="Smooth the map.")
    baseline: float | Literal["mean", "blur"] = Field(0.0, description="Fill.")
    note: str = Field("", max_length=20, description="Free text.")


class Sink(Method):
    name = "sink"
    description = "every kind of setting"
    Settings = KitchenSink


def test_every_kind_of_setting_becomes_a_field():
    fields = {f.name: f for f in form_fields(Sink)}
    assert list(fields)[-1] == "batch_size"  # the shared setting comes last
    count = fields["count"]
    assert (count.kind, count.minimum, count.maximum, count.step) == ("integer", 1, 9, "1")
    assert fields["ratio"].kind == "number" and fields["ratio"].step == "any"
    assert (fields["ratio"].minimum, fields["ratio"].maximum) == (0, 1)  # exclusive bounds
    assert fields["mode"].kind == "select" and fields["mode"].choices == ["fast", "exact"]
    assert fields["smooth"].kind == "checkbox" and fields["smooth"].default is True
    assert fields["baseline"].kind == "text" and fields["baseline"].choices == ["mean", "blur"]
    assert fields["note"].max_length == 20 and fields["note"].help == "Free text."


def test_form_values_parse_into_settings():
    form = FormData(
        [
            ("sink.count", "7"),
            ("sink.ratio", " 0.25 "),
            ("sink.mode", "exact"),
            ("sink.smooth", "false"),  # the hidden field; the box was not ticked
            ("sink.baseline", "blur"),
            ("sink.note", ""),  # empty: keeps the default
            ("other.count", "1"),  # another method's field is ignored
        ]
    )
    values = settings_from_form(Sink, form)
    assert "note" not in values
    parsed = Sink.parse_settings(values)
    assert (parsed.count, parsed.ratio, parsed.mode, parsed.smooth) == (7, 0.25, "exact", False)
    assert parsed.baseline == "blur"
    ticked = FormData([("sink.smooth", "false"), ("sink.smooth", "true"), ("sink.baseline", "2")])
    parsed = Sink.parse_settings(settings_from_form(Sink, ticked))
    assert parsed.smooth is True and parsed.baseline == 2.0
