"""The HTML pages through the test client: forms generated from settings, runs, results
of every method, history, comparison, sanity checks, HTML errors and safety."""

from __future__ import annotations

import io
import re
import time

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from picasso.demo import demo_images
from picasso.web import WebSettings, create_app
from web.live import wait_job as wait

# Cheap settings, so that every method's page can be rendered in a few seconds.
CHEAP = {
    "occlusion": {"window": "8", "stride": "8"},
    "rise": {"masks": "64"},
    "smoothgrad": {"samples": "3"},
    "integrated-gradients": {"steps": "8"},
}

PLUGIN = """
import numpy as np
from picasso import Method, MethodOutput, MethodSettings


class Brightness(Method):
    name = "brightness"
    description = "The image's brightness, ignoring the model (a test plugin)."
    template = "brightness.html"

    def explain(self, model, batch, targets, settings, progress):
        progress(1, 1)
        return MethodOutput(maps=np.repeat(batch[0].mean(0)[None], len(targets), 0))
"""


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    root = tmp_path_factory.mktemp("pages")
    (root / "plugins").mkdir()
    (root / "plugins" / "brightness.py").write_text(PLUGIN)
    (root / "plugins" / "brightness.html").write_text(
        '<p class="own-template">brightness of {{ job.request.image_name }}: '
        '{{ "%.2f" % view.result.maps[0].max }}</p>'
    )
    settings = WebSettings(
        models=("demo:tanks-biased", "demo:tanks-fair", "demo:digits-onnx"),
        data_dir=root / "data",
        plugin_dirs=(root / "plugins",),
        max_upload_bytes=200_000,
        max_pixels=1_000_000,
    )
    with TestClient(create_app(settings)) as client:
        yield client


