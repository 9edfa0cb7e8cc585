"""The guard every request passes, as one ASGI middleware: the ``Host`` (against DNS
rebinding), the API token (header or the login page's cookie), no cross-site posts, the
request body cut at its limit while it streams (chunked or not), no non-finite numbers
in JSON bodies, and security headers on every answer.

It is middleware rather than a route dependency on purpose: the OpenAPI document, the
docs page and the static mounts are not API routes, and must be guarded all the same.
"""

from __future__ import annotations

import hmac
import json
from typing import Any
from urllib.parse import urlsplit

from fastapi import Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import answer, wants_html
from .headers import secure, security_headers
from .settings import WebSettings

COOKIE = "picasso_token"  # where the login page keeps the API token
OPEN_PATHS = frozenset(
    {"/login", "/static/own/app.css", "/static/own/app.js", "/static/audit/report.css"}
)
#: Names a loopback server answers to (any port), besides ``--allowed-host`` ones.
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


def token_matches(given: str, token: str) -> bool:
    """Constant-time comparison on bytes: any characters, no exception."""
    return hmac.compare_digest(given.encode("utf-8", "replace"), token.encode("utf-8", "replace"))


def host_name(host: str) -> str:
    """A ``Host`` header's name, without the port (IPv6 literals unbracketed)."""
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class BodyTooLarge(Exception):
    pass


class Guard:
    """The request guard (see the module docstring)."""

    def __init__(self, app: ASGIApp, settings: WebSettings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        path = scope["path"]
        refusal = self._refusal(request)
        if refusal is not None:
            await secure(refusal, path)(scope, receive, send)
            return
        limit = self.settings.max_request_bytes
        started = False
        overflowed = False

        async def send_secure(message: Message) -> None:
            nonlocal started
            if overflowed and not started:
                # The body passed the limit while the app read it (frameworks turn the
                # interruption into their own error): answer 413 instead.
                started = True
                await self._too_large(request, limit, scope, receive, send_plain)
                return
            if overflowed:
                return
            if message["type"] == "http.response.start":
                started = True
                headers = [(k, v) for k, v in message.get("headers", [])]
                names = {k.lower() for k, _ in headers}
                for name, value in security_headers(path).items():
                    if name.lower().encode() not in names:
                        headers.append((name.lower().encode(), value.encode()))
                message = {**message, "headers": headers}
            await send(message)

        async def send_plain(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [
                    (k.lower().encode(), v.encode()) for k, v in security_headers(path).items()
                ]
                message = {**message, "headers": headers}
            await send(message)

        received = 0

        async def counted() -> Message:
            nonlocal received, overflowed
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    overflowed = True  # read no further: nothing more is spooled
                    raise BodyTooLarge()
            return message

        body_receive: Receive = counted
        if request.method in ("POST", "PUT", "PATCH") and _is_json(request):
            try:
                body = await _read_all(counted)
            except BodyTooLarge:
                await self._too_large(request, limit, scope, receive, send_plain)
                return
            problem = _non_finite(body)
            if problem:
                await answer(request, 422, problem)(scope, receive, send_secure)
                return
            body_receive = _replay(body, receive)
        try:
            await self.app(scope, body_receive, send_secure)
        except BodyTooLarge:
            if started:  # the answer is under way: all that can be done is to stop
                raise
            started = True
            await self._too_large(request, limit, scope, receive, send_plain)

    async def _too_large(
        self, request: Request, limit: int, scope: Scope, receive: Receive, send: Send
    ) -> None:
        response = answer(request, 413, f"request is larger than {limit:,} bytes")
        response.headers["Connection"] = "close"
        await response(scope, receive, send)

    def _refusal(self, request: Request) -> Response | None:
        """An answer that ends the request before the app sees it, or None."""
        settings = self.settings
        if settings.allowed_hosts is not None:
            name = host_name(request.headers.get("host", ""))
            if name not in settings.allowed_hosts:
                return JSONResponse(
                    {"detail": "this server does not answer to that host name"}, 400
                )
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
                return answer(request, 403, "requests from another site are not accepted")
            length = request.headers.get("content-length")
            if length is not None and not length.isdigit():
                return answer(request, 400, "malformed Content-Length header")
            limit = settings.max_request_bytes
            if length is not None and int(length) > limit:
                return answer(request, 413, f"request is larger than {limit:,} bytes")
        return None


def _is_json(request: Request) -> bool:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    return kind == "application/json" or kind.endswith("+json")


async def _read_all(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def again() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return again


def _non_finite(body: bytes) -> str | None:
    """Why a JSON body is refused for holding NaN or infinite numbers, or None (bodies
    that are not JSON at all are left to the route's own validation)."""

    def refuse(constant: str) -> Any:
        raise ValueError(constant)

    try:
        json.loads(body or b"null", parse_constant=refuse, parse_float=_finite_float)
    except ValueError as exc:
        if str(exc) in ("NaN", "Infinity", "-Infinity", "out of range"):
            return "JSON numbers must be finite (no NaN, Infinity or out-of-range values)"
    except RecursionError:
        return "the JSON body is nested too deeply"
    return None


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError("out of range")
    return value
