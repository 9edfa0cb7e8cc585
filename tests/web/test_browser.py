"""The pages in a real browser: Debian's Chromium, headless, driven by Playwright,
against `picasso serve` started on a free loopback port with the bundled demo models.

Without Chromium these tests are skipped locally; under CI (CI=true) they fail
instead, because the README's test command installs it."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from picasso.demo import demo_images
from web.live import upload_file

#: An image's natural width once it has loaded (a result page may still be fetching it).
LOADED_WIDTH = """img => img.complete ? img.naturalWidth : new Promise((resolve) => {
    img.addEventListener("load", () => resolve(img.naturalWidth));
    img.addEventListener("error", () => resolve(0));
})"""

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = os.environ.get("PICASSO_SCREENSHOTS")  # a folder: save docs screenshots

if not Path(CHROMIUM).exists():
    if os.environ.get("CI"):
        pytest.fail("chromium is missing; the test command installs it", pytrace=False)
    pytest.skip("chromium is not installed (apt-get install -y chromium)", allow_module_level=True)

try:
    from playwright.sync_api import sync_playwright
except ImportError:
    if os.environ.get("CI"):
        pytest.fail("playwright is missing; the test command installs it", pytrace=False)
    pytest.skip("playwright is not installed (the dev extra)", allow_module_level=True)


@pytest.fixture(scope="module")
def server(live_server):
    return live_server


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    """A fresh page; any script error or failed request fails the test."""
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(f"script error: {exc}"))
    page.on(
        "console",
        lambda msg: problems.append(f"console: {msg.text}") if msg.type == "error" else None,
    )
    page.on(
        "response",
        lambda r: problems.append(f"HTTP {r.status} {r.url}") if r.status >= 400 else None,
    )
    page.expected_problems = []  # a test that provokes an error lists it here
    page.set_default_timeout(60_000)
    yield page
    context.close()
    unexpected = [p for p in problems if not any(e in p for e in page.expected_problems)]
    assert not unexpected, unexpected


def post_json(url: str, body: dict) -> dict:
    request = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request) as response:
        return json.loads(response.read())


def fill_form(page, url: str, method: str, sample: str | None = None, **settings) -> None:
    """Open the run form, tick a sample, choose a method and type its settings."""
    page.goto(url)
    if sample:
        page.check(f"input[name=samples][value={sample}]")
    page.check(f"input[name=method][value={method}]")
    for name, value in settings.items():
        page.fill(f"#f-{method}\\.{name}", str(value))


def test_upload_occlusion_progress_overlay_tabs(server, page):
    # window: a setting changed from its default; many small batches: a visible progress
    fill_form(page, f"{server}/?model=tanks-fair", "occlusion", window=4, stride=1, batch_size=1)
    assert page.is_visible("#settings-occlusion") and not page.is_visible("#settings-saliency")
    page.set_input_files("#files", str(demo_images("tank-overcast")[0]))
    assert "tank-overcast.png" in page.text_content("#chosen-files")
    page.wait_for_function(  # a preview of the chosen image, decoded by the browser
        "() => { const i = document.querySelector('#chosen-files img.preview');"
        " return i && i.naturalWidth === 64; }"
    )
    page.check("input[name=target_mode][value=topk]")
    page.fill("input[name=top_k]", "2")
    page.click("#run")
    page.wait_for_selector("progress.bar")
    page.wait_for_function(
        "() => { const b = document.querySelector('progress.bar');"
        " return b && b.value > 0 && b.value < b.max; }"
    )  # moving
    page.wait_for_function(  # the map so far, drawn while the job runs
        "() => { const i = document.querySelector('figure.preview:not([hidden]) img');"
        " return i && i.complete && i.naturalWidth === 64; }"
    )
    page.wait_for_function(
        "() => { const b = document.querySelector('progress.bar');"
        " return b && b.max > 1 && b.value === b.max; }"
    )  # reached the end
    page.wait_for_selector(".result")  # the page shows the result when the job is done
    assert page.text_content(".status") == "done"
    assert "window=4" in page.text_content(".method-info")

    rows = page.locator("table.probabilities tbody tr")
    assert rows.count() == 2 and "tank" in rows.nth(0).text_content()
    panel = page.locator(".target-panel").nth(0)
    heat = panel.locator("img.heat")
    assert heat.evaluate("img => img.complete && img.naturalWidth") == 64
    panel.locator("input.opacity").fill("25")
    assert heat.evaluate("img => img.style.opacity") == "0.25"
    box = panel.locator(".stack").bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.7)
    page.mouse.move(box["x"] + box["width"] * 0.31, box["y"] + box["height"] * 0.71)
    page.wait_for_function(
        "() => document.querySelector('.target-panel:not([hidden]) .readout')"
        ".textContent.startsWith('value at')"
    )
    x, y, shown = re.match(
        r"value at \((\d+), (\d+)\): (\S+)", panel.locator(".readout").text_content()
    ).groups()
    job_id = page.get_attribute(".job", "data-job")
    with urllib.request.urlopen(f"{server}/api/v1/jobs/{job_id}/result.npy") as response:
        maps = np.load(io.BytesIO(response.read()))
    assert (int(x), int(y)) == (19, 45)  # 0.31 and 0.71 of 64 pixels
    assert float(shown) == pytest.approx(float(maps[0, int(y), int(x)]), rel=1e-3, abs=1e-7)
    assert panel.locator(".legend img").evaluate(LOADED_WIDTH) == 256
    if SCREENSHOTS:
        panel.locator("input.opacity").fill("60")
        page.screenshot(path=str(Path(SCREENSHOTS) / "web-results.png"), full_page=True)

    tabs = page.locator(".tab")
    assert tabs.count() == 2
    tabs.nth(1).click()
    assert page.locator(".target-panel").nth(1).is_visible()
    assert not page.locator(".target-panel").nth(0).is_visible()
    assert tabs.nth(1).get_attribute("aria-selected") == "true"


def test_drop_two_images_then_saliency(server, page):
    page.goto(f"{server}/?model=tanks-biased")
    files = {
        "dropped-forest.png": list(demo_images("forest-overcast")[0].read_bytes()),
        "dropped-tank.png": list(demo_images("tank-sunny")[0].read_bytes()),
    }
    page.evaluate(
        """files => {
            const transfer = new DataTransfer();
            for (const [name, bytes] of Object.entries(files)) {
                transfer.items.add(new File([new Uint8Array(bytes)], name, {type: "image/png"}));
            }
            const zone = document.getElementById("dropzone");
            zone.dispatchEvent(new DragEvent("drop", {dataTransfer: transfer, bubbles: true}));
        }""",
        files,
    )
    chosen = page.text_content("#chosen-files")
    assert "dropped-forest.png" in chosen and "dropped-tank.png" in chosen
    page.check("input[name=method][value=saliency]")
    page.click("#run")
    page.wait_for_url("**/history?jobs=*")  # several images: the list of their jobs
    rows = page.locator("table.history tbody tr")
    assert rows.count() == 2
    page.wait_for_function(
        "() => [...document.querySelectorAll('table.history tbody tr')]"
        ".every(row => row.dataset.status === 'done')"
    )
    names = page.locator("table.history tbody td:nth-child(5)").all_text_contents()
    assert sorted(names) == ["dropped-forest", "dropped-tank"]
    page.locator("table.history a", has_text="open").first.click()
    page.wait_for_selector(".result")


def test_cancel_a_long_job(server, page):
    fill_form(page, f"{server}/?model=tanks-fair", "rise", "tank-sunny", masks=100000, batch_size=1)
    page.click("#run")
    page.wait_for_function("() => document.querySelector('progress.bar').value > 0")
    page.wait_for_function(
        "() => document.querySelector('.progress-text').textContent.includes('left')"
    )
    assert "elapsed" in page.text_content(".progress-text")  # and an estimate of the rest
    page.click("button.cancel")
    page.wait_for_selector(".job-error")
    assert page.text_content(".status") == "cancelled"
    assert page.text_content(".job-error") == "cancelled"


def test_client_side_validation_and_server_messages(server, page):
    fill_form(page, f"{server}/?model=tanks-fair", "occlusion", "tank-sunny", window=0)
    page.click("#run")
    assert page.url.startswith(f"{server}/?")  # the browser stopped it: below the minimum
    assert page.evaluate("() => document.activeElement.id") == "f-occlusion.window"
    page.fill("#f-occlusion\\.window", "4")
    page.fill("#f-occlusion\\.stride", "8")  # only the server knows this rule
    page.expected_problems += ["HTTP 422", "status of 422"]
    page.click("#run")
    assert "must not exceed window" in page.text_content("#error")
    assert page.input_value("#f-occlusion\\.stride") == "8"


def test_compare_two_models(server, page):
    url = f"{server}/compare?model=tanks-biased"
    fill_form(page, url, "occlusion", "tank-overcast", window=8, stride=4)
    page.select_option("#compare-select", "tanks-fair")
    page.click("#run")
    page.wait_for_url("**/compare?pairs=*")
    page.wait_for_function("() => document.querySelectorAll('.pair .result').length === 2")
    titles = page.locator(".pair h2").all_text_contents()
    assert titles == ["occlusion on tanks-biased", "occlusion on tanks-fair"]
    if SCREENSHOTS:
        page.screenshot(path=str(Path(SCREENSHOTS) / "web-compare.png"), full_page=True)


def test_display_controls_redraw_the_map(server, page):
    """Percentile, sign and colormap redraw the map from the raw values; the legend
    follows (no script error, no failed request)."""
    fill_form(page, f"{server}/?model=tanks-fair", "integrated-gradients", "tank-overcast", steps=8)
    page.click("#run")
    page.wait_for_selector(".result .viewer")
    before = page.text_content(".target-panel:not([hidden]) .legend .hi")
    page.select_option("form.display-controls select[name=sign]", "positive")
    page.wait_for_function(
        "() => document.querySelector('.target-panel:not([hidden]) img.heat').src"
        ".startsWith('blob:')"
    )
    page.fill("form.display-controls input[name=percentile]", "100")
    page.select_option("form.display-controls select[name=colormap]", "viridis")
    page.wait_for_function(
        f"() => document.querySelector('.target-panel:not([hidden]) .legend .hi')"
        f".textContent !== {before!r}"
    )
    assert page.is_hidden(".target-panel:not([hidden]) .legend .mid")  # no sign now
    width = page.evaluate(
        "() => document.querySelector('.target-panel:not([hidden]) img.heat').naturalWidth"
    )
    assert width == 64


def test_several_visualizations_make_a_grid(server, page):
    fill_form(page, f"{server}/?model=tanks-biased", "saliency", "tank-overcast")
    page.check("input[name=samples][value=forest-sunny]")
    page.click("details.more-methods summary")
    page.check("input[name=also][value=grad-cam]")
    assert page.is_visible("#settings-grad-cam") and page.is_visible("#settings-saliency")
    page.click("#run")
    page.wait_for_url("**/grid?jobs=*")
    page.wait_for_function(
        "() => document.querySelectorAll('table.grid img.heat').length === 4"
        " && Array.from(document.querySelectorAll('table.grid img.heat'))"
        ".every((i) => i.complete && i.naturalWidth > 0)",
        timeout=120_000,
    )
    assert page.locator("table.grid thead th").all_text_contents() == [
        "image",
        "saliency",
        "grad-cam",
    ]
    if SCREENSHOTS:
        page.screenshot(path=str(Path(SCREENSHOTS) / "web-grid.png"), full_page=True)


def test_class_search_run_again_samples_and_sanity_stages(server, page):
    """The page items of one visit: samples that fit the model, a class chosen by typing
    its name, run again with an edited setting, the sanity check's stage figure."""
    page.goto(f"{server}/?model=digits")
    assert page.locator("input[name=samples][value=digit-3]").count() == 1
    assert page.locator("input[name=samples][value=tank-sunny]").count() == 0
    page.check("input[name=samples][value=digit-3]")
    page.check("input[name=method][value=saliency]")
    page.check("input[name=target_mode][value=class]")
    page.fill("input.class-search", "7")  # a name from the suggestions (digits: "0".."9")
    page.click("#run")
    page.wait_for_selector(".result .viewer")
    assert page.text_content(".tab[aria-selected=true]").startswith("7")
    page.click("a.run-again")
    assert page.is_visible("#again")
    page.check("input[name=method][value=occlusion]")
    page.fill("#f-occlusion\\.window", "4")
    page.fill("#f-occlusion\\.stride", "4")
    page.click("#run")
    page.wait_for_selector(".result .viewer")
    assert "occlusion on digits" in page.text_content("h2")
    page.click("form.sanity button")
    page.wait_for_selector(".sanity-stages img", timeout=120_000)
    assert page.locator(".sanity-stages img").evaluate("i => i.naturalWidth") > 300
    assert "Verdict:" in page.text_content(".verdict")
    if SCREENSHOTS:
        page.screenshot(path=str(Path(SCREENSHOTS) / "web-sanity.png"), full_page=True)


