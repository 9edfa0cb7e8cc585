"""`picasso serve` as a real process on a free loopback port, for tests that need a
real HTTP server (browser tests, raw-socket tests, signals)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(data: Path, *args: str, timeout: float = 120) -> tuple[subprocess.Popen, str]:
    """Start `picasso serve` (extra ``args``, e.g. ``--model demo:digits``) and wait
    until it answers; returns the process and its base URL."""
    port = free_port()
    command = [sys.executable, "-m", "picasso", "serve", "--port", str(port)]
    command += ["--data-dir", str(data), *args]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"{url}/api/v1/models", timeout=2).status_code == 200:
                return process, url
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            output = process.stdout.read() if process.stdout else ""
            raise AssertionError(f"picasso serve did not start:\n{output}")
        time.sleep(0.2)


def stop_server(process: subprocess.Popen) -> None:
    process.terminate()
    process.wait(timeout=30)


def upload_file(url: str, path: Path) -> str:
    """Upload an image through the API; its sha256."""
    response = httpx.post(
        f"{url}/api/v1/images", files={"file": (path.name, path.read_bytes())}, timeout=30
    )
    response.raise_for_status()
    return str(response.json()["sha256"])


def wait_job(client, job_id: str, timeout: float = 120) -> dict:
    """Poll ``GET /api/v1/jobs/{id}`` (a TestClient or an httpx client) until the job is
    finished; its JSON."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/api/v1/jobs/{job_id}").json()
        if job["status"] in ("done", "failed", "cancelled", "interrupted"):
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish within {timeout} s")
