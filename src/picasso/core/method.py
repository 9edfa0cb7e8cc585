"""The contract a visualization implements.

A method is a class with a ``name``, a one-line ``description``, a paper
``reference``, a pydantic ``Settings`` model (the CLI flags, and later the web form
and the API schema, are generated from it), the capabilities it ``requires``, and
:meth:`Method.explain`. Built-in methods and plugins implement the same contract.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import CapabilityError, SettingsError
from .model import Model, resolve_top
from .progress import Progress


class MethodSettings(BaseModel):
    """Base for a method's settings: typed, bounded fields with defaults and help.
    Numbers must be finite (NaN and infinities are refused)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    batch_size: int = Field(
        16, ge=1, le=4096, description="Model inputs per forward/backward call."
    )


@dataclass
class MethodOutput:
    """What a method computes for one image.

    ``maps`` holds one (H, W) float32 map per target at model input size, or is empty
    for methods that produce no map. ``extras`` carries method-specific arrays or
    numbers (they are stored in the JSON summary when JSON-serialisable).
    """

    maps: np.ndarray
    extras: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Cost:
    """What one result costs: model passes in all, and the setting that drives their
    number (named when a server refuses it)."""

    passes: int
    driver: str = ""


@dataclass
class BatchOutput:
    """What a method computes for many images, one target each: ``maps`` (N, H, W),
    one ``extras`` dict per image, the model's ``probabilities`` (N, classes) for the
    images and the ``targets`` explained (a target given as None is the top class)."""

    maps: np.ndarray
    extras: list[dict[str, Any]]
    probabilities: np.ndarray
    targets: list[int]


class Method:
    """Base class of every visualization.

    Subclasses set the class attributes and override :meth:`explain`. ``signed``
    says whether maps have meaningful signs (rendered with a diverging colormap) or
    are magnitudes (a sequential one).
    """

    name: ClassVar[str]
    description: ClassVar[str]
    reference: ClassVar[str] = ""
    Settings: ClassVar[type[MethodSettings]] = MethodSettings
    requires: ClassVar[frozenset[str]] = frozenset()
    signed: ClassVar[bool] = False
    produces_map: ClassVar[bool] = True
    #: What one result costs, in model passes (shown next to the map).
    cost: ClassVar[str] = ""
    #: What the map's values measure: the colour bar's label ("score drop", ...).
    quantity: ClassVar[str] = ""
    #: Optional Jinja template (a path relative to the file that defines the method)
    #: that the web app renders for this method's results instead of its generic one.
    template: ClassVar[str | None] = None

    def explain(
        self,
        model: Model,
        batch: np.ndarray,
        targets: Sequence[int],
        settings: Any,
        progress: Progress,
    ) -> MethodOutput:
        """Compute the maps for one preprocessed image.

        Args:
            model: the model, behind the framework-neutral surface.
            batch: the preprocessed image, float32, shape (1, C, H, W).
            targets: class indices to explain.
            settings: an instance of ``self.Settings``.
            progress: call ``progress(done, total)`` after each batch of model calls;
                it raises :class:`~picasso.core.errors.Cancelled` when cancelled.
        Returns:
            a :class:`MethodOutput` with one (H, W) map per target.
        """
        raise NotImplementedError

    def explain_batch(
        self,
        model: Model,
        batch: np.ndarray,
        targets: Sequence[int | None],
        settings: Any,
        progress: Progress,
    ) -> BatchOutput:
        """Maps for many preprocessed images (N, C, H, W), one target per image (None:
        the image's top class), each equal to :meth:`explain` of that image and target,
        with the model's probabilities for the images. This default predicts, then
        explains image by image; methods that can share model calls across images (and
        take the prediction from the same pass) override it. ``progress(done, total)``
        counts images."""
        probabilities = model.probabilities(batch)
        chosen = resolve_top(targets, probabilities)
        inner = Progress(lambda _done, _total: progress.check())
        maps = np.empty((len(batch), *batch.shape[2:]), np.float32)
        extras = []
        for i in range(len(batch)):
            output = self.explain(model, batch[i : i + 1], [chosen[i]], settings, inner)
            maps[i] = np.asarray(output.maps, np.float32)[0]
            extras.append(dict(output.extras))
            progress(i + 1, len(batch))
        return BatchOutput(maps, extras, probabilities, chosen)

    @classmethod
    def estimate(cls, settings: Any, input_size: tuple[int, int], targets: int) -> Cost:
        """The work of explaining ``targets`` classes of one image, from the settings
        alone (before any work). Default: one pass per target. Methods that do more say
        so."""
        return Cost(targets)

    @classmethod
    def check_settings(cls, model: Model, settings: Any) -> None:
        """Check settings that depend on the model (e.g. a layer name) before any work;
        raise :class:`SettingsError` naming the setting. Default: nothing to check."""
        return None

    @classmethod
    def parse_settings(cls, values: dict[str, Any] | MethodSettings | None) -> MethodSettings:
        """Validate user-given settings, raising :class:`SettingsError` with one line
        per problem."""
        if isinstance(values, cls.Settings):
            return values
        if isinstance(values, MethodSettings):
            values = values.model_dump()
        try:
            return cls.Settings.model_validate(dict(values or {}))
        except ValidationError as exc:
            problems: dict[str, str] = {}
            for err in exc.errors():
                where = ".".join(str(p) for p in err["loc"][:1]) or "settings"
                msg = err["msg"]
                if err["type"] == "extra_forbidden":
                    known = ", ".join(cls.Settings.model_fields)
                    msg = f"not a setting of {cls.name} (its settings: {known})"
                problems.setdefault(where, msg)
            text = "; ".join(f"{where}: {msg}" for where, msg in problems.items())
            raise SettingsError(f"{cls.name}: {text}", problems) from None

    @classmethod
    def missing_capabilities(cls, model: Model) -> tuple[list[str], list[str]]:
        """The capabilities this method needs that ``model`` lacks, and the model's
        reasons for lacking them (e.g. which extra to install)."""
        missing = sorted(set(cls.requires) - set(model.capabilities))
        reasons = [r for r in (model.capability_problem(c) for c in missing) if r]
        return missing, reasons

    @classmethod
    def unavailable(cls, model: Model) -> str | None:
        """Why this method cannot run on ``model``, for a person choosing a method
        ("needs layers, which this model lacks (...)"), or None when it can."""
        missing, reasons = cls.missing_capabilities(model)
        if not missing:
            return None
        return f"needs {', '.join(missing)}, which this model lacks" + (
            f" ({'; '.join(reasons)})" if reasons else ""
        )

    @classmethod
    def check_capabilities(cls, model: Model) -> None:
        """Refuse, before any work starts, a model this method cannot run on."""
        missing, reasons = cls.missing_capabilities(model)
        if missing:
            raise CapabilityError(
                f"{cls.name} needs {', '.join(missing)}, which model "
                f"{model.info.name!r} ({model.info.framework}) does not provide"
                + "".join(f"; {r}" for r in reasons)
            )
