"""Limits seen on the wire, against a real server: a request whose Content-Length is
over the cap is refused from its headers, before any of its body is read."""

from __future__ import annotations

import socket
import time
from urllib.parse import urlsplit


def test_an_oversized_content_length_is_refused_before_the_body(live_server):
    host, port = urlsplit(live_server).hostname, urlsplit(live_server).port
    head = (
        "POST /api/v1/images HTTP/1.1\r\n"
        f"Host: {host}:{port}\r\n"
        "Content-Type: multipart/form-data; boundary=x\r\n"
        f"Content-Length: {10**12}\r\n"
        "\r\n"
    )
    started = time.monotonic()
    with socket.create_connection((host, port), timeout=10) as conn:
        conn.sendall(head.encode())  # and no body at all: the server must not wait for it
        answer = ""
        while "larger than" not in answer and time.monotonic() - started < 10:
            chunk = conn.recv(65536).decode("latin-1")
            if not chunk:
                break
            answer += chunk
    assert answer.startswith("HTTP/1.1 413"), answer[:200]
    assert "larger than" in answer
    assert time.monotonic() - started < 5
