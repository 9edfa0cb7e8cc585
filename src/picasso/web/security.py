"""The guard every request passes: the API token (header or the login page's cookie),
no cross-site posts, a bound on request size, and security headers on the answer.

It is middleware rather than a route dependency on purpose: the OpenAPI document, the
docs page and the static mounts are not API routes, and must be guarded all the same.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from .errors import answer, wants_html
from .settings import WebSettings

COOKIE = "picasso_token"  # where the login page keeps the API token
OPEN_PATHS = frozenset(
    {"/login", "/static/own/app.css", "/static/own/app.js", "/static/audit/report.css"}
)


def token_matches(given: str, token: str) -> bool:
    return secrets.compare_digest(given, token)


def install_security(app: FastAPI, settings: WebSettings) -> None:
    @app.middleware("http")
    async def guard(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        token = settings.api_token
        if token and request.url.path not in OPEN_PATHS:
            given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
            given = given or request.cookies.get(COOKIE, "")
            if not token_matches(given, token):
                if wants_html(request):
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
            limit = settings.max_request_bytes
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