def test_audit_a_dataset_and_drill_down(server, page):
    """The tank story at dataset scale, from the page: the biased model's tank
    strategies are flagged in words, and an example opens its regular results."""
    page.goto(f"{server}/audit?model=tanks-biased")
    page.check("input[name=dataset][value='demo:tanks-dataset']")
    page.check("input[name=method][value=saliency]")
    assert page.is_visible("#settings-saliency") and not page.is_visible("#settings-grad-cam")
    page.click("#run")
    page.wait_for_selector(".audit-report", timeout=120_000)
    flags = page.text_content(".audit-flags")
    assert "Look here first" in flags and "tank" in flags and "outside the object" in flags
    assert page.locator(".audit-strategy.flagged").count() >= 1
    assert page.locator(".audit-strategy img").first.evaluate(LOADED_WIDTH) > 0
    if SCREENSHOTS:
        page.screenshot(path=str(Path(SCREENSHOTS) / "web-audit.png"), full_page=True)
    page.locator(".audit-strategy.flagged figure a").first.click()
    page.wait_for_selector(".result .viewer")
    assert "saliency on tanks-biased" in page.text_content("h2")


def test_every_method_renders_in_the_browser(server, page):
    with urllib.request.urlopen(f"{server}/api/v1/models") as response:
        models = {m["name"]: m for m in json.loads(response.read())}
    capabilities = set(models["tanks-fair"]["capabilities"])
    with urllib.request.urlopen(f"{server}/api/v1/methods") as response:
        entries = json.loads(response.read())
    methods = [m["name"] for m in entries if set(m["requires"]) <= capabilities]
    # all but attention rollout (transformers) and D-RISE (detectors): their own tests
    assert len(methods) == len(entries) - 2
    sha = upload_file(server, demo_images("tank-overcast")[0])
    cheap = {
        "rise": {"masks": 64},
        "smoothgrad": {"samples": 3},
        "integrated-gradients": {"steps": 8},
    }
    for method in methods:
        job = post_json(
            f"{server}/api/v1/jobs",
            {
                "model": "tanks-fair",
                "image": sha,
                "method": method,
                "settings": cheap.get(method, {}),
            },
        )
        page.goto(f"{server}/jobs/{job['id']}")
        page.wait_for_selector(".result")
        if method != "class-probabilities":
            assert page.locator("img.heat").first.evaluate(LOADED_WIDTH) == 64
    page.goto(f"{server}/history")
    assert page.locator("table.history tbody tr").count() >= len(methods)


