"""What a visualization explains: a class of the model, by index, label and
probability."""

from __future__ import annotations

from typing import NamedTuple


class Target(NamedTuple):
    """One explained class: its index, label and predicted probability."""

    index: int  # type: ignore[assignment]  # shadows tuple.index, on purpose: t.index
    label: str
    probability: float
