"""What every command shares: one-line errors, image arguments, the model option and
a progress bar."""

from __future__ import annotations

import sys
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from ..core.errors import PicassoError
from ..plugins import MethodRegistry

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".bmp", ".tif", ".tiff", ".webp", ".ppm"}


def fail(message: str, code: int = 1) -> typing.NoReturn:
    """Print ``error: message`` on one line and exit with ``code``."""
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def expand_images(arguments: tuple[str, ...]) -> list[Path]:
    """Paths, folders (their images) and ``demo:PATTERN`` to a list of files."""
    from ..demo import demo_images

    paths: list[Path] = []
    for arg in arguments:
        if arg.startswith("demo:"):
            paths.extend(demo_images(arg[len("demo:") :] or "*"))
            continue
        path = Path(arg)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise PicassoError(f"{path}: folder holds no images")
            paths.extend(found)
        else:
            paths.append(path)
    return paths


def model_option(default: str | None) -> Callable[[Any], Any]:
    """``--model/-m``: a model file, folder, card or a source's model (demo:NAME)."""
    return click.option(
        "--model",
        "-m",
        "model_ref",
        default=default,
        show_default=default is not None,
        help="Model file, folder, model card (.toml) or demo:NAME.",
    )


def method_option(registry: MethodRegistry, default: str) -> Callable[[Any], Any]:
    """``--method``: one of the registered methods (built-ins and plugins)."""
    return click.option(
        "--method",
        default=default,
        show_default=True,
        help=f"One of: {', '.join(sorted(registry))}.",
    )


class ProgressBar:
    """A progress callback that draws a bar on a terminal (nothing when piped)."""

    def __init__(self, label: str, quiet: bool = False) -> None:
        self.label = label
        self.quiet = quiet
        self._bar: Any = None

    def __call__(self, done: int, total: int) -> None:
        if self.quiet or total < 2 or not sys.stderr.isatty():
            return
        if self._bar is None:
            self._bar = click.progressbar(length=total, label=self.label, file=sys.stderr)
            self._bar.__enter__()
        self._bar.update(done - self._bar.pos)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