# -- explore -----------------------------------------------------------------------------
def explore(page, url: str) -> None:
    page.goto(url)
    page.wait_for_selector("#explore[data-settled=true] #explore-bars tr[data-index]")


def settled(page) -> None:
    """Wait until the probabilities shown answer what is on the canvas now."""
    page.wait_for_timeout(60)  # past the 30 ms debounce
    page.wait_for_selector("#explore[data-settled=true]")


def tank_probability(page) -> float:
    row = page.locator("#explore-bars tr", has_text="tank")
    return float(row.get_attribute("data-probability"))


def drag_rectangle(page, x0: float, y0: float, x1: float, y1: float, size: int = 64) -> None:
    """Drag the rectangle tool from (x0, y0) to (x1, y1), in pixels of the model input."""
    page.keyboard.press("r")
    box = page.locator("#explore-paint").bounding_box()
    scale = box["width"] / size
    page.mouse.move(box["x"] + x0 * scale, box["y"] + y0 * scale)
    page.mouse.down()
    page.mouse.move(box["x"] + (x0 + x1) / 2 * scale, box["y"] + (y0 + y1) / 2 * scale)
    page.mouse.move(box["x"] + x1 * scale, box["y"] + y1 * scale)
    page.mouse.up()
    settled(page)


@pytest.mark.parametrize(
    ("scene", "region", "model", "moves"),
    [
        # the tank on an overcast scene: the fair model loses it, the biased one does not
        ("tank-overcast", (6, 28, 34, 48), "tanks-fair", True),
        ("tank-overcast", (6, 28, 34, 48), "tanks-biased", False),
        # the sunny sky: the biased model called the sunny tank "forest"; without the
        # sky it sees a tank; the fair model does not care
        ("tank-sunny", (0, 0, 64, 26), "tanks-biased", True),
        ("tank-sunny", (0, 0, 64, 26), "tanks-fair", False),
    ],
)
def test_painting_over_the_tank_or_the_sky(server, page, scene, region, model, moves):
    explore(page, f"{server}/explore?model={model}&sample={scene}")
    before = tank_probability(page)
    drag_rectangle(page, *region)
    after = tank_probability(page)
    hidden = float(page.get_attribute("#explore", "data-hidden"))
    x0, y0, x1, y1 = region
    assert hidden == pytest.approx((x1 - x0) * (y1 - y0) / 64**2, abs=0.02)
    if moves:
        assert abs(after - before) > 0.5, (before, after)
    else:
        assert abs(after - before) < 0.05, (before, after)
    # undo brings the original answer back; redo the painted one
    page.click("#undo")
    settled(page)
    assert page.get_attribute("#explore", "data-hidden") == "0"
    assert tank_probability(page) == pytest.approx(before, abs=1e-6)
    page.keyboard.press("Control+y")
    settled(page)
    assert tank_probability(page) == pytest.approx(after, abs=1e-6)
    # invert: only the painted region is left
    page.check("#invert")
    settled(page)
    inverted = float(page.get_attribute("#explore", "data-hidden"))
    assert inverted == pytest.approx(1 - hidden, abs=1e-6)
    if SCREENSHOTS and model == "tanks-fair" and scene == "tank-overcast":
        page.uncheck("#invert")
        settled(page)
        page.screenshot(path=str(Path(SCREENSHOTS) / "web-explore.png"), full_page=True)