def finished_page(client, response, timeout=60):
    """Follow a job page until its job is finished (what the page's script does)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        statuses = re.findall(
            r'class="job" id="job-\w+" data-job="\w+" data-status="(\w+)"', response.text
        )
        assert statuses, response.text[:2000]
        if all(s in ("done", "failed", "cancelled", "interrupted") for s in statuses):
            return response
        time.sleep(0.05)
        response = client.get(str(response.url))
    raise AssertionError("job did not finish")


def run(client, method="occlusion", model="tanks-fair", samples=("tank-overcast",), **fields):
    data = {"model": model, "method": method, "samples": list(samples)}
    data.update({f"{method}.{k}": v for k, v in CHEAP.get(method, {}).items()})
    data.update(fields)
    return client.post("/run", data=data)


def test_start_page_shows_model_methods_and_generated_settings(client):
    page = client.get("/?model=tanks-fair")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    text = page.text
    # the header: model, framework, checkpoint file and its modification time
    assert 'id="model-info"' in text and ">torch<" in text and "model.safetensors" in text
    assert re.search(r"modified \d{4}-\d\d-\d\d \d\d:\d\d", text)
    assert '<option value="tanks-biased">' in text  # the switcher
    for name in ("occlusion", "saliency", "grad-cam", "rise", "brightness"):
        assert f'name="method" value="{name}"' in text
    assert "https://arxiv.org/abs/1311.2901" in text  # the reference
    # settings generated from the schema: bounds, choices, help
    window = re.search(r'<input type="number" id="f-occlusion.window"[^>]*>', text).group(0)
    assert 'min="1"' in window and 'max="4096"' in window and 'value="16"' in window
    assert '<select id="f-occlusion.score" name="occlusion.score">' in text
    assert "Side of the square patch" in text
    assert 'list="l-grad-cam.layer"' in text  # layer names offered for Grad-CAM
    assert '<img src="/samples/tank-overcast.png"' in text
    assert client.get("/samples/tank-overcast.png").headers["content-type"] == "image/png"


def test_methods_the_model_cannot_run_are_disabled(client):
    text = client.get("/?model=digits-onnx").text
    grad_cam = re.search(r'<input type="radio" name="method" value="grad-cam"[^>]*>', text)
    assert "disabled" in grad_cam.group(0)
    assert "needs layers, which this model lacks" in text


def test_run_shows_tabs_probabilities_downloads_and_faithfulness(client):
    response = run(
        client, samples=["tank-sunny"], target_mode="topk", top_k="2", faithfulness="true"
    )
    page = finished_page(client, response)
    text = page.text
    assert 'data-status="done"' in text
    assert text.count('class="tab"') == 2  # one tab per target
    assert text.count('class="target-panel"') == 2
    assert "Probabilities" in text and "<meter" in text
    assert "deletion AUC" in text and text.count("<polyline") == 4
    assert text.count('class="tick"') == 2 * 6  # 0, 50 %, 100 % and 0, 0.5, 1 per curve
    assert "A faithful map makes the deletion curve fall fast" in text
    assert "Sanity check this map" in text
    job_id = re.search(r'data-job="(\w+)"', text).group(1)
    for link in re.findall(r'href="(/api/v1/jobs/\w+/result\.\w+)"', text):
        assert client.get(link).status_code == 200
    for layer in ("input.png", "map-0.png", "map-1.png", "colorbar.png"):
        response = client.get(f"/api/v1/jobs/{job_id}/layers/{layer}")
        assert response.headers["content-type"] == "image/png"
        assert Image.open(io.BytesIO(response.content)).size in ((64, 64), (256, 12))
    assert client.get(f"/api/v1/jobs/{job_id}/layers/..%2Fjobs.sqlite3").status_code == 404


def test_every_registered_method_renders_its_results_page(client):
    """Every method the tank model can run (the others: attention rollout, which needs a
    transformer, and D-RISE, which needs a detector, have their own tests below)."""
    entries = {m["name"]: m for m in client.get("/api/v1/methods").json()}
    model = {m["name"]: m for m in client.get("/api/v1/models").json()}["tanks-fair"]
    methods = {n for n, m in entries.items() if set(m["requires"]) <= set(model["capabilities"])}
    assert "brightness" in methods  # the plugin
    assert set(entries) - methods == {"attention-rollout", "d-rise"}
    for method in sorted(methods):
        page = finished_page(client, run(client, method=method))
        assert 'data-status="done"' in page.text, (method, page.text[:3000])
        assert "Probabilities" in page.text or "own-template" in page.text
        if method == "class-probabilities":
            assert 'class="heat' not in page.text and "draws no map" in page.text
        elif method == "brightness":
            assert re.search(r'class="own-template">brightness of tank-overcast: \d', page.text)
        else:
            assert 'class="heat pixelated"' in page.text, method


def test_bad_settings_show_messages_and_keep_values(client):
    before = len(client.get("/api/v1/jobs").json())
    page = run(client, **{"occlusion.window": "0", "occlusion.baseline": "bright"})
    assert page.status_code == 422
    assert "greater than or equal to 1" in page.text
    assert "valid number" in page.text  # the baseline's own message
    assert 'value="bright"' in page.text  # what was typed stays in the form
    page = run(client, **{"occlusion.baseline": '"><script>alert(1)</script>'})
    assert "&#34;&gt;&lt;script&gt;" in page.text and "<script>alert" not in page.text
    assert len(client.get("/api/v1/jobs").json()) == before  # nothing was queued
    page = run(client, **{"occlusion.window": "4", "occlusion.stride": "8"})
    assert page.status_code == 422 and "must not exceed window" in page.text
    assert run(client, samples=()).status_code == 422
    assert run(client, method="nope").status_code == 422
    page = run(client, target_mode="class", target="7")
    assert page.status_code == 422 and "does not exist" in page.text


def test_uploads_through_the_form(client):
    good = demo_images("digit-7")[0].read_bytes()  # not run before: no cached job
    response = client.post(
        "/run",
        data={"model": "tanks-fair", "method": "saliency"},
        files=[
            ("files", ("..\\evil<script>.png", good, "image/png")),
            ("files", ("second.png", demo_images("forest-sunny")[0].read_bytes(), "image/png")),
        ],
        follow_redirects=False,
    )
    assert response.status_code == 303 and response.headers["location"].startswith("/history?jobs=")
    history = client.get(response.headers["location"]).text
    assert history.count("<tr data-job=") == 2
    assert "evil_script_" in history and "<script>" not in history  # a label, not a path
    bad = client.post(
        "/run",
        data={"model": "tanks-fair", "method": "saliency"},
        files=[("files", ("evil.png", b"<svg onload=alert(1)>", "image/png"))],
    )
    assert bad.status_code == 422 and "not a readable image" in bad.text
    assert bad.headers["content-type"].startswith("text/html")
    big = client.post(
        "/run",
        data={"model": "tanks-fair", "method": "saliency"},
        files=[("files", ("big.png", b"x" * 300_000, "image/png"))],
    )
    assert big.status_code == 413 and "larger than" in big.text


def test_sanity_check_button(client):
    page = finished_page(client, run(client, method="saliency", model="tanks-biased"))
    job_id = re.search(r'data-job="(\w+)"', page.text).group(1)
    sanity = finished_page(client, client.post(f"/jobs/{job_id}/sanity"))
    assert "Sanity check of saliency" in sanity.text
    assert re.search(r"Verdict: <strong>(pass|fail)</strong>", sanity.text)
    assert sanity.text.count("<tr><td>") >= 3  # one row per randomisation stage
    assert f'href="/jobs/{job_id}"' in sanity.text
    verdict = re.search(r"Verdict: <strong>(\w+)</strong>", sanity.text).group(1)
    result = client.get(f"/jobs/{job_id}").text  # the verdict next to the map now
    assert f"<strong>{verdict}</strong>" in result and 'id="sanity-line"' in result
    assert "Sanity check this map" not in result  # done once: the button is gone


def test_no_sanity_check_where_the_model_cannot_be_randomised(client):
    page = finished_page(
        client, run(client, method="saliency", model="digits-onnx", samples=["digit-7"])
    )
    assert 'data-status="done"' in page.text and "Sanity check this map" not in page.text
    # ... and the page says why, instead of hiding the button silently
    assert "No sanity check for this map: model &#39;digits-onnx&#39; cannot be randomised" in (
        page.text
    )
    job_id = re.search(r'data-job="(\w+)"', page.text).group(1)
    refused = client.post(f"/jobs/{job_id}/sanity")
    assert refused.status_code == 409 and "cannot be randomised" in refused.text


def test_a_method_the_model_cannot_run_is_a_409_page(client):
    page = run(client, method="grad-cam", model="digits-onnx", samples=["digit-3"])
    assert page.status_code == 409 and page.headers["content-type"].startswith("text/html")
    assert "needs layers" in page.text


def test_compare_two_models_side_by_side(client):
    assert "Second model" in client.get("/compare").text
    response = run(
        client,
        method="saliency",
        model="tanks-biased",
        samples=["tank-overcast"],
        compare="tanks-fair",
    )
    page = finished_page(client, response)
    assert "/compare?pairs=" in str(page.url)
    assert page.text.count('<div class="pair">') == 1
    assert "saliency on tanks-biased" in page.text and "saliency on tanks-fair" in page.text
    # One colour scale for both maps (on by default), so they compare by eye.
    scales = re.findall(r"map-0\.png\?low=([-\d.e]+)&amp;high=([-\d.e]+)", page.text)
    assert len(scales) == 2 and scales[0] == scales[1]
    his = re.findall(r'<span class="hi">([^<]+)</span>', page.text)
    assert len(his) == 2 and his[0] == his[1]
    url = re.search(r'src="(/api/v1/jobs/\w+/layers/map-0\.png\?[^"]+)"', page.text).group(1)
    layer = client.get(url.replace("&amp;", "&"))
    low, high, _ = layer.headers["x-picasso-limits"].split(",")
    assert layer.status_code == 200
    assert (float(low), float(high)) == pytest.approx(tuple(map(float, scales[0])), rel=1e-5)
    own = client.get(str(page.url) + "&shared=false")
    assert "?low=" not in own.text and "one shared scale" in own.text


def test_unknown_models_on_the_run_form_are_refused_with_the_served_ones(client):
    second = run(client, method="saliency", compare="nope")
    assert second.status_code == 404 and "unknown model &#39;nope&#39;" in second.text
    assert "Second model" in second.text  # the form again, with what was typed
    first = run(client, method="saliency", model="nope")
    assert first.status_code == 404 and "available: tanks-biased, tanks-fair" in first.text


def test_history_and_cancel(client):
    response = run(client, method="rise", **{"rise.masks": "50000", "rise.batch_size": "1"})
    assert 'class="cancel"' in response.text and "<progress" in response.text
    job_id = re.search(r'data-job="(\w+)"', response.text).group(1)
    cancelled = finished_page(client, client.post(f"/jobs/{job_id}/cancel"))
    assert 'data-status="cancelled"' in cancelled.text
    history = client.get("/history").text
    assert f'<tr data-job="{job_id}" data-status="cancelled"' in history


def test_progress_is_streamed_as_server_sent_events(client):
    page = finished_page(client, run(client, method="occlusion", samples=["forest-overcast"]))
    job_id = re.search(r'data-job="(\w+)"', page.text).group(1)
    with client.stream("GET", f"/api/v1/jobs/{job_id}/events") as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in stream.iter_lines() if line.startswith("data: ")]
    assert len(lines) == 1 and '"status": "done"' in lines[0]


def test_errors_are_html_for_pages_and_json_for_the_api(client):
    page = client.get("/jobs/does-not-exist")
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    assert "no job does-not-exist" in page.text and "Traceback" not in page.text
    assert client.get("/?model=nope").status_code == 404
    assert client.get("/no/such/page").headers["content-type"].startswith("text/html")
    missing = "0" * 32
    api = client.get(f"/api/v1/jobs/{missing}")
    assert api.status_code == 404 and api.json() == {"detail": f"no job {missing}"}
    assert client.get("/samples/..%2F..%2Fmodels.png").status_code == 404


def test_a_result_deleted_from_disk_is_reported_not_a_crash(client):
    page = finished_page(client, run(client, method="saliency", samples=["digit-0"]))
    job_id = re.search(r'data-job="(\w+)"', page.text).group(1)
    store = client.app.state.services.store
    for path in store.result_dir(job_id).iterdir():
        path.unlink()
    page = client.get(f"/jobs/{job_id}")
    assert page.status_code == 200 and "are missing from the data folder" in page.text
    again = finished_page(client, run(client, method="saliency", samples=["digit-0"]))
    assert f'data-job="{job_id}"' not in again.text and 'data-status="done"' in again.text


def test_security_headers_and_cross_site_posts(client):
    page = client.get("/")
    policy = page.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "unsafe-inline" not in policy
    assert "<script>" not in page.text and " style=" not in page.text  # no inline code
    forged = client.post(
        "/run", data={"model": "tanks-fair"}, headers={"origin": "https://evil.example"}
    )
    assert forged.status_code == 403


def test_api_token_protects_pages_with_a_login(tmp_path):
    settings = WebSettings(models=("demo:digits",), data_dir=tmp_path, api_token="s3cret")
    with TestClient(create_app(settings)) as client:
        page = client.get("/", follow_redirects=False)
        assert page.status_code == 303 and page.headers["location"] == "/login"
        assert client.get("/api/v1/models").status_code == 401
        assert client.post("/login", data={"token": "wrong"}).status_code == 401
        assert client.post("/login", data={"token": "s3cret"}).status_code == 200  # -> start page
        assert "What does" in client.get("/").text  # the cookie now opens the pages


def test_results_survive_a_restart_and_cut_jobs_say_so(tmp_path):
    settings = WebSettings(models=("demo:tanks-fair",), data_dir=tmp_path)
    with TestClient(create_app(settings)) as client:
        done = finished_page(client, run(client, method="saliency"))
        done_id = re.search(r'data-job="(\w+)"', done.text).group(1)
        long = run(client, method="rise", **{"rise.masks": "100000", "rise.batch_size": "1"})
        long_id = re.search(r'data-job="(\w+)"', long.text).group(1)
    with TestClient(create_app(settings)) as client:  # the server again, same data folder
        history = client.get("/history").text
        assert f'<tr data-job="{done_id}" data-status="done"' in history
        assert f'<tr data-job="{long_id}" data-status="interrupted"' in history
        assert 'class="heat pixelated"' in client.get(f"/jobs/{done_id}").text
        cut = client.get(f"/jobs/{long_id}").text
        assert "the server stopped before this job finished" in cut


def test_a_full_size_overlay_can_be_downloaded(client):
    """The first class's map over the image at the image's own size, the map placed on
    the part the model saw (here the whole image: the tank models stretch)."""
    import io

    from PIL import Image

    big = Image.new("RGB", (320, 200), (90, 120, 60))
    buffer = io.BytesIO()
    big.save(buffer, format="PNG")
    response = client.post(
        "/run",
        data={"model": "tanks-fair", "method": "saliency", "target_mode": "top1"},
        files={"files": ("wide.png", buffer.getvalue(), "image/png")},
    )
    page = finished_page(client, response)
    link = re.search(r'href="([^"]+/layers/overlay\.png)"', page.text).group(1)
    overlay = client.get(link)
    assert overlay.status_code == 200
    with Image.open(io.BytesIO(overlay.content)) as image:
        assert image.size == (320, 200)


def test_samples_fit_the_model_and_the_model_stays_chosen(client):
    digits = client.get("/?model=digits-onnx").text
    tanks = client.get("/?model=tanks-fair").text
    assert 'value="digit-3"' in digits and 'value="tank-sunny"' not in digits
    assert 'value="tank-sunny"' in tanks and 'value="digit-3"' not in tanks
    assert 'href="/history?model=digits-onnx"' in digits  # the navigation keeps the model
    history = client.get("/history?model=digits-onnx").text
    assert re.search(r'<option value="digits-onnx" selected>', history)


def test_a_class_can_be_chosen_by_name(client):
    page = finished_page(client, run(client, method="saliency", target_mode="class", target="Tank"))
    assert "saliency on tanks-fair" in page.text and ">tank <small>" in page.text
    assert 'list="class-names"' in client.get("/?model=tanks-fair").text
    bad = run(client, method="saliency", target_mode="class", target="zebra")
    assert bad.status_code == 422 and "neither a class index nor a class name" in bad.text
    assert "did you mean" not in bad.text
    typo = run(client, method="saliency", target_mode="class", target="tnak")
    assert typo.status_code == 422 and "did you mean &#39;tank&#39;?" in typo.text


def test_run_again_with_edited_settings(client):
    first = finished_page(
        client,
        run(client, method="occlusion", **{"occlusion.window": "16", "occlusion.stride": "16"}),
    )
    job_id = re.search(r'data-job="(\w+)"', first.text).group(1)
    assert f'href="/?again={job_id}"' in first.text
    form = client.get(f"/?again={job_id}").text
    assert 'id="again"' in form and 'name="again" value="' in form
    assert 'value="occlusion" checked' in form and 'value="16"' in form  # the settings
    sha = re.search(r'name="again" value="(\w+)"', form).group(1)
    again = finished_page(
        client,
        client.post(
            "/run",
            data={
                "model": "tanks-fair",
                "method": "occlusion",
                "again": sha,
                "again_name": "tank",
                "occlusion.window": "32",
                "occlusion.stride": "32",
            },
        ),
    )
    other = re.search(r'data-job="(\w+)"', again.text).group(1)
    assert other != job_id
    jobs = {j["id"]: j for j in client.get("/api/v1/jobs").json()}
    assert jobs[other]["request"]["image"] == jobs[job_id]["request"]["image"] == sha
    assert jobs[other]["request"]["settings"]["window"] == 32


def test_several_visualizations_at_once_make_a_grid(client):
    response = client.post(
        "/run",
        data={
            "model": "tanks-fair",
            "method": "saliency",
            "also": ["grad-cam", "occlusion"],
            "samples": ["tank-overcast", "forest-sunny"],
            "occlusion.window": "16",
            "occlusion.stride": "16",
        },
        follow_redirects=False,
    )
    assert response.status_code == 303 and response.headers["location"].startswith("/grid?")
    rows = response.headers["location"].split("=", 1)[1].split(",")
    assert len(rows) == 2 and all(len(r.split(".")) == 3 for r in rows)
    for job_id in (i for r in rows for i in r.split(".")):
        wait(client, job_id)
    page = client.get(response.headers["location"])
    assert page.status_code == 200
    heads = re.findall(r"<th>([\w+-]+)</th>", page.text)
    assert heads == ["image", "saliency", "grad-cam", "occlusion"]
    assert page.text.count('class="heat pixelated"') == 6  # every cell shows its map
    bad = client.post(
        "/run",
        data={
            "model": "tanks-fair",
            "method": "saliency",
            "also": ["occlusion"],
            "samples": ["tank-overcast"],
            "occlusion.window": "4",
            "occlusion.stride": "8",
        },
    )
    assert bad.status_code == 422 and "must not exceed window" in bad.text


def test_explore_pages_samples_uploads_and_links(client):
    start = client.get("/explore?model=tanks-fair")
    assert start.status_code == 200 and "sample=tank-overcast" in start.text
    assert 'href="/explore?model=tanks-fair"' in client.get("/?model=tanks-fair").text
    opened = client.get("/explore?model=tanks-fair&sample=tank-overcast")  # follows the redirect
    assert opened.status_code == 200 and 'data-width="64"' in opened.text
    sha = re.search(r'data-image="([0-9a-f]{64})"', opened.text).group(1)
    fitted = client.get(f"/explore/input.png?model=tanks-fair&image={sha}")
    assert Image.open(io.BytesIO(fitted.content)).size == (64, 64)
    # the model switcher keeps the image
    assert f'name="image" value="{sha}"' in opened.text
    data = demo_images("forest-sunny")[0].read_bytes()
    files = {"file": ("forest.png", data, "image/png")}
    uploaded = client.post("/explore", data={"model": "tanks-fair"}, files=files)
    assert uploaded.status_code == 200 and "data-image=" in uploaded.text
    # a result links to the explore page, which opens with its map beneath the paint
    job = client.post(
        "/api/v1/jobs",
        json={
            "model": "tanks-fair",
            "image": sha,
            "method": "occlusion",
            "settings": {"window": 16, "stride": 16},
        },
    ).json()
    wait(client, job["id"])
    result = client.get(f"/jobs/{job['id']}").text
    assert f'href="/explore?job={job["id"]}"' in result
    explored = client.get(f"/explore?job={job['id']}")
    assert f'<option value="{job["id"]}" selected>' in explored.text


@pytest.mark.parametrize(
    ("url", "status", "fragment"),
    [
        ("/explore?model=nope", 404, "unknown model"),
        ("/explore?model=tanks-fair&sample=../../etc/passwd", 404, "no sample image"),
        ("/explore?model=tanks-fair&image=" + "0" * 64, 404, "no uploaded image"),
        ("/explore?model=tanks-fair&image=not-a-hash", 404, "no uploaded image"),
        ("/explore?job=" + "0" * 32, 404, "no job"),
        ("/explore/input.png?model=nope&image=" + "0" * 64, 404, "unknown model"),
    ],
)
def test_explore_refuses_what_does_not_exist(client, url, status, fragment):
    response = client.get(url)
    assert response.status_code == status and fragment in response.text


def test_explore_upload_checks_the_file(client):
    bad = client.post(
        "/explore", data={"model": "tanks-fair"}, files={"file": ("x.png", b"nope", "image/png")}
    )
    assert bad.status_code == 422 and "not a readable image" in bad.text
    empty = client.post("/explore", data={"model": "tanks-fair"})
    assert empty.status_code == 422 and "choose an image file" in empty.text


def test_a_result_with_hidden_pixels_says_what_was_hidden(client):
    sha = client.post(
        "/api/v1/images",
        files={"file": ("t.png", demo_images("tank-overcast")[0].read_bytes(), "image/png")},
    ).json()["sha256"]
    body = {"model": "tanks-fair", "image": sha, "method": "class-probabilities"}
    body["hide"] = {"boxes": [[0, 0, 64, 16]], "fill": "mean", "invert": True}
    job = wait(client, client.post("/api/v1/jobs", json=body).json()["id"])
    page = client.get(f"/jobs/{job['id']}").text
    assert "75.0 % of the input (everything but the marked pixels), filled with mean" in page
    shown = Image.open(io.BytesIO(client.get(f"/api/v1/jobs/{job['id']}/layers/input.png").content))
    plain = Image.open(demo_images("tank-overcast")[0]).convert("RGB")
    changed = np.any(np.asarray(shown.convert("RGB")) != np.asarray(plain), axis=2)
    assert not changed[:16].any() and changed[16:].mean() > 0.9  # the hidden part is shaded


def test_a_transformers_model_is_served_and_explained_with_attention_rollout(tmp_path):
    """A Hugging Face folder is a model like any other for the server; attention
    rollout, which only transformers offer, renders its results page."""
    pytest.importorskip("transformers")
    from hf_models import save_vit

    folder = save_vit(tmp_path / "vit-tanks", ["forest", "tank"])
    settings = WebSettings(models=(str(folder),), data_dir=tmp_path / "data")
    with TestClient(create_app(settings)) as client:
        models = client.get("/api/v1/models").json()
        assert models[0]["name"] == "vit-tanks" and "attentions" in models[0]["capabilities"]
        form = client.get("/?model=vit-tanks").text
        assert 'value="attention-rollout"' in form
        page = finished_page(client, run(client, "attention-rollout", model="vit-tanks"))
        assert 'data-status="done"' in page.text and 'class="heat pixelated"' in page.text
        assert "Attention multiplied through the layers" in page.text


def test_a_segmentation_model_shows_its_segmentation_and_takes_a_region(tmp_path):
    pytest.importorskip("transformers")
    from hf_models import save_segformer

    folder = save_segformer(tmp_path / "segformer")
    settings = WebSettings(models=(str(folder),), data_dir=tmp_path / "data")
    with TestClient(create_app(settings)) as client:
        form = client.get("/?model=segformer").text
        assert 'name="region"' in form
        page = finished_page(
            client, run(client, "saliency", model="segformer", region="8, 8, 40, 40")
        )
        assert 'data-status="done"' in page.text, page.text[:2000]
        assert "segmentation.png" in page.text and "the region given" in page.text
        assert "share of pixels" in page.text
        job = re.search(r'data-job="(\w+)"', page.text).group(1)
        layer = client.get(f"/api/v1/jobs/{job}/layers/segmentation.png")
        assert layer.status_code == 200 and Image.open(io.BytesIO(layer.content)).size == (64, 64)
        request = client.get(f"/api/v1/jobs/{job}").json()["request"]
        assert request["region"]["boxes"] == [[8, 8, 40, 40]]
        assert "Explore this image" not in page.text  # the explore page serves classifiers
        explore = client.get("/explore?model=segformer")
        assert explore.status_code == 409 and "serves classifiers" in explore.text
        bad = run(client, "saliency", model="segformer", region="8,8,4")
        assert bad.status_code == 422 and "the region must be four whole numbers" in bad.text
        outside = run(client, "saliency", model="segformer", region="70,0,80,8")
        assert outside.status_code == 422 and "outside the 64x64 image" in outside.text


def test_a_detector_lists_its_detections_and_explains_the_one_picked(tmp_path):
    pytest.importorskip("transformers")
    from hf_models import save_yolos

    folder = save_yolos(tmp_path / "yolos")
    settings = WebSettings(models=(str(folder),), data_dir=tmp_path / "data")
    with TestClient(create_app(settings)) as client:
        form = client.get("/?model=yolos").text
        assert "Which detections" in form and 'value="d-rise"' in form
        assert 'name="region"' not in form
        page = finished_page(
            client,
            run(
                client,
                "d-rise",
                model="yolos",
                target_mode="class",
                target="2",
                **{"d-rise.masks": "100"},
            ),
        )
        assert 'data-status="done"' in page.text, page.text[:2000]
        job = re.search(r'data-job="(\w+)"', page.text).group(1)
        result = client.get(f"/api/v1/jobs/{job}/result.json").json()
        detections = result["extras"]["detections"]
        assert len(detections) == 5 and result["targets"][0]["index"] == 2
        rects = re.findall(
            r'<rect [^>]*data-index="(\d)" class="box( explained)?"',
            page.text,
        )
        assert sorted(int(i) for i, _ in rects) == [0, 1, 2, 3, 4]
        assert [i for i, explained in rects if explained] == ["2"]
        assert 'class="pick-detection"' in page.text and "Explore this image" not in page.text
        again = client.get(f"/?again={job}&target=4").text
        assert re.search(r'name="target" value="4"', again)
        missing = run(client, "occlusion", model="yolos", target_mode="class", target="9")
        assert "detection 9 does not exist" in finished_page(client, missing).text
        api = client.post(
            "/api/v1/jobs",
            json={
                "model": "yolos",
                "image": result["image"]["sha256"],
                "method": "d-rise",
                "region": {"boxes": [[0, 0, 8, 8]]},
            },
        )
        assert api.status_code == 422 and "region is for segmentation models" in api.text
