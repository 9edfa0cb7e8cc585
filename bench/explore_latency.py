"""The explore page's round trip: paint a stroke, get the probabilities back.

    .venv/bin/python bench/explore_latency.py [--strokes 200]

Starts `picasso serve` on the bundled demo models (its own data folder), uploads a
fitting sample per model, then replays a painting session through the HTTP API as the
page does: one request in flight, each a mask PNG (base64, at the model's input size)
that grows stroke by stroke, and a dragged patch (boxes). The time counted per request
is the client's PNG encoding plus the HTTP round trip (server: decode and check the
mask, hide, one forward pass). Prints p50/p95/p99 per model and mode, and whether p95
is within the 100 ms target. The first request per image (which prepares it) is
reported apart.
"""

from __future__ import annotations

import argparse
import base64
import io
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

TARGET_MS = 100.0
SAMPLES = {"digits": "digit-7", "imagenet": "cat"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def strokes(width: int, height: int, count: int, seed: int = 0):
    """Masks of a painting session: random brush segments, accumulating."""
    rng = np.random.default_rng(seed)
    mask = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(mask)
    x, y = rng.uniform(0, width), rng.uniform(0, height)
    brush = max(2, min(width, height) // 10)
    for _ in range(count):
        nx = float(np.clip(x + rng.normal(0, width / 20), 0, width - 1))
        ny = float(np.clip(y + rng.normal(0, height / 20), 0, height - 1))
        draw.line((x, y, nx, ny), fill=255, width=brush)
        x, y = nx, ny
        yield mask


def png_base64(mask: Image.Image) -> str:
    buffer = io.BytesIO()
    mask.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def main() -> None:
    import httpx

    from picasso.demo import demo_images

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strokes", type=int, default=200, help="requests per model and mode")
    parser.add_argument(
        "--model",
        action="append",
        help="a model to serve (repeatable); default: the bundled demo models",
    )
    args = parser.parse_args()

    port = free_port()
    data = Path(tempfile.mkdtemp(prefix="picasso-explore-"))
    command = [sys.executable, "-m", "picasso", "serve", "--port", str(port)]
    command += ["--data-dir", str(data)]
    for model in args.model or []:
        command += ["--model", model]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/api/v1"
    rows = []
    try:
        with httpx.Client(base_url=url, timeout=60) as client:
            for _ in range(900):
                try:
                    if client.get("/models").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.2)
            for model in client.get("/models").json():
                name = model["name"]
                height, width = model["input_size"]
                base = name.split("-")[0]
                image = demo_images(SAMPLES.get(base, "tank-overcast"))[0]
                with image.open("rb") as f:
                    sha = client.post("/images", files={"file": (image.name, f)}).json()["sha256"]
                body = {"model": name, "image": sha, "top_k": 5}

                def call(hide: dict | None, body: dict = body) -> float:
                    start = time.perf_counter()
                    payload = {**body, "hide": hide} if hide else body
                    client.post("/predict", json=payload).raise_for_status()
                    return (time.perf_counter() - start) * 1000.0

                first = call(None)
                paint = []
                for mask in strokes(width, height, args.strokes):
                    start = time.perf_counter()
                    hide = {"png": png_base64(mask), "fill": 0.0}
                    encode = (time.perf_counter() - start) * 1000.0
                    paint.append(encode + call(hide))
                patch = []
                size, step = min(16, width // 4), min(8, width // 8)
                positions = [
                    (x, y)
                    for y in range(0, height - size + 1, step)
                    for x in range(0, width - size + 1, step)
                ]
                for i in range(args.strokes):
                    x, y = positions[i % len(positions)]
                    patch.append(call({"boxes": [[x, y, x + size, y + size]], "fill": "blur"}))
                for mode, times in (("paint (mask PNG)", paint), ("patch (box, blur)", patch)):
                    rows.append((name, f"{width}x{height}", mode, first, np.array(times)))
    finally:
        server.terminate()
        server.wait(timeout=30)

    print(
        f"{'model':<22} {'input':>8} {'mode':<18} {'first ms':>8} "
        f"{'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7}  p95 <= {TARGET_MS:.0f} ms"
    )
    for name, size, mode, first, times in rows:
        p50, p95, p99 = np.percentile(times, [50, 95, 99])
        verdict = "yes" if p95 <= TARGET_MS else "NO"
        numbers = f"{first:8.1f} {p50:7.1f} {p95:7.1f} {p99:7.1f}"
        print(f"{name:<22} {size:>8} {mode:<18} {numbers}  {verdict}")


if __name__ == "__main__":
    main()