def test_the_patch_gives_the_occlusion_maps_value_and_saves_as_a_result(server, page):
    sha = upload_file(server, demo_images("tank-overcast")[0])
    body = {"model": "tanks-fair", "image": sha, "method": "occlusion", "target": 1}
    body["settings"] = {"window": 16, "stride": 16, "baseline": "blur"}
    job = post_json(f"{server}/api/v1/jobs", body)
    page.goto(f"{server}/jobs/{job['id']}")
    page.wait_for_selector(".result")
    page.click("a[href^='/explore?job=']")
    page.wait_for_selector("#explore[data-settled=true] #explore-bars tr[data-index]")
    assert page.input_value("#overlay-select") == job["id"]  # the map beneath the paint
    assert page.locator("#explore-overlay").evaluate(LOADED_WIDTH) == 64
    with urllib.request.urlopen(f"{server}/api/v1/jobs/{job['id']}/result.npy") as response:
        maps = np.load(io.BytesIO(response.read()))
    page.keyboard.press("p")
    page.select_option("#fill", "blur")
    page.fill("#patch-step", "16")
    page.dispatch_event("#patch-step", "change")
    box = page.locator("#explore-paint").bounding_box()
    scale = box["width"] / 64
    page.mouse.move(box["x"] + 22 * scale, box["y"] + 41 * scale)  # within (16, 32)'s window
    settled(page)
    readout = page.locator("#patch-readout")
    assert (readout.get_attribute("data-x"), readout.get_attribute("data-y")) == ("16", "32")
    drop = float(readout.get_attribute("data-drop"))
    assert drop == pytest.approx(float(maps[0, 40, 20]), abs=1e-5)
    assert drop > 0.1  # the tank's window: a real drop, not 0 = 0
    page.focus("#explore-paint")  # the keyboard moves the patch by one step
    page.keyboard.press("ArrowRight")
    settled(page)
    assert readout.get_attribute("data-x") == "32"
    assert float(readout.get_attribute("data-drop")) == pytest.approx(
        float(maps[0, 40, 40]), abs=1e-5
    )
    page.click("#save")
    page.wait_for_url(re.compile(r".*/jobs/[0-9a-f]{32}$"))
    page.wait_for_selector(".result")
    assert "class-probabilities" in page.text_content("h2")
    saved = page.url.rsplit("/", 1)[1]
    with urllib.request.urlopen(f"{server}/api/v1/jobs/{saved}") as response:
        request = json.loads(response.read())["request"]
    assert request["hide"]["boxes"] == [[32, 32, 48, 48]] and request["hide"]["fill"] == "blur"


