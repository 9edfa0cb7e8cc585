"""Dataset audits in the web app and the API: a job like any other, datasets from the
demo, a zip upload or the server's data root, the report with its drill-down."""

from __future__ import annotations

import io
import re
import zipfile

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from picasso.demo.tanks import make_dataset
from picasso.web import WebSettings, create_app
from web.live import wait_job as wait


@pytest.fixture
def client(tmp_path):
    root = tmp_path / "root"
    (root / "tanks" / "tank").mkdir(parents=True)
    for i, scene in enumerate(make_dataset(4, seed=5, bias=0.5)):
        Image.fromarray(scene.image).save(root / "tanks" / "tank" / f"{i}.png")
    settings = WebSettings(
        models=("demo:tanks-biased", "demo:tanks-fair"),
        data_dir=tmp_path / "data",
        data_root=root,
        max_dataset_bytes=2_000_000,
    )
    with TestClient(create_app(settings)) as client:
        yield client


def zip_of(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def png(array) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def test_an_audit_through_the_api(client):
    datasets = client.get("/api/v1/datasets").json()
    assert datasets == ["demo:tanks-dataset", "folder:tanks"]
    body = {"model": "tanks-biased", "dataset": "demo:tanks-dataset", "method": "saliency"}
    created = client.post("/api/v1/audits", json=body)
    assert created.status_code == 201, created.text
    job = wait(client, created.json()["id"])
    assert job["status"] == "done" and job["progress"] == {"done": 120, "total": 120}
    assert set(job["result"]) == {"json", "html", "parquet", "csv", "npy"}
    summary = client.get(job["result"]["json"]).json()
    assert summary["images"] == 120
    flagged = [s for s in summary["strategies"] if s["flags"]]
    assert flagged and all(s["label"] == "tank" for s in flagged)
    assert "outside the object" in client.get(job["result"]["html"]).text
    again = client.post("/api/v1/audits", json=body)
    assert again.json()["id"] == job["id"]  # the same audit is served from the cache
    folder = client.post("/api/v1/audits", json={**body, "dataset": "folder:tanks"})
    assert wait(client, folder.json()["id"])["status"] == "done"


@pytest.mark.parametrize(
    ("change", "status", "fragment"),
    [
        ({"dataset": "folder:../data"}, 409, "no folder"),
        ({"dataset": "/etc"}, 409, "unknown dataset"),
        ({"dataset": "upload:" + "0" * 64}, 409, "no uploaded dataset"),
        ({"engine": "ray"}, 409, "runs audits locally"),
        ({"method": "class-probabilities"}, 409, "no map to audit"),
        ({"model": "nope"}, 404, "unknown model"),
        ({"settings": {"layer": 3}}, 422, "layer"),
    ],
)
def test_bad_audit_requests(client, change, status, fragment):
    body = {"model": "tanks-fair", "dataset": "demo:tanks-dataset", "method": "grad-cam"}
    response = client.post("/api/v1/audits", json={**body, **change})
    assert response.status_code == status, response.text
    assert fragment in response.text


def test_zip_uploads_are_checked_and_audited(client):
    scenes = make_dataset(6, seed=9, bias=0.5)
    files = {
        f"{'tank' if s.label else 'forest'}/{i}.png": png(s.image) for i, s in enumerate(scenes)
    }
    files["notes.txt"] = b"ignored"
    files["tank/broken.png"] = b"not an image"
    upload = client.post(
        "/api/v1/datasets", files={"file": ("set.zip", zip_of(files), "application/zip")}
    )
    assert upload.status_code == 201, upload.text
    assert upload.json()["images"] == 7
    reference = upload.json()["dataset"]
    assert reference in client.get("/api/v1/datasets").json()
    body = {"model": "tanks-fair", "dataset": reference, "method": "saliency"}
    job = wait(client, client.post("/api/v1/audits", json=body).json()["id"])
    assert job["status"] == "done"
    summary = client.get(job["result"]["json"]).json()
    assert summary["images"] == 7 and summary["failed"] == 1


@pytest.mark.parametrize(
    ("files", "status", "fragment"),
    [
        ({"../evil.png": b"x"}, 422, "unsafe path"),
        ({"notes.txt": b"x"}, 422, "no images"),
        ({"big.png": b"\0" * 3_000_000}, 413, "unpacks to more than"),  # a zip bomb
    ],
)
def test_bad_zips_are_refused(client, files, status, fragment):
    response = client.post(
        "/api/v1/datasets", files={"file": ("x.zip", zip_of(files), "application/zip")}
    )
    assert response.status_code == status and fragment in response.text
    not_zip = client.post("/api/v1/datasets", files={"file": ("x.zip", b"PK nonsense")})
    assert not_zip.status_code == 422 and "not a readable zip" in not_zip.text


def test_the_audit_pages_and_the_drill_down(client):
    form = client.get("/audit?model=tanks-biased")
    assert form.status_code == 200 and 'value="demo:tanks-dataset"' in form.text
    assert 'value="folder:tanks"' in form.text and 'name="zip"' in form.text
    assert 'value="class-probabilities"' not in form.text  # no map, no audit
    posted = client.post(
        "/audit",
        data={"model": "tanks-biased", "dataset": "demo:tanks-dataset", "method": "saliency"},
        follow_redirects=False,
    )
    assert posted.status_code == 303
    job_id = posted.headers["location"].rsplit("/", 1)[-1]
    assert wait(client, job_id)["status"] == "done"
    page = client.get(f"/jobs/{job_id}")
    assert "Look here first" in page.text and "their evidence lies outside the object" in page.text
    link = re.search(rf'href="(/audits/{job_id}/images/\d+)"', page.text).group(1)
    drill = client.get(link, follow_redirects=False)
    assert drill.status_code == 303
    explained = client.get(drill.headers["location"])
    assert explained.status_code == 200 and "saliency on tanks-biased" in explained.text
    bad = client.post(
        "/audit", data={"model": "tanks-biased", "dataset": "zip", "method": "saliency"}
    )
    assert bad.status_code == 422 and "choose a zip file" in bad.text
