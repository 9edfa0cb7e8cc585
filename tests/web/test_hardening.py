"""The server survives its users: bounded cost, bounded rendering, bodies cut while they
stream, no 500 from input, the Host rule, security headers everywhere, no server paths,
one job for identical requests, a bounded queue."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

import picasso
from picasso.core.errors import InvalidImageError, SettingsError
from picasso.core.images import decode_image_bytes
from picasso.demo import demo_images
from picasso.jobs import Budget, JobRunner, JobStore
from picasso.plugins import discover
from picasso.requests import ExplainRequest
from picasso.web import WebSettings, create_app
from picasso.web.security import LOOPBACK_HOSTS
from web.live import wait_job as wait

HEADERS = ("content-security-policy", "x-content-type-options", "referrer-policy")


def make_client(tmp_path, **changes):
    settings = WebSettings(models=("demo:tanks-fair", "demo:digits"), data_dir=tmp_path, **changes)
    return TestClient(create_app(settings), raise_server_exceptions=False)


def upload(client, path=None):
    data = (path or demo_images("tank-overcast")[0]).read_bytes()
    return client.post("/api/v1/images", files={"file": ("t.png", data)}).json()["sha256"]


# -- bounded cost --------------------------------------------------------------------
def test_batch_sizes_are_lowered_to_the_memory_budget(tmp_path):
    with make_client(tmp_path) as client:
        sha = upload(client)
        body = {
            "model": "tanks-fair",
            "image": sha,
            "method": "saliency",
            "settings": {"batch_size": 4096},
            "target": 1,
        }
        job = client.post("/api/v1/jobs", json=body).json()
        # 800,000 pixels per forward + backward call / (64 x 64) = 195 images
        assert job["request"]["settings"]["batch_size"] == 195
        assert wait(client, job["id"])["status"] == "done"
        body = {**body, "method": "rise", "settings": {"masks": 16, "batch_size": 4096}}
        assert (
            client.post("/api/v1/jobs", json=body).json()["request"]["settings"]["batch_size"]
            == 976
        )  # forward only: 4,000,000 / 4,096


@pytest.mark.parametrize(
    ("method", "settings", "setting"),
    [
        ("rise", {"masks": 20_000}, "masks"),
        ("occlusion", {"window": 1, "stride": 1}, "stride"),
        ("smoothgrad", {"samples": 1000}, "samples"),
        ("integrated-gradients", {"steps": 2048}, "steps"),
    ],
)
def test_more_work_than_the_budget_is_refused_naming_the_setting(
    tmp_path, method, settings, setting
):
    with make_client(tmp_path, budget=Budget(passes=500)) as client:
        sha = upload(client)
        body = {"model": "tanks-fair", "image": sha, "method": method, "settings": settings}
        response = client.post("/api/v1/jobs", json=body)
        assert response.status_code == 422, response.text
        detail = response.json()["detail"]
        assert "more than this server allows" in detail and f"lower {setting}" in detail
        assert client.get("/api/v1/jobs").json() == []  # nothing queued


def test_a_huge_16_bit_image_is_refused_by_its_decoded_size():
    big = np.zeros((7000, 7000), np.uint16)
    buffer = io.BytesIO()
    Image.fromarray(big).save(buffer, format="PNG")
    assert len(buffer.getvalue()) < 200_000  # a small file ...
    with pytest.raises(InvalidImageError, match="decodes to 245 MB"):  # ... a big image
        decode_image_bytes(buffer.getvalue())


# -- every job ends ------------------------------------------------------------------
def test_a_thousand_targets_render_in_bounded_time(tmp_path):
    import torch

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 16 * 16, 1000))
    model = picasso.from_torch(net, input_size=(16, 16), name="thousand")
    runner = JobRunner(JobStore(tmp_path), {"thousand": model}, discover(plugin_dirs=[]))
    try:
        request = ExplainRequest(
            method="occlusion", settings={"window": 16, "stride": 16}, top_k=1000
        )
        job = runner.wait(runner.submit("thousand", np.zeros((16, 16, 3), np.uint8), request).id)
        assert job.status == "done", job.error
        files = runner.store.result_files(job)
        assert np.load(files["npy"]).shape == (1000, 16, 16)
        with Image.open(files["png"]) as overlay:
            assert overlay.width <= 8 * 420 + 100  # the first 8 classes, not 1000 panels
        assert (runner.store.result_dir(job.id) / "map-999.png").is_file()
        with pytest.raises(picasso.PicassoError, match="at most 1000 targets"):
            ExplainRequest(method="saliency", target=[0] * 200_000)
    finally:
        runner.shutdown()


# -- uploads -------------------------------------------------------------------------
def test_a_chunked_body_is_cut_at_the_limit(tmp_path, monkeypatch):
    """A multipart body without Content-Length, 20 times the limit: 413, and the
    server spooled no more than the limit."""
    import starlette.formparsers as formparsers

    written = []
    original = formparsers.SpooledTemporaryFile

    class Counting(original):  # type: ignore[misc, valid-type]
        def write(self, data):
            written.append(len(data))
            return super().write(data)

    monkeypatch.setattr(formparsers, "SpooledTemporaryFile", Counting)
    with make_client(tmp_path, max_upload_bytes=10_000) as client:
        limit = client.app.state.settings.max_request_bytes
        chunk = b"x" * 65536
        head = b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n\r\n'

        def body():
            yield head
            for _ in range(20 * limit // len(chunk)):
                yield chunk

        response = client.post(
            "/api/v1/images",
            content=body(),
            headers={"content-type": "multipart/form-data; boundary=b"},
        )
    assert response.status_code == 413 and "larger than" in response.json()["detail"]
    assert sum(written) <= limit


# -- no 500 from input ---------------------------------------------------------------
def seed_images() -> dict[str, bytes]:
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)
    found = {}
    for fmt in ("PNG", "JPEG", "GIF", "WEBP", "BMP", "TIFF"):
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format=fmt)
        found[fmt] = buffer.getvalue()
    tiff16 = io.BytesIO()
    Image.fromarray(pixels[:, :, 0].astype(np.uint16) * 257).save(tiff16, format="TIFF")
    found["TIFF16"] = tiff16.getvalue()
    return found


def mutations(data: bytes, rng: np.random.Generator, count: int):
    for _ in range(count):
        mutated = bytearray(data)
        kind = rng.integers(0, 4)
        if kind == 0:  # flip bytes
            for position in rng.integers(0, len(mutated), rng.integers(1, 8)):
                mutated[position] = int(rng.integers(0, 256))
        elif kind == 1:  # truncate
            mutated = mutated[: int(rng.integers(1, len(mutated)))]
        elif kind == 2:  # huge numbers in the header
            position = int(rng.integers(0, min(64, len(mutated) - 4)))
            mutated[position : position + 4] = b"\xff\xff\xff\x7f"
        else:  # duplicate a slice
            a, b = sorted(rng.integers(0, len(mutated), 2))
            mutated[b:b] = mutated[a:b]
        yield bytes(mutated)


def test_fuzzed_images_give_only_our_error():
    """3,500 mutated PNG, JPEG, GIF, WebP, BMP and TIFF files (seeded): each decodes to
    an RGB image or raises InvalidImageError; nothing else escapes."""
    rng = np.random.default_rng(1)
    outcomes = {"decoded": 0, "refused": 0}
    for data in seed_images().values():
        for mutated in mutations(data, rng, 500):
            try:
                image = decode_image_bytes(mutated)
            except InvalidImageError:
                outcomes["refused"] += 1
            else:
                assert image.mode == "RGB"
                outcomes["decoded"] += 1
    assert sum(outcomes.values()) == 3500 and min(outcomes.values()) > 100


def test_fuzzed_uploads_are_4xx_never_500(tmp_path):
    rng = np.random.default_rng(2)
    with make_client(tmp_path) as client:
        for data in seed_images().values():
            for mutated in mutations(data, rng, 25):
                response = client.post("/api/v1/images", files={"file": ("x", mutated)})
                assert response.status_code in (201, 422), response.text


@pytest.mark.parametrize(
    "tail",
    [
        '"saliency", "top_k": NaN}',
        '"saliency", "top_k": Infinity}',
        '"occlusion", "settings": {"baseline": NaN}}',
        '"occlusion", "settings": {"baseline": 1e999}}',
    ],
)
def test_non_finite_json_numbers_are_422(tmp_path, tail):
    with make_client(tmp_path) as client:
        sha = upload(client, demo_images("digit-3")[0])
        body = f'{{"model": "digits", "image": "{sha}", "method": {tail}'
        response = client.post(
            "/api/v1/jobs", content=body, headers={"content-type": "application/json"}
        )
    assert response.status_code == 422 and "finite" in response.json()["detail"]


def test_non_finite_settings_and_maps(tmp_path):
    with pytest.raises(SettingsError, match="finite"):
        picasso.explain(
            "demo:digits", demo_images("digit-3")[0], method="occlusion", baseline=float("nan")
        )
    with make_client(tmp_path) as client:
        sha = upload(client, demo_images("digit-3")[0])
        body = {
            "model": "digits",
            "image": sha,
            "method": "occlusion",
            "settings": {"baseline": 1e308, "score": "logit", "window": 4, "stride": 4},
        }
        job = wait(client, client.post("/api/v1/jobs", json=body).json()["id"])
    assert job["status"] == "failed" and "non-finite values" in job["error"]


def test_tokens_of_any_characters(tmp_path):
    with make_client(tmp_path, api_token="s3cret") as client:
        for token in ("é", "\u2603" * 50, "s3cret\x00"):
            header = {"authorization": ("Bearer " + token).encode()}
            response = client.get("/api/v1/models", headers=header)
            assert response.status_code == 401
        page = client.post("/login", data={"token": "ünïcode"})
        assert page.status_code == 401 and "wrong token" in page.text


# -- the Host rule, headers, paths ---------------------------------------------------
def test_loopback_servers_answer_only_to_loopback_names(tmp_path):
    hosts = LOOPBACK_HOSTS | {"picasso.lab"}
    with make_client(tmp_path, allowed_hosts=hosts) as client:
        for host in ("127.0.0.1:8765", "localhost", "[::1]:8765", "picasso.lab:80"):
            assert client.get("/api/v1/models", headers={"host": host}).status_code == 200
        rebound = client.post(
            "/api/v1/jobs",
            json={},
            headers={"host": "evil.example:8765", "origin": "http://evil.example:8765"},
        )
        assert rebound.status_code == 400
        assert all(h in rebound.headers for h in HEADERS)


def test_security_headers_on_every_answer(tmp_path):
    with make_client(tmp_path, api_token="s3cret") as client:
        answers = [
            client.get("/api/v1/models"),  # 401
            client.get("/", follow_redirects=False),  # the login redirect
            client.post(
                "/api/v1/jobs",
                headers={"origin": "http://elsewhere", "authorization": "Bearer s3cret"},
            ),  # 403
            client.get("/login"),
        ]
    for response in answers:
        assert all(h in response.headers for h in HEADERS), (response.status_code, response.headers)
    assert [r.status_code for r in answers] == [401, 303, 403, 200]
    assert answers[0].headers["referrer-policy"] == "same-origin"


def test_no_server_paths_in_answers(tmp_path):
    with make_client(tmp_path) as client:
        models = client.get("/api/v1/models").text
        page = client.get("/").text
        sha = upload(client)
        job = wait(
            client,
            client.post(
                "/api/v1/jobs", json={"model": "tanks-fair", "image": sha, "method": "saliency"}
            ).json()["id"],
        )
        result = client.get(job["result"]["json"]).text
    root = str(picasso.load_model("demo:tanks-fair").info.path).rsplit("/", 2)[0]
    for text in (models, page, result):
        assert root not in text and str(tmp_path) not in text
    assert json.loads(models)[0]["file"] == "model.safetensors"


def test_a_long_name_is_not_echoed_whole(tmp_path):
    with make_client(tmp_path) as client:
        sha = upload(client)
        response = client.post(
            "/api/v1/jobs", json={"model": "m" * 1_000_000, "image": sha, "method": "saliency"}
        )
    assert response.status_code == 422 and len(response.content) < 1000  # over 200 chars
    with make_client(tmp_path / "again") as client:
        page = client.get("/?model=" + "m" * 20_000)
    assert page.status_code == 404 and len(page.content) < 20_000  # the name is cut


def test_a_missing_layer_is_refused_when_the_job_is_asked_for(tmp_path):
    with make_client(tmp_path) as client:
        sha = upload(client)
        response = client.post(
            "/api/v1/jobs",
            json={
                "model": "tanks-fair",
                "image": sha,
                "method": "grad-cam",
                "settings": {"layer": "no.such.layer"},
            },
        )
        assert response.status_code == 422 and "has no layer" in response.json()["detail"]
        assert client.get("/api/v1/jobs").json() == []


# -- identical submissions, a bounded queue ------------------------------------------
def test_identical_submissions_share_one_job_and_the_queue_is_bounded(tmp_path):
    with make_client(tmp_path, workers=1, budget=Budget(queued=2)) as client:
        sha = upload(client)
        long = {
            "model": "tanks-fair",
            "image": sha,
            "method": "rise",
            "settings": {"masks": 100_000, "batch_size": 1, "error": 0},
        }
        ids = {client.post("/api/v1/jobs", json=long).json()["id"] for _ in range(10)}
        assert len(ids) == 1  # ten identical requests, one job
        others = [
            client.post(
                "/api/v1/jobs",
                json={**long, "settings": {"masks": 100_000 - i, "batch_size": 1, "error": 0}},
            )
            for i in range(1, 4)
        ]
        statuses = [r.status_code for r in others]
        assert 429 in statuses, statuses
        busy = others[statuses.index(429)]
        assert busy.headers["retry-after"] == "30" and "waiting" in busy.json()["detail"]
        for job_id in [*ids, *(r.json()["id"] for r in others if r.status_code == 201)]:
            client.post(f"/api/v1/jobs/{job_id}/cancel")