def test_explore_works_with_a_touch_screen(server, browser):
    context = browser.new_context(viewport={"width": 420, "height": 900}, has_touch=True)
    page = context.new_page()
    page.set_default_timeout(60_000)
    try:
        explore(page, f"{server}/explore?model=tanks-fair&sample=tank-overcast")
        box = page.locator("#explore-paint").bounding_box()
        page.touchscreen.tap(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        settled(page)
        assert float(page.get_attribute("#explore", "data-hidden")) > 0  # a brush dab
        assert box["width"] <= 420  # the page fits a phone's width
    finally:
        context.close()


def test_explore_keeps_one_request_in_flight_while_painting(server, page):
    """A fast brush stroke sends requests one at a time (the latest state next), far
    fewer than pointer moves, and the last one is for the finished stroke."""
    explore(page, f"{server}/explore?model=tanks-fair&sample=tank-overcast")
    open_now, most, sent = [0], [0], []

    def started(request):
        if request.url.endswith("/api/v1/predict"):
            open_now[0] += 1
            most[0] = max(most[0], open_now[0])
            sent.append(request)

    def ended(request):
        if request.url.endswith("/api/v1/predict"):
            open_now[0] -= 1

    page.on("request", started)
    page.on("requestfinished", ended)
    page.on("requestfailed", ended)
    box = page.locator("#explore-paint").bounding_box()
    page.mouse.move(box["x"] + 2, box["y"] + 2)
    page.mouse.down()
    for i in range(80):  # far more pointer moves than answers
        page.mouse.move(box["x"] + 2 + i * 5, box["y"] + 2 + (i % 7) * 20)
    page.mouse.up()
    settled(page)
    assert most[0] == 1 and 1 <= len(sent) < 80
    last = json.loads(sent[-1].post_data)
    painted = float(page.get_attribute("#explore", "data-hidden"))
    assert last["hide"]["png"].startswith("data:image/png;base64,") and painted > 0.05


@contextlib.contextmanager
def saliency_result(tmp_path, browser, folder):
    """A server on the model in ``folder``, and a page on a finished saliency job of the
    overcast tank scene: yields (page, server URL, job)."""
    from web.live import start_server, stop_server

    process, server = start_server(tmp_path / "data", "--model", str(folder))
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(60_000)
    try:
        sha = upload_file(server, demo_images("tank-overcast")[0])
        body = {"model": folder.name, "image": sha, "method": "saliency"}
        job = post_json(f"{server}/api/v1/jobs", body)
        page.goto(f"{server}/jobs/{job['id']}")
        yield page, server, job
    finally:
        context.close()
        stop_server(process)


def test_a_segmentation_result_picks_a_class_or_a_region_to_explain_again(tmp_path, browser):
    pytest.importorskip("transformers")
    from PIL import Image

    from hf_models import save_segformer

    folder = save_segformer(tmp_path / "segformer")
    with saliency_result(tmp_path, browser, folder) as (page, server, job):
        page.wait_for_selector("#segment-picker[data-ready=true]")
        with urllib.request.urlopen(f"{server}/api/v1/jobs/{job['id']}/layers/labels.png") as r:
            pixels = np.asarray(Image.open(io.BytesIO(r.read())))
        box = page.locator("#segment-picker canvas").bounding_box()
        scale = box["width"] / 64
        chosen = int(page.input_value("select.pick-class"))
        others = np.argwhere(pixels != chosen)  # a pixel of another class, if any
        y, x = (int(v) for v in (others[len(others) // 2] if len(others) else (50, 10)))
        page.mouse.click(box["x"] + (x + 0.5) * scale, box["y"] + (y + 0.5) * scale)
        assert page.input_value("select.pick-class") == str(pixels[y, x])
        assert len(others) == 0 or int(pixels[y, x]) != chosen  # the click changed it
        page.mouse.move(box["x"] + 8 * scale, box["y"] + 30 * scale)
        page.mouse.down()
        page.mouse.move(box["x"] + 20 * scale, box["y"] + 40 * scale)
        page.mouse.move(box["x"] + 40 * scale, box["y"] + 50 * scale)
        page.mouse.up()
        assert page.input_value("input.pick-region") == "8,30,40,50"
        page.click(".pick-form button")
        page.wait_for_selector("#run-form")
        assert page.input_value("input[name=region]") == "8,30,40,50"
        page.click("#run")
        page.wait_for_selector(".result")
        assert "the region given" in page.text_content(".segmentation figcaption")


def test_a_detection_result_picks_a_box_to_explain_again(tmp_path, browser):
    pytest.importorskip("transformers")
    from hf_models import save_yolos

    folder = save_yolos(tmp_path / "yolos")
    with saliency_result(tmp_path, browser, folder) as (page, server, job):
        page.wait_for_selector("#detection-picker rect.explained")
        with urllib.request.urlopen(f"{server}/api/v1/jobs/{job['id']}/result.json") as r:
            detections = json.load(r)["extras"]["detections"]
        boxes = [d["box"] for d in detections]

        def smallest_at(x, y):  # what a click there picks
            under = [i for i, (a, b, c, d) in enumerate(boxes) if a <= x <= c and b <= y <= d]
            return min(
                under, key=lambda i: (boxes[i][2] - boxes[i][0]) * (boxes[i][3] - boxes[i][1])
            )

        def centre(i):  # of the part of box i inside the image
            x0, y0, x1, y1 = boxes[i]
            return (max(x0, 0) + min(x1, 64)) / 2, (max(y0, 0) + min(y1, 64)) / 2

        # a detection other than the explained one that a click on its centre picks
        smallest = next(i for i in range(1, len(boxes)) if smallest_at(*centre(i)) == i)
        cx, cy = centre(smallest)
        svg = page.locator("#detection-picker svg").bounding_box()
        scale = svg["width"] / 64
        page.mouse.click(svg["x"] + cx * scale, svg["y"] + cy * scale)
        assert page.input_value("select.pick-detection") == str(smallest)
        assert page.get_attribute(f'rect[data-index="{smallest}"]', "class") == "box picked"
        page.click(".pick-form button")
        page.wait_for_selector("#run-form")
        assert page.input_value("input[name=target]") == str(smallest)
        page.click("#run")
        page.wait_for_selector(f'.result rect.explained[data-index="{smallest}"]')
        assert f"(detection {smallest})" in page.text_content(".tabs")
