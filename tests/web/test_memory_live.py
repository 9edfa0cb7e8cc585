"""Memory with allowed but extreme settings, on a real server with demo:imagenet
(EfficientNet-Lite0, 224 x 224): the jobs run with batch sizes lowered to the budget (or
are refused), huge 16-bit uploads are refused by their decoded size, and the server's
peak memory stays under a stated bound."""

from __future__ import annotations

import io
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from picasso.demo import demo_images, imagenet
from web.live import start_server, stop_server

BOUND_MB = 4000  # the server's peak resident memory, in MB

pytestmark = pytest.mark.slow


def peak_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc (Linux)")
def test_extreme_settings_stay_within_the_memory_bound(tmp_path):
    if not imagenet.available():
        pytest.fail("the imagenet extra is part of the test install")
    process, url = start_server(tmp_path, "--model", "demo:imagenet", "--workers", "2")
    api = f"{url}/api/v1"
    try:
        image = demo_images("cat")[0]
        sha = httpx.post(f"{api}/images", files={"file": (image.name, image.read_bytes())}).json()[
            "sha256"
        ]
        extreme = [
            ("rise", {"masks": 4096, "batch_size": 4096}),
            ("occlusion", {"window": 1, "stride": 1, "batch_size": 4096}),
            ("smoothgrad", {"samples": 1000, "batch_size": 4096}),
            ("integrated-gradients", {"steps": 2048, "batch_size": 4096}),
        ]
        jobs = []
        for method, settings in extreme:
            response = httpx.post(
                f"{api}/jobs",
                json={"model": "imagenet", "image": sha, "method": method, "settings": settings},
            )
            assert response.status_code in (201, 422), response.text
            if response.status_code == 201:
                job = response.json()
                assert job["request"]["settings"]["batch_size"] < 4096  # lowered
                jobs.append(job["id"])
        big = io.BytesIO()
        Image.fromarray(np.zeros((7000, 7000), np.uint16)).save(big, format="PNG")

        def upload(_):
            return httpx.post(
                f"{api}/images", files={"file": ("big.png", big.getvalue())}, timeout=60
            ).status_code

        with ThreadPoolExecutor(8) as pool:
            assert set(pool.map(upload, range(8))) == {422}
        time.sleep(20)  # the two workers run the heaviest jobs meanwhile
        assert httpx.get(f"{api}/models").status_code == 200  # alive
        measured = peak_mb(process.pid)
        print(f"server peak memory: {measured:.0f} MB")
        assert measured < BOUND_MB
        for job_id in jobs:
            httpx.post(f"{api}/jobs/{job_id}/cancel")
    finally:
        stop_server(process)
