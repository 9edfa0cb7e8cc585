"""The REST API: every endpoint, and bad input answered with a 4xx and a message."""

from __future__ import annotations

import io
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from picasso.demo import demo_images
from picasso.web import WebSettings, create_app
from web.live import wait_job as wait


@pytest.fixture
def client(tmp_path):
    settings = WebSettings(
        models=("demo:tanks-fair", "demo:digits"),
        data_dir=tmp_path,
        max_upload_bytes=200_000,
        max_pixels=1_000_000,
    )
    with TestClient(create_app(settings)) as client:
        yield client


def upload(client, path_or_bytes, name="x.png"):
    data = path_or_bytes if isinstance(path_or_bytes, bytes) else path_or_bytes.read_bytes()
    return client.post("/api/v1/images", files={"file": (name, data, "image/png")})


def test_models_methods_and_openapi(client):
    models = {m["name"]: m for m in client.get("/api/v1/models").json()}
    assert set(models) == {"tanks-fair", "digits"}
    assert models["tanks-fair"]["labels"] == ["forest", "tank"]
    assert "gradients" in models["digits"]["capabilities"]
    methods = {m["name"]: m for m in client.get("/api/v1/methods").json()}
    assert methods["occlusion"]["settings"]["properties"]["window"]["default"] == 16
    assert methods["grad-cam"]["requires"] == ["layers"]
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/api/v1/jobs", "/api/v1/images", "/api/v1/predict"} <= set(paths)


def test_upload_run_and_fetch_results(client):
    image = upload(client, demo_images("tank-overcast")[0]).json()
    body = {
        "model": "tanks-fair",
        "image": image["sha256"],
        "method": "occlusion",
        "settings": {"window": 8, "stride": 4},
        "target": 1,
    }
    created = client.post("/api/v1/jobs", json=body)
    assert created.status_code == 201
    job = wait(client, created.json()["id"])
    assert job["status"] == "done" and job["progress"] == {"done": 225, "total": 225}
    summary = client.get(job["result"]["json"]).json()
    assert summary["targets"][0]["label"] == "tank"
    png = client.get(job["result"]["png"])
    assert png.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(png.content)).format == "PNG"
    maps = np.load(io.BytesIO(client.get(job["result"]["npy"]).content))
    assert maps.shape == (1, 64, 64)
    again = client.post("/api/v1/jobs", json=body).json()  # cached
    assert again["id"] == job["id"] and again["status"] == "done"
    assert client.get("/api/v1/jobs").json()[0]["id"] == job["id"]


def test_cancel(client):
    image = upload(client, demo_images("tank-sunny")[0]).json()
    job = client.post(
        "/api/v1/jobs",
        json={
            "model": "tanks-fair",
            "image": image["sha256"],
            "method": "occlusion",
            "settings": {"window": 2, "stride": 1, "batch_size": 4},
        },
    ).json()
    time.sleep(0.3)
    assert client.post(f"/api/v1/jobs/{job['id']}/cancel").status_code == 200
    assert wait(client, job["id"])["status"] == "cancelled"
    assert client.get(f"/api/v1/jobs/{job['id']}/result.png").status_code == 409


def test_predict(client):
    image = upload(client, demo_images("digit-7")[0]).json()
    out = client.post(
        "/api/v1/predict", json={"model": "digits", "image": image["sha256"], "top_k": 3}
    ).json()
    assert out["classes"][0]["label"] == "7" and len(out["classes"]) == 3


def _mask_png(width, height, box=None, fmt="PNG"):
    import base64

    mask = Image.new("L", (width, height), 0)
    if box:
        mask.paste(255, box)
    buffer = io.BytesIO()
    mask.save(buffer, format=fmt)
    return base64.b64encode(buffer.getvalue()).decode()


