"""One model, many jobs at once: occlusion (incremental engine), Integrated Gradients,
Grad-CAM (layer hooks) and predictions running side by side all succeed and give the
maps they give alone. Repeated to catch races that show only sometimes."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from fastapi.testclient import TestClient

import picasso
from picasso.demo import demo_images
from picasso.web import WebSettings, create_app
from web.live import wait_job as wait


@pytest.mark.parametrize("round_", range(3))
def test_mixed_concurrent_jobs_on_one_model(tmp_path, round_):
    settings = WebSettings(models=("demo:tanks-fair",), data_dir=tmp_path, workers=6)
    image = demo_images("tank-overcast")[0]
    requests = [
        ("occlusion", {"window": w, "stride": 2, "baseline": 0.01 * round_}) for w in range(8, 14)
    ]
    requests += [
        ("integrated-gradients", {"steps": 8 + round_}),
        ("grad-cam", {}),
        ("grad-cam++", {}),
        ("saliency", {}),
    ]
    with TestClient(create_app(settings)) as client:
        sha = client.post("/api/v1/images", files={"file": ("t.png", image.read_bytes())}).json()[
            "sha256"
        ]

        def job(method_settings):
            method, values = method_settings
            body = {
                "model": "tanks-fair",
                "image": sha,
                "method": method,
                "settings": values,
                "target": 1,
            }
            return client.post("/api/v1/jobs", json=body).json()["id"]

        def predict(_):
            return client.post("/api/v1/predict", json={"model": "tanks-fair", "image": sha})

        with ThreadPoolExecutor(12) as pool:
            ids = list(pool.map(job, requests))
            predictions = list(pool.map(predict, range(20)))
        finished = [wait(client, i) for i in ids]
        assert [j["status"] for j in finished] == ["done"] * len(ids), [
            j["error"] for j in finished
        ]
        assert all(p.status_code == 200 for p in predictions)
        model = picasso.load_model("demo:tanks-fair")
        for (method, values), result in zip(requests, finished, strict=True):
            maps = np.load(__import__("io").BytesIO(client.get(result["result"]["npy"]).content))
            alone = picasso.explain(model, image, method=method, target=1, **values)
            scale = float(np.abs(alone.attributions).max()) or 1.0
            np.testing.assert_allclose(maps, alone.attributions, atol=1e-5 * scale, rtol=0)
