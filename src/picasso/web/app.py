"""``create_app(settings)``: the HTML pages and the JSON REST API under ``/api/v1``.

Models are loaded in the lifespan, not at import; the runner, store, models and
templates live on ``app.state``. Every error is a message a person can act on, never a
stack trace: an HTML page for pages, JSON with a ``detail`` for the API.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from .._version import __version__
from ..core.errors import (
    CapabilityError,
    InvalidImageError,
    JobError,
    ModelLoadError,
    PicassoError,
    SettingsError,
    TargetError,
    UnknownMethodError,
)
from ..core.images import DEFAULT_MAX_PIXELS

DEFAULT_MODELS = ("demo:tanks-biased", "demo:tanks-fair", "demo:digits")


def default_models() -> tuple[str, ...]:
    """The demo models, plus ``demo:imagenet`` where its extra is installed."""
    from ..demo import imagenet

    return DEFAULT_MODELS + (("demo:imagenet",) if imagenet.available() else ())


MAX_FILES = 32  # images in one submitted form
COOKIE = "picasso_token"  # where the login page keeps the API token


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
    JobError: 409,
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

        from .pages import make_templates

        # Loading models is blocking work: keep it off the event loop.
        app.state.models, app.state.registry, app.state.runner = await asyncio.to_thread(start)
        app.state.templates = make_templates(app.state.registry)
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

    app.state.settings = settings

    def answer(request: Request, status: int, message: str) -> Response:
        """JSON for the API (and anything that is not a page), HTML for pages."""
        if _wants_html(request) and hasattr(request.app.state, "templates"):
            from .pages import error_page

            return error_page(request, status, message)
        return JSONResponse({"detail": message}, status_code=status)

    @app.exception_handler(PicassoError)
    async def picasso_error(request: Request, exc: PicassoError) -> Response:
        status = next((code for kind, code in STATUS.items() if isinstance(exc, kind)), 400)
        return answer(request, status, str(exc))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        return answer(request, exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        if not _wants_html(request):
            return JSONResponse({"detail": jsonable_encoder(exc.errors())}, status_code=422)
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'][1:]) or 'request'}: {e['msg']}"
            for e in exc.errors()
        )
        return answer(request, 422, problems)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        return answer(request, 500, f"internal error ({type(exc).__name__})")

    @app.middleware("http")
    async def guard(request: Request, call_next):
        token = settings.api_token
        if token and request.url.path not in OPEN_PATHS:
            given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
            given = given or request.cookies.get(COOKIE, "")
            if not secrets.compare_digest(given, token):
                if _wants_html(request):
                    return RedirectResponse("/login", status_code=303)
                return JSONResponse(
                    {"detail": "missing or wrong API token (send 'Authorization: Bearer <token>')"},
                    status_code=401,
                )
        if request.method == "POST":
            # Another site's page must not post forms here (cross-site request forgery).
            origin = request.headers.get("origin")
            if origin and urlsplit(origin).netloc != request.headers.get("host"):
                return answer(request, 403, f"requests from {origin} are not accepted")
            limit = settings.max_upload_bytes * MAX_FILES + 1_000_000
            length = request.headers.get("content-length") or "0"
            if not length.isdigit():
                return answer(request, 400, "malformed Content-Length header")
            if int(length) > limit:
                return answer(request, 413, f"request is larger than {limit:,} bytes")
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
    from .pages import router as pages

    app.include_router(router, prefix="/api/v1")
    app.include_router(pages)
    _mount_docs(app)
    return app


OPEN_PATHS = frozenset({"/login", "/static/own/app.css", "/static/own/app.js"})


def _wants_html(request: Request) -> bool:
    """Pages get HTML errors; the API, the OpenAPI document and files get JSON."""
    path = request.url.path
    if path.startswith(("/api/", "/static/", "/openapi")):
        return False
    return "application/json" not in request.headers.get("accept", "")


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