def test_predict_with_hidden_pixels(client):
    """A mask as boxes or as a PNG (at the input size, or at the image's own size)
    gives the same answer; the target's drop is its original minus its probability."""
    image = upload(client, demo_images("tank-overcast")[0]).json()
    base = {"model": "tanks-fair", "image": image["sha256"], "target": 1}
    by_boxes = client.post(
        "/api/v1/predict", json={**base, "hide": {"boxes": [[16, 24, 48, 56]], "fill": "blur"}}
    )
    assert by_boxes.status_code == 200, by_boxes.text
    out = by_boxes.json()
    assert out["hidden"] == pytest.approx(32 * 32 / 64**2)
    target = out["target"]
    assert target["label"] == "tank"
    assert target["drop"] == pytest.approx(target["original"] - target["probability"])
    assert abs(target["drop"]) > 1e-3  # hiding the middle of the scene changes something
    png = {"png": _mask_png(64, 64, (16, 24, 48, 56)), "fill": "blur"}
    assert client.post("/api/v1/predict", json={**base, "hide": png}).json() == out
    width, height = image["width"], image["height"]
    scaled = {  # the same region drawn on the uploaded image (the demo scene is 64x64 too)
        "png": _mask_png(
            width,
            height,
            (16 * width // 64, 24 * height // 64, 48 * width // 64, 56 * height // 64),
        ),
        "fill": "blur",
    }
    assert client.post("/api/v1/predict", json={**base, "hide": scaled}).json()["hidden"] > 0.2
    plain = client.post("/api/v1/predict", json=base).json()
    assert plain["hidden"] == 0 and plain["target"]["drop"] == 0


@pytest.mark.parametrize(
    ("hide", "fragment"),
    [
        ({"png": "%%%"}, "not valid base64"),
        ({"png": _mask_png(64, 63)}, "must be 64x64"),
        ({"png": _mask_png(64, 64, fmt="JPEG")}, "must be a PNG"),
        ({"boxes": [[70, 0, 80, 8]]}, "outside the 64x64 image"),
        ({"boxes": [[8, 0, 4, 8]]}, "0 <= x0 < x1"),
        ({"boxes": [[0, 0, 4, 4]], "png": _mask_png(64, 64)}, "exactly one of boxes or png"),
        ({"boxes": [[0, 0, 4]]}, "boxes"),
        ({"boxes": [[0, 0, 4, 4]], "fill": "purple"}, "fill"),
        ({"boxes": [[0, 0, 4, 4]], "shape": "circle"}, "shape"),
    ],
)
def test_predict_refuses_malformed_masks(client, hide, fragment):
    image = upload(client, demo_images("tank-overcast")[0]).json()
    body = {"model": "tanks-fair", "image": image["sha256"], "hide": hide}
    response = client.post("/api/v1/predict", json=body)
    assert response.status_code == 422
    assert fragment in str(response.json()["detail"])


def test_predict_refuses_a_target_that_is_no_class_and_an_unknown_image(client):
    image = upload(client, demo_images("tank-overcast")[0]).json()
    body = {"model": "tanks-fair", "image": image["sha256"], "target": 2}
    response = client.post("/api/v1/predict", json=body)
    assert response.status_code == 422 and "not a class" in response.json()["detail"]
    response = client.post("/api/v1/predict", json={**body, "target": 0, "image": "0" * 64})
    assert response.status_code == 404


def test_a_job_with_hidden_pixels_records_them(client):
    """'Save as a result' on the explore page is a job like any other, with the mask."""
    image = upload(client, demo_images("tank-overcast")[0]).json()
    hide = {"boxes": [[0, 0, 64, 20]], "fill": 0.0}
    body = {"model": "tanks-fair", "image": image["sha256"], "method": "class-probabilities"}
    job = wait(client, client.post("/api/v1/jobs", json={**body, "hide": hide}).json()["id"])
    assert job["status"] == "done" and job["request"]["hide"]["boxes"] == [[0, 0, 64, 20]]
    result = client.get(job["result"]["json"]).json()
    assert result["extras"]["hidden"] == pytest.approx(20 / 64)
    predicted = client.post(
        "/api/v1/predict", json={"model": "tanks-fair", "image": image["sha256"], "hide": hide}
    ).json()
    saved = {c["index"]: c["probability"] for c in result["extras"]["classes"]}
    for c in predicted["classes"]:
        assert saved[c["index"]] == pytest.approx(c["probability"], abs=1e-6)


@pytest.mark.parametrize(
    ("make", "status", "fragment"),
    [
        (lambda: b"not an image at all", 422, "not a readable image"),
        (lambda: b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, 422, "passwd.png"),
        (lambda: b"x" * 300_000, 413, "larger than 200,000 bytes"),
    ],
)
def test_bad_uploads(client, make, status, fragment):
    response = upload(client, make(), name="../../etc/passwd.png")
    assert response.status_code == status
    assert fragment in response.json()["detail"]
    assert "/" not in response.json()["detail"].split(":")[0]  # the name, without its path


def test_pixel_limit(client):
    buffer = io.BytesIO()
    Image.new("L", (1200, 1000)).save(buffer, format="PNG")  # 1.2 MP, small file
    response = upload(client, buffer.getvalue())
    assert response.status_code == 422 and "more than the limit" in response.json()["detail"]


def test_bad_job_requests(client):
    sha = upload(client, demo_images("digit-3")[0]).json()["sha256"]
    cases = [
        ({"model": "nope", "image": sha, "method": "saliency"}, 404, "unknown model"),
        ({"model": "digits", "image": sha, "method": "magic"}, 404, "unknown method"),
        (
            {"model": "digits", "image": sha, "method": "occlusion", "settings": {"window": 0}},
            422,
            "window",
        ),
        ({"model": "digits", "image": "0" * 64, "method": "saliency"}, 404, "no uploaded image"),
        ({"model": "digits", "image": "../x", "method": "saliency"}, 422, "[0-9a-f]{64}"),
        ({"model": "digits", "image": sha, "method": "saliency", "target": 99}, 422, "exist"),
        ({"model": "digits", "image": sha, "method": "saliency", "top_k": 11}, 422, "top_k"),
    ]
    for body, status, fragment in cases:
        response = client.post("/api/v1/jobs", json=body)
        assert response.status_code == status, (body, response.text)
        if fragment:
            assert fragment in response.json()["detail"]
    assert client.get("/api/v1/jobs").json() == []  # none of them was queued
    assert client.get("/api/v1/jobs/nope").status_code == 422  # not a job id at all
    assert client.get(f"/api/v1/jobs/{'0' * 32}").status_code == 404
    assert client.get("/api/v1/jobs?limit=-1").status_code == 422
    assert client.get("/api/v1/jobs?limit=lots").status_code == 422
    assert client.get("/api/v1/models").status_code == 200  # still serving


def test_security_headers_and_token(tmp_path):
    settings = WebSettings(models=("demo:digits",), data_dir=tmp_path, api_token="s3cret")
    with TestClient(create_app(settings)) as client:
        assert client.get("/api/v1/models").status_code == 401
        ok = client.get("/api/v1/models", headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code == 200
        assert "default-src 'self'" in ok.headers["content-security-policy"]


def test_parallel_predicts_while_a_job_runs(client):
    sha = upload(client, demo_images("tank-sunny")[0]).json()["sha256"]
    job = client.post(
        "/api/v1/jobs",
        json={
            "model": "tanks-fair",
            "image": sha,
            "method": "occlusion",
            "settings": {"window": 4, "stride": 2},
        },
    ).json()

    def one(_):
        return client.post("/api/v1/predict", json={"model": "tanks-fair", "image": sha})

    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(one, range(20)))
    assert all(r.status_code == 200 for r in responses)
    assert {r.json()["classes"][0]["label"] for r in responses} == {"tank"}
    assert wait(client, job["id"])["status"] == "done"


def test_interactive_docs_use_local_assets_only(client):
    page = client.get("/docs")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "http" not in page.text  # no CDN: every asset comes from this app
    for asset in (
        "/static/swagger/swagger-ui-bundle.js",
        "/static/swagger/swagger-ui.css",
        "/static/own/swagger-init.js",
    ):
        assert asset in page.text
        assert client.get(asset).status_code == 200, asset
    assert "script-src" not in page.headers["content-security-policy"]
    assert "unsafe-inline" not in client.get("/api/v1/models").headers["content-security-policy"]


def encoded(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def test_every_image_mode_uploads_and_predicts(client):
    scene = Image.open(demo_images("tank-overcast")[0]).convert("RGB")
    rotated = Image.Exif()
    rotated[0x0112] = 6  # shown rotated: the server must apply it
    uploads = {
        "rgba.png": encoded(scene.convert("RGBA"), "PNG"),
        "palette.gif": encoded(scene.convert("P"), "GIF"),
        "gray.png": encoded(scene.convert("L"), "PNG"),
        "16bit.tiff": encoded(scene.convert("L").convert("I;16"), "TIFF"),
        "exif.jpg": encoded(scene.resize((64, 32)), "JPEG", exif=rotated.tobytes()),
        "cmyk.jpg": encoded(scene.convert("CMYK"), "JPEG"),
    }
    for name, data in uploads.items():
        response = upload(client, data, name=name)
        assert response.status_code == 201, (name, response.text)
        body = response.json()
        if name == "exif.jpg":
            assert (body["width"], body["height"]) == (32, 64)  # orientation applied
        out = client.post(
            "/api/v1/predict", json={"model": "tanks-fair", "image": body["sha256"], "top_k": 2}
        )
        assert out.status_code == 200 and len(out.json()["classes"]) == 2, name


def test_a_method_the_model_cannot_run_is_409(tmp_path):
    settings = WebSettings(models=("demo:digits-onnx",), data_dir=tmp_path)
    with TestClient(create_app(settings)) as client:
        sha = upload(client, demo_images("digit-3")[0]).json()["sha256"]
        body = {"model": "digits-onnx", "image": sha, "method": "grad-cam"}
        response = client.post("/api/v1/jobs", json=body)
        assert response.status_code == 409 and "needs layers" in response.json()["detail"]


def test_faithfulness_and_sanity_through_the_api(client):
    sha = upload(client, demo_images("tank-sunny")[0]).json()["sha256"]
    body = {"model": "tanks-fair", "image": sha, "method": "saliency", "faithfulness": True}
    job = wait(client, client.post("/api/v1/jobs", json=body).json()["id"])
    curves = client.get(job["result"]["json"]).json()["extras"]["faithfulness"][0]
    fractions = np.linspace(0, 1, 21)
    assert curves["deletion_auc"] == pytest.approx(np.trapezoid(curves["deletion"], fractions))
    sanity = client.post(f"/api/v1/jobs/{job['id']}/sanity")
    assert sanity.status_code == 201
    checked = wait(client, sanity.json()["id"])
    assert checked["status"] == "done" and set(checked["result"]) == {"json"}
    result = client.get(checked["result"]["json"]).json()
    last = result["steps"][-1]["spearman"]
    assert result["verdict"] == ("pass" if last < result["threshold"] else "fail")
    assert result["verdict"] == "pass" and result["of"] == job["id"]  # saliency passes here
    assert len(result["steps"]) >= 3 and result["method"] == "saliency"
    assert client.post(f"/api/v1/jobs/{'0' * 32}/sanity").status_code == 404
    queued = client.post(
        "/api/v1/jobs",
        json={
            "model": "tanks-fair",
            "image": sha,
            "method": "rise",
            "settings": {"masks": 99999, "error": 0},
        },
    ).json()
    assert client.post(f"/api/v1/jobs/{queued['id']}/sanity").status_code == 409
    client.post(f"/api/v1/jobs/{queued['id']}/cancel")


def test_the_upload_limit_is_exact(tmp_path):
    """A file of exactly the limit is accepted; one byte more is refused (413)."""
    data = demo_images("digit-3")[0].read_bytes()
    for limit, status in ((len(data), 201), (len(data) - 1, 413)):
        settings = WebSettings(
            models=("demo:digits",), data_dir=tmp_path / str(limit), max_upload_bytes=limit
        )
        with TestClient(create_app(settings)) as client:
            assert upload(client, data).status_code == status


@pytest.mark.parametrize(
    ("target", "top_k", "status"),
    [(None, 10, 201), (None, 11, 422), ([0, 9], None, 201), ([0, 10], None, 422)],
)
def test_targets_at_their_boundaries(client, target, top_k, status):
    """digits has 10 classes: top_k 10 and class 9 exist; 11 and class 10 do not, in
    any place of a list."""
    sha = upload(client, demo_images("digit-3")[0]).json()["sha256"]
    body = {"model": "digits", "image": sha, "method": "saliency", "target": target}
    body["top_k"] = top_k
    response = client.post("/api/v1/jobs", json=body)
    assert response.status_code == status, response.text
    if status == 422:
        assert "10" in response.json()["detail"] or "11" in response.json()["detail"]


def test_a_running_job_serves_its_map_so_far(client):
    """Occlusion draws a coarse map early; the job's JSON and events announce it, and
    GET /preview.png serves it until the job finishes."""
    image = upload(client, demo_images("tank-overcast")[0]).json()
    body = {"model": "tanks-fair", "image": image["sha256"], "method": "occlusion"}
    body["settings"] = {"window": 4, "stride": 1, "batch_size": 4}  # 3,721 windows
    job = client.post("/api/v1/jobs", json=body).json()
    seen = None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        state = client.get(f"/api/v1/jobs/{job['id']}").json()
        if state.get("preview"):
            seen = state
            picture = client.get(state["preview"])
            if picture.status_code == 200:  # (the job may finish in between)
                assert picture.headers["content-type"] == "image/png"
                assert Image.open(io.BytesIO(picture.content)).size == (64, 64)
                break
        if state["status"] in ("done", "failed", "cancelled"):
            break
        time.sleep(0.05)
    assert seen is not None and "/preview.png?n=" in seen["preview"]
    client.post(f"/api/v1/jobs/{job['id']}/cancel")
    finished = wait(client, job["id"])
    assert "preview" not in finished  # announced only while the job runs
    body["method"], body["settings"] = "class-probabilities", {}
    quick = wait(client, client.post("/api/v1/jobs", json=body).json()["id"])
    missing = client.get(f"/api/v1/jobs/{quick['id']}/preview.png")
    assert missing.status_code == 404 and "has drawn no map" in missing.json()["detail"]
