"""``picasso serve``: the web app and its REST API, configured by options and an
optional TOML file (:class:`ServeConfig`; options given on the command line win)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..core.images import DEFAULT_MAX_PIXELS
from .common import fail

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

SHUTDOWN_GRACE_S = 3
LOOPBACK = ("127.0.0.1", "localhost", "::1")


class ServeConfig(BaseModel):
    """How ``picasso serve`` runs; every key may appear in the ``--config`` file."""

    model_config = ConfigDict(extra="forbid", strict=True)

    models: tuple[str, ...] | None = Field(None, description="default: the demo models")
    host: str = "127.0.0.1"
    port: int = Field(8765, ge=1, le=65535)
    data_dir: Path = Path("picasso-data")
    workers: int = Field(2, ge=1, le=64)
    threads: int | None = Field(
        None, ge=1, le=1024, description="threads per job; default: cores / workers"
    )
    time_limit: float = Field(600.0, gt=0)
    max_upload_mb: float = Field(20.0, gt=0)
    max_pixels: int = Field(DEFAULT_MAX_PIXELS, ge=1)
    plugins: tuple[Path, ...] | None = None
    data_root: Path | None = Field(None, description="sub-folders: datasets to audit")
    max_passes: int = Field(200_000, ge=1, description="model passes one job may take")
    max_queued: int = Field(64, ge=1, description="jobs waiting at once (more: 429)")
    gradient_pixels: int = Field(
        800_000, ge=1, description="input pixels per forward+backward call (memory)"
    )
    forward_pixels: int = Field(4_000_000, ge=1, description="input pixels per forward call")
    audit_time_limit: float = Field(6 * 3600.0, gt=0)

    @classmethod
    def read(cls, path: Path) -> ServeConfig:
        """Parse a TOML file; relative paths in it are relative to its folder."""
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            fail(f"{path}: not a readable TOML file ({exc})")
        for key in ("data_dir", "data_root", "plugins"):  # TOML has no path type
            if key in raw and isinstance(raw[key], str):
                raw[key] = (path.parent / raw[key]).resolve()
            elif key in raw and isinstance(raw[key], list):
                raw[key] = tuple(path.parent / p for p in raw[key] if isinstance(p, str))
        for key in ("models",):
            if isinstance(raw.get(key), list):
                raw[key] = tuple(raw[key])
        for key in ("time_limit", "max_upload_mb", "audit_time_limit"):
            if isinstance(raw.get(key), int) and not isinstance(raw[key], bool):
                raw[key] = float(raw[key])
        return cls.validated(raw, str(path))

    @classmethod
    def validated(cls, values: dict[str, Any], where: str) -> ServeConfig:
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            problems = []
            for error in exc.errors():
                key = ".".join(str(p) for p in error["loc"][:1])
                if error["type"] == "extra_forbidden":
                    problems.append(f"unknown key {key!r} (known: {', '.join(cls.model_fields)})")
                elif error["type"].endswith("_type"):
                    problems.append(f"{key} has the wrong type ({error['msg']})")
                else:
                    problems.append(f"{key}: {error['msg']}")
            fail(f"{where}: {'; '.join(problems)}")

    def web_settings(self, api_token: str | None) -> Any:
        from ..jobs import Budget
        from ..web import WebSettings
        from ..web.settings import default_models

        return WebSettings(
            models=self.models if self.models is not None else default_models(),
            data_dir=self.data_dir,
            workers=self.workers,
            threads=self.threads,
            time_limit=self.time_limit,
            max_upload_bytes=int(self.max_upload_mb * 2**20),
            max_pixels=self.max_pixels,
            plugin_dirs=self.plugins,
            data_root=self.data_root,
            audit_time_limit=self.audit_time_limit,
            budget=Budget(
                passes=self.max_passes,
                forward_pixels=self.forward_pixels,
                gradient_pixels=self.gradient_pixels,
                queued=self.max_queued,
            ),
            api_token=api_token,
        )


@click.command("serve")
@click.option(
    "--model",
    "-m",
    "models",
    multiple=True,
    help="Model to serve (repeatable). Default: the bundled demo models.",
)
@click.option(
    "--config",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="A TOML file with any of: "
    + ", ".join(ServeConfig.model_fields)
    + ". Options given here win over it.",
)
@click.option(
    "--host",
    default=None,
    help="Address to bind [default: 127.0.0.1]; anything but loopback needs --api-token.",
)
@click.option("--port", default=None, type=click.IntRange(1, 65535), help="[default: 8765]")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where job rows, uploads and results are kept [default: picasso-data].",
)
@click.option(
    "--workers", default=None, type=click.IntRange(1, 64), help="Jobs running at once [default: 2]."
)
@click.option(
    "--threads",
    default=None,
    type=click.IntRange(1, 1024),
    help="CPU threads per job [default: the cores divided among the workers].",
)
@click.option(
    "--data-root",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    default=None,
    help="A folder whose sub-folders web users may audit as datasets.",
)
@click.option(
    "--allowed-host",
    "allowed_hosts",
    multiple=True,
    help="A host name a loopback server also answers to (repeatable; others get 400).",
)
@click.option(
    "--api-token",
    envvar="PICASSO_API_TOKEN",
    default=None,
    help="Require 'Authorization: Bearer TOKEN' (env PICASSO_API_TOKEN).",
)
def serve_command(
    models: tuple[str, ...],
    config: Path | None,
    host: str | None,
    port: int | None,
    data_dir: Path | None,
    workers: int | None,
    threads: int | None,
    data_root: Path | None,
    allowed_hosts: tuple[str, ...],
    api_token: str | None,
) -> None:
    """Start the web app and its REST API (/api/v1, OpenAPI at /openapi.json)."""
    from ..web import create_app

    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "data_dir": data_dir,
        "workers": workers,
        "threads": threads,
        "data_root": data_root.resolve() if data_root else None,
    }
    given = {k: v for k, v in options.items() if v is not None}
    if models:
        given["models"] = tuple(models)
    base = ServeConfig.read(config) if config else ServeConfig()
    serve = ServeConfig.validated({**base.model_dump(), **given}, "options")
    if serve.host not in LOOPBACK and not api_token:
        fail(
            f"binding to {serve.host} exposes the app beyond this machine; "
            "set --api-token (or PICASSO_API_TOKEN)",
            code=2,
        )
    try:
        import uvicorn
    except ImportError:
        fail("the web app needs its extra: pip install 'picasso-vision[web]'")
    settings = serve.web_settings(api_token)
    if serve.host in LOOPBACK:  # answer only to loopback names: no DNS rebinding
        from dataclasses import replace

        from ..web.security import LOOPBACK_HOSTS

        settings = replace(settings, allowed_hosts=LOOPBACK_HOSTS | set(allowed_hosts))
    click.echo(
        f"Picasso on http://{serve.host}:{serve.port}/ (API: /api/v1, data: "
        f"{settings.data_dir}); loading {len(settings.models)} model(s)..."
    )
    app = create_app(settings)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=serve.host,
            port=serve.port,
            log_level="warning",
            log_config=None,  # leave the process's logging set-up alone (warnings still show)
            # Open progress streams end when the server stops (they watch should_exit);
            # anything still open after the grace period is closed, then the lifespan
            # stops the jobs, which are recorded as interrupted.
            timeout_graceful_shutdown=SHUTDOWN_GRACE_S,
        )
    )
    app.state.stopping = lambda: server.should_exit
    server.run()
