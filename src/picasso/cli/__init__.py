"""The ``picasso`` command line: one module per command.

Method settings become typed options, generated from each method's ``Settings`` model,
so a plugin's settings appear here without any change to this package. Errors print
one line and exit non-zero; no stack traces.
"""

from __future__ import annotations

import os

import click

from .._version import __version__
from ..core.errors import PicassoError
from ..plugins import MethodRegistry, discover
from .audit import audit_command
from .common import fail
from .explain import explain_command
from .methods import methods_command
from .models import models_command
from .sanity import sanity_command
from .serve import serve_command

__all__ = ["build_cli", "main"]


def build_cli(registry: MethodRegistry) -> click.Group:
    """The command group, with ``explain`` options generated from ``registry``."""

    @click.group(context_settings={"help_option_names": ["-h", "--help"]})
    @click.version_option(__version__, prog_name="picasso")
    def cli() -> None:
        """Picasso: see what an image classifier looks at."""

    cli.add_command(explain_command(registry))
    cli.add_command(sanity_command(registry))
    cli.add_command(audit_command(registry))
    cli.add_command(serve_command)
    cli.add_command(methods_command(registry))
    cli.add_command(models_command())
    return cli


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``picasso`` command."""
    cli = build_cli(discover())
    try:
        cli.main(args=argv, prog_name="picasso", standalone_mode=True)
    except PicassoError as exc:  # anything not caught closer to the user
        fail(str(exc))
    except Exception as exc:  # a model or framework failure: one line, not a traceback
        if os.environ.get("PICASSO_DEBUG"):
            raise
        detail = " ".join(str(exc).split())[:300]
        fail(f"{type(exc).__name__}: {detail} (set PICASSO_DEBUG=1 to see where it happened)")
