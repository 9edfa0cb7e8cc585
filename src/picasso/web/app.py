"""``create_app(settings)``: the HTML pages and the JSON REST API under ``/api/v1``.

The factory only assembles: shared state and the lifespan (:mod:`.state`), the request
guard (:mod:`.security`), error answers (:mod:`.errors`), the routers (:mod:`.api`,
:mod:`.pages`) and the locally served docs page. Models load in the lifespan.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from .._version import __version__
from .errors import install_error_handlers
from .security import Guard
from .settings import WebSettings
from .state import make_lifespan

STATIC = Path(__file__).parent / "static"
AUDIT_STATIC = Path(__file__).parent.parent / "audits" / "static"  # the report's style


def create_app(settings: WebSettings | None = None) -> FastAPI:
    """A Picasso web app; models load when it starts (lifespan)."""
    from .api import router as api
    from .pages import router as pages

    settings = settings or WebSettings()
    app = FastAPI(
        docs_url=None,  # served below from local assets, not a CDN
        redoc_url=None,
        title="Picasso",
        version=__version__,
        description="See what an image classifier looks at: models, visualization methods, "
        "image uploads and jobs with progress.",
        lifespan=make_lifespan(settings),
    )
    app.state.settings = settings
    install_error_handlers(app)
    app.add_middleware(Guard, settings=settings)
    app.include_router(api, prefix="/api/v1")
    app.include_router(pages)
    _mount_static(app)
    return app


def _mount_static(app: FastAPI) -> None:
    """The app's own assets, and the interactive API docs with Swagger UI's files."""
    app.mount("/static/own", StaticFiles(directory=STATIC), name="static-own")
    app.mount("/static/audit", StaticFiles(directory=AUDIT_STATIC), name="static-audit")
    try:  # Swagger UI 5 (OpenAPI 3.1), shipped inside the fastapi-offline wheel
        import fastapi_offline
    except ImportError:  # the page needs the web extra; the API works without it
        return
    assets = Path(fastapi_offline.__file__).parent / "static"
    app.mount("/static/swagger", StaticFiles(directory=assets), name="swagger")

    @app.get("/docs", include_in_schema=False)
    def docs() -> FileResponse:
        return FileResponse(STATIC / "docs.html", media_type="text/html")
