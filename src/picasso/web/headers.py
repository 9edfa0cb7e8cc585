"""The security headers every answer carries (the guard adds them; answers made
outside it, such as 500s, add them here)."""

from __future__ import annotations

from fastapi.responses import Response


def security_headers(path: str) -> dict[str, str]:
    # No inline scripts anywhere; Swagger UI sets inline styles on the docs page.
    style = " style-src 'self' 'unsafe-inline';" if path == "/docs" else ""
    return {
        "Content-Security-Policy": (
            "default-src 'self'; img-src 'self' data: blob:; object-src 'none'; "
            f"frame-ancestors 'none'; base-uri 'none';{style}"
        ),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
    }


def secure(response: Response, path: str) -> Response:
    """``response`` with the security headers (for answers made outside the guard)."""
    response.headers.update(security_headers(path))
    return response
