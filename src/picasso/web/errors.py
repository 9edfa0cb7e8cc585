"""Errors as answers a person can act on, never a stack trace: an HTML page for pages,
JSON with a ``detail`` for the API and files."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..core.errors import (
    BusyError,
    CapabilityError,
    InvalidImageError,
    JobError,
    ModelLoadError,
    PicassoError,
    SettingsError,
    TargetError,
    UnknownMethodError,
)
from .headers import secure


class ErrorBody(BaseModel):
    """Every error answer of the API: a message a person can act on and, for request
    validation errors, each problem on its own."""

    detail: str
    errors: list[dict[str, Any]] | None = None


#: What each status means, for the OpenAPI document.
MEANINGS = {
    400: "Malformed request (body, header, or a host name this server does not answer to)",
    401: "Missing or wrong API token",
    403: "Cross-site request refused",
    404: "No such model, method, image, job or file",
    409: "The request conflicts with the server's state (e.g. a method the model cannot run)",
    413: "Request body or upload too large",
    422: "Invalid request (values, settings, targets, images)",
    429: "Too many jobs waiting; see Retry-After",
}


def documented(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for these error statuses, all with :class:`ErrorBody`."""
    return {code: {"model": ErrorBody, "description": MEANINGS[code]} for code in codes}


#: HTTP status of each kind of Picasso error (others are 400).
STATUS: dict[type[PicassoError], int] = {
    UnknownMethodError: 404,
    ModelLoadError: 404,
    InvalidImageError: 422,
    SettingsError: 422,
    TargetError: 422,
    CapabilityError: 409,
    JobError: 409,
    BusyError: 429,
}


def status_of(exc: PicassoError) -> int:
    return next((code for kind, code in STATUS.items() if isinstance(exc, kind)), 400)


def wants_html(request: Request) -> bool:
    """Pages get HTML errors; the API, the OpenAPI document and files get JSON."""
    path = request.url.path
    if path.startswith(("/api/", "/static/", "/openapi")):
        return False
    return "application/json" not in request.headers.get("accept", "")


def answer(request: Request, status: int, message: str) -> Response:
    """JSON for the API (and anything that is not a page), HTML for pages."""
    if wants_html(request) and hasattr(request.app.state, "services"):
        from .templating import error_page

        return error_page(request, status, message)
    return JSONResponse({"detail": message}, status_code=status)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(PicassoError)
    async def picasso_error(request: Request, exc: PicassoError) -> Response:
        response = answer(request, status_of(exc), str(exc))
        if isinstance(exc, BusyError):
            response.headers["Retry-After"] = str(exc.retry_after)
        return response

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        return answer(request, exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'][1:]) or 'request'}: {e['msg']}"
            for e in exc.errors()
        )
        if not wants_html(request):
            errors = [
                {k: v for k, v in e.items() if k in ("loc", "msg", "type")} for e in exc.errors()
            ]  # no echoed input: it may be huge, or not JSON at all (NaN)
            body = {"detail": problems[:2000], "errors": jsonable_encoder(errors)}
            return JSONResponse(body, status_code=422)
        return answer(request, 422, problems)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        response = answer(request, 500, f"internal error ({type(exc).__name__})")
        return secure(response, request.url.path)  # this answer is made outside the guard
