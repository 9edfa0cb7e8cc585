"""Is the web app still responsive while a long occlusion job runs?

    .venv/bin/python bench/web_latency.py [--requests 200] [--model demo:imagenet]
    .venv/bin/python bench/web_latency.py --model demo:tanks-fair --image tank-overcast \
        --window 4 --stride 1 --batch-size 1

Starts `picasso serve` on a free loopback port (its own data folder), measures the
latency of a cheap call (GET /api/v1/models) and of a synchronous predict (POST
/api/v1/predict) with the server idle, then again while an occlusion job keeps the
workers busy (the output says whether it was still running at the end), and prints
p50/p99 for both phases and their ratio, from one run. The requests are sequential,
from one client, over a kept-alive connection.
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def measure(client, count: int, call) -> np.ndarray:
    seconds = []
    for _ in range(count):
        start = time.perf_counter()
        response = call()
        seconds.append(time.perf_counter() - start)
        response.raise_for_status()
    return np.array(seconds) * 1000.0


def main() -> None:
    import httpx

    from picasso.demo import demo_images

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200, help="per call and phase")
    parser.add_argument(
        "--model", default="demo:imagenet", help="model of the occlusion job and predict"
    )
    parser.add_argument("--image", default="cat", help="a demo image name")
    parser.add_argument("--window", type=int, default=16, help="of the occlusion job")
    parser.add_argument("--stride", type=int, default=2, help="of the occlusion job")
    parser.add_argument("--batch-size", type=int, default=16, help="of the occlusion job")
    args = parser.parse_args()

    port = free_port()
    data = Path(tempfile.mkdtemp(prefix="picasso-latency-"))
    command = [sys.executable, "-m", "picasso", "serve", "--port", str(port)]
    command += ["--data-dir", str(data), "--model", args.model]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/api/v1"
    try:
        with httpx.Client(base_url=url, timeout=60) as client:
            for _ in range(600):
                try:
                    if client.get("/models").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.2)
            name = client.get("/models").json()[0]["name"]
            image = demo_images(args.image)[0]
            with image.open("rb") as f:
                sha = client.post("/images", files={"file": (image.name, f)}).json()["sha256"]
            calls = {
                "GET /models": lambda: client.get("/models"),
                "POST /predict": lambda: client.post(
                    "/predict", json={"model": name, "image": sha, "top_k": 5}
                ),
            }
            for call in calls.values():  # warm-up
                measure(client, 5, call)
            idle = {label: measure(client, args.requests, c) for label, c in calls.items()}

            job = client.post(
                "/jobs",
                json={
                    "model": name,
                    "image": sha,
                    "method": "occlusion",
                    "settings": {
                        "window": args.window,
                        "stride": args.stride,
                        "batch_size": args.batch_size,
                    },
                },
            ).json()
            while client.get(f"/jobs/{job['id']}").json()["status"] != "running":
                time.sleep(0.05)
            before = client.get(f"/jobs/{job['id']}").json()["progress"]["done"]
            busy = {label: measure(client, args.requests, c) for label, c in calls.items()}
            after = client.get(f"/jobs/{job['id']}").json()
            client.post(f"/jobs/{job['id']}/cancel")
    finally:
        server.terminate()
        server.wait(timeout=60)

    print(
        f"model {args.model}, image {args.image}, {args.requests} sequential requests per "
        f"call and phase; occlusion job {after['status']} during the busy phase "
        f"({after['progress']['done'] - before} of {after['progress']['total']} windows "
        "done meanwhile)"
    )
    print("| call | idle p50 ms | idle p99 ms | busy p50 ms | busy p99 ms | busy/idle p50 |")
    print("|---|---|---|---|---|---|")
    for label in calls:
        a, b = idle[label], busy[label]
        print(
            f"| {label} | {np.percentile(a, 50):.1f} | {np.percentile(a, 99):.1f} | "
            f"{np.percentile(b, 50):.1f} | {np.percentile(b, 99):.1f} | "
            f"{np.percentile(b, 50) / np.percentile(a, 50):.2f}x |"
        )


if __name__ == "__main__":
    main()
