"""``create_app(settings)``: the JSON REST API under ``/api/v1`` (pages come later).

Models are loaded in the lifespan, not at import; the runner, store and models live on
``app.state`` and reach the routes through dependencies. Every error is JSON with a
``detail`` a person can act on, never a stack trace.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from .._version import __version__
from ..core.errors import (
    CapabilityError,
    InvalidImageError,
    ModelLoadError,
    PicassoError,
    SettingsError,
    TargetError,
    UnknownMethodError,
)
from ..core.images import DEFAULT_MAX_PIXELS

DEFAULT_MODELS = ("demo:tanks-biased", "demo:tanks-fair", "demo:digits")


@dataclass
class WebSettings:
    """Everything the app is configured with (tests pass their own)."""

    models: tuple[str, ...] = DEFAULT_MODELS
    data_dir: Path = Path("picasso-data")
    workers: int = 2
    time_limit: float = 600.0
    max_upload_bytes: int = 20 * 1024 * 1024
    max_pixels: int = DEFAULT_MAX_PIXELS
    plugin_dirs: tuple[Path, ...] | None = None
    api_token: str | None = None  # required on every request when set


STATUS = {
    UnknownMethodError: 404,
    ModelLoadError: 404,
    InvalidImageError: 422,
    SettingsError: 422,
    TargetError: 422,
    CapabilityError: 409,
}


def create_app(settings: WebSettings | None = None) -> FastAPI:
    """A Picasso web app; models load when it starts (lifespan)."""
    settings = settings or WebSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from ..jobs import JobRunner, JobStore
        from ..models import load_model
        from ..plugins import discover

        def start():
            models = {}
            for ref in settings.models:
                model = load_model(ref)
                models[model.info.name] = model
            store = JobStore(settings.data_dir)
            registry = discover(settings.plugin_dirs)
            runner = JobRunner(
                store,
                models,
                registry,
                workers=settings.workers,
                time_limit=settings.time_limit,
                max_pixels=settings.max_pixels,
            )
            return models, registry, runner

        # Loading models is blocking work: keep it off the event loop.
        app.state.models, app.state.registry, app.state.runner = await asyncio.to_thread(start)
        app.state.settings = settings
        try:
            yield
        finally:
            # Running jobs stop at their next batch and record it; only then may the
            # database close (a worker must never write to a closed store).
            await asyncio.to_thread(app.state.runner.shutdown, True)
            app.state.runner.store.close()

    app = FastAPI(
        docs_url=None,  # served below from local assets, not a CDN
        redoc_url=None,
        title="Picasso",
        version=__version__,
        description="See what an image classifier looks at: models, visualization methods, "
        "image uploads and jobs with progress.",
        lifespan=lifespan,
    )

    @app.exception_handler(PicassoError)
    async def picasso_error(_request: Request, exc: PicassoError) -> JSONResponse:
        status = next((code for kind, code in STATUS.items() if isinstance(exc, kind)), 400)
        return JSONResponse({"detail": str(exc)}, status_code=status)

    @app.exception_handler(Exception)
    async def unexpected(_request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": f"internal error ({type(exc).__name__})"}, status_code=500)

    @app.middleware("http")
    async def guard(request: Request, call_next):
        token = settings.api_token
        if token:
            given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
            if not secrets.compare_digest(given, token):
                return JSONResponse(
                    {"detail": "missing or wrong API token (send 'Authorization: Bearer <token>')"},
                    status_code=401,
                )
        response = await call_next(request)
        # No inline scripts anywhere; Swagger UI sets inline styles on the docs page.
        style = " style-src 'self' 'unsafe-inline';" if request.url.path == "/docs" else ""
        response.headers["Content-Security-Policy"] = (
            "default-src 'self'; img-src 'self' data:; object-src 'none'; "
            f"frame-ancestors 'none'; base-uri 'none';{style}"
        )
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response

    from .api import router

    app.include_router(router, prefix="/api/v1")
    _mount_docs(app)
    return app


STATIC = Path(__file__).parent / "static"


def _mount_docs(app: FastAPI) -> None:
    """The interactive API docs page, with Swagger UI's files served by the app."""
    from fastapi.responses import FileResponse
    from fastapi.staticfiles import StaticFiles

    app.mount("/static/own", StaticFiles(directory=STATIC), name="static-own")
    try:  # Swagger UI 5 (OpenAPI 3.1), shipped inside the fastapi-offline wheel
        import fastapi_offline
    except ImportError:  # the page needs the web extra; the API works without it
        return
    assets = Path(fastapi_offline.__file__).parent / "static"
    app.mount("/static/swagger", StaticFiles(directory=assets), name="swagger")

    @app.get("/docs", include_in_schema=False)
    def docs() -> FileResponse:
        return FileResponse(STATIC / "docs.html", media_type="text/html")
