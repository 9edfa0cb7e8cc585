"""Typed errors that carry a message a user can act on.

Every error Picasso raises on purpose derives from :class:`PicassoError`; the CLI
prints its message on one line and exits non-zero, and never shows a stack trace.
"""

from __future__ import annotations


def quoted(value: object, limit: int = 80) -> str:
    """A user-given value for an error message: quoted, and cut if it is long (an error
    never echoes a megabyte back)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 5] + "...'"


class PicassoError(Exception):
    """Base class for errors whose message is meant for the user."""


class InvalidImageError(PicassoError):
    """An input is not a readable image, or breaks a size limit."""


class ModelLoadError(PicassoError):
    """A model file, folder or model card cannot be loaded."""


class MissingDependencyError(PicassoError):
    """An optional framework is needed but not installed."""

    def __init__(self, package: str, extra: str, purpose: str) -> None:
        super().__init__(
            f"{purpose} needs the '{package}' package: pip install 'picasso-vision[{extra}]'"
        )
        self.package = package
        self.extra = extra


class UnknownMethodError(PicassoError):
    """The requested visualization is not registered."""


class SettingsError(PicassoError):
    """A method's settings are out of range or of the wrong type. ``fields`` maps each
    offending setting to its problem (for forms that show it next to the field)."""

    def __init__(self, message: str, fields: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.fields = dict(fields or {})


class CapabilityError(PicassoError):
    """A method needs a capability (gradients, layers) that the model lacks."""


class TargetError(PicassoError):
    """A requested target class does not exist for the model."""


class JobError(PicassoError):
    """A job cannot do what was asked (e.g. sanity-check a job that has no map yet)."""


class BusyError(PicassoError):
    """The server's queue is full; try again after ``retry_after`` seconds."""

    def __init__(self, message: str, retry_after: int = 30) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Cancelled(PicassoError):
    """The work was cancelled before it finished."""

    def __init__(self, message: str = "cancelled") -> None:
        super().__init__(message)
