"""Dataset audits: maps equal to explain()'s, metrics and strategies with known answers,
the tank story at dataset scale, resuming, and bad input."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import picasso
from picasso.audits import DatasetError, load_audit
from picasso.audits.metrics import in_box, object_region, pointing
from picasso.audits.strategies import cluster, describe
from picasso.core.errors import Cancelled
from picasso.core.preprocessing import Preprocessing
from picasso.core.progress import Progress
from picasso.demo.tanks import make_dataset


@pytest.fixture(scope="module")
def scenes():
    """Fresh scenes (not the bundled dataset's seed): weather independent of the class."""
    return make_dataset(40, seed=2024, bias=0.5)


@pytest.fixture(scope="module")
def fair():
    return picasso.load_model("demo:tanks-fair")


@pytest.mark.parametrize(
    ("method", "settings"),
    [
        ("saliency", {}),
        ("grad-cam", {}),
        ("occlusion", {"window": 16, "stride": 16}),  # the default, image-by-image path
    ],
)
def test_audit_maps_equal_explain_maps(fair, scenes, tmp_path, method, settings):
    images = [s.image for s in scenes[:6]]
    labels = [s.label for s in scenes[:6]]
    audit = picasso.audit(
        fair, images, method=method, labels=labels, out=tmp_path, batch_size=4, **settings
    )
    assert list(audit.table["target"]) == [fair.info.labels[label] for label in labels]
    for i, image in enumerate(images):
        single = picasso.explain(fair, image, method=method, target=labels[i], **settings)
        scale = float(np.abs(single.attribution).max()) or 1.0
        np.testing.assert_allclose(audit.maps[i], single.attribution, atol=1e-5 * scale, rtol=0)
        assert audit.table["probability"][i] == pytest.approx(single.top[0].probability, abs=1e-6)


def test_in_box_and_pointing_on_known_maps():
    region = np.zeros((10, 10), bool)
    region[2:4, 3:8] = True  # 10 of 100 pixels
    inside = np.where(region, 1.0, 0.0)
    assert in_box(inside, region) == 1.0 and pointing(inside, region) is True
    assert in_box(np.ones((10, 10)), region) == pytest.approx(0.1)
    signed = np.where(region, -3.0, 1.0)  # absolute mass: 30 inside, 90 outside
    assert in_box(signed, region) == pytest.approx(30 / 120) and pointing(signed, region)
    peak_outside = np.ones((10, 10))
    peak_outside[9, 9] = 5.0
    assert pointing(peak_outside, region) is False
    assert math.isnan(in_box(inside, None)) and pointing(inside, None) is None


def test_boxes_follow_the_preprocessing():
    """A box in the image's own pixels lands where resizing and cropping put it."""
    stretch = Preprocessing(input_size=(10, 20))
    region = object_region((40, 20), (0, 0, 20, 10), None, stretch)  # the top-left quarter
    assert region.shape == (10, 20)
    np.testing.assert_array_equal(region[:5, :10], True)
    assert not region[5:].any() and not region[:, 10:].any()
    crop = Preprocessing(input_size=(10, 10), resize="center-crop")
    # 40 x 20 -> 20 x 10, then the middle 10 columns: image columns 10..30 stay
    region = object_region((40, 20), (0, 0, 10, 20), None, crop)  # the left quarter
    assert not region.any()  # cropped away
    region = object_region((40, 20), (10, 0, 30, 20), None, crop)  # exactly what stays
    assert region.all()
    mask = np.zeros((20, 40), bool)
    mask[:, 20:] = True  # the right half of the image
    region = object_region((40, 20), None, mask, crop)
    np.testing.assert_array_equal(region[:, 5:], True)
    assert not region[:, :5].any()


def blob_maps(rng, count, where, size=32):
    maps = rng.random((count, size, size)).astype(np.float32) * 0.05
    for m in maps:
        y, x = where
        jitter = rng.integers(-2, 3, 2)
        m[y + jitter[0] : y + jitter[0] + 6, x + jitter[1] : x + jitter[1] + 6] += 1.0
    return maps


def test_strategies_separate_two_known_groups():
    rng = np.random.default_rng(0)
    maps = np.concatenate([blob_maps(rng, 20, (2, 2)), blob_maps(rng, 12, (22, 22))])
    labels, info = cluster(maps)
    assert info["clusters"] == 2
    assert set(labels[:20]) == {0} and set(labels[20:]) == {1}  # pure, largest first
    one, info = cluster(blob_maps(rng, 20, (10, 10)))
    assert info["clusters"] == 1 and set(one) == {0}


def test_fixed_place_and_outside_object_are_flagged_in_words():
    rng = np.random.default_rng(1)
    top = np.zeros((10, 32, 32), np.float32)
    top[:, :8, :] = 1.0 + rng.random((10, 8, 32))  # all mass in the top quarter
    nan = np.full(10, np.nan)
    strategy = describe("tank", 0, list(range(10)), 25, top, np.ones(10), nan, nan)
    assert strategy.flags == ["fixed-place"] and strategy.band == "top"
    assert strategy.description.startswith("40% of *tank* images are explained by the top 30%")
    box_share = np.full(10, 0.1)
    outside = describe(
        "tank", 0, list(range(10)), 10, top, np.ones(10), np.full(10, 0.05), box_share
    )
    assert "outside-object" in outside.flags and "5% of the maps' mass" in outside.description
    on_object = describe(
        "tank", 0, list(range(10)), 10, top, np.ones(10), np.full(10, 0.5), box_share
    )
    assert on_object.flags == []  # evidence on the object is not a fixed place


def test_the_biased_model_is_flagged_and_the_fair_one_cleared(scenes, tmp_path):
    """The tank story at dataset scale, on scenes the models never saw."""
    images = [s.image for s in scenes]
    labels = [s.label for s in scenes]
    boxes = [s.box for s in scenes]
    results = {}
    for name in ("tanks-biased", "tanks-fair"):
        results[name] = picasso.audit(
            f"demo:{name}",
            images,
            method="saliency",
            labels=labels,
            boxes=boxes,
            out=tmp_path / name,
        )
    biased, fair = results["tanks-biased"], results["tanks-fair"]
    tanks_b = biased.classes.set_index("class").loc["tank"]
    tanks_f = fair.classes.set_index("class").loc["tank"]
    assert tanks_f["mean_in_box"] > 3 * tanks_b["mean_in_box"]  # measured: 0.38 vs 0.08
    flagged = [s for s in biased.flagged if s.label == "tank"]
    assert sum(len(s.rows) for s in flagged) >= 0.8 * tanks_b["images"]
    assert all("outside-object" in s.flags for s in flagged)
    assert fair.flagged == []
    report = (tmp_path / "tanks-biased" / "report.html").read_text()
    assert "their evidence lies outside the object" in report and "Look here first" in report
    assert "No strategy flagged" in (tmp_path / "tanks-fair" / "report.html").read_text()


def test_an_interrupted_audit_resumes_without_recomputing(fair, scenes, tmp_path):
    images = [s.image for s in scenes[:12]]
    seen: list[int] = []

    def stop_after_first_batch(done, total):
        seen.append(done)
        if done >= 4:
            progress.cancel()

    progress = Progress(stop_after_first_batch)
    with pytest.raises(Cancelled):
        picasso.audit(
            fair, images, method="saliency", out=tmp_path, batch_size=4, progress=progress
        )
    lines = (tmp_path / "rows.jsonl").read_text().splitlines()
    assert len(lines) == 4  # the first batch is on disk
    again: list[int] = []
    audit = picasso.audit(
        fair,
        images,
        method="saliency",
        out=tmp_path,
        batch_size=4,
        progress=lambda d, t: again.append(d),
    )
    assert again[0] == 4 and again[-1] == 12  # started where it stopped
    assert len((tmp_path / "rows.jsonl").read_text().splitlines()) == 12  # nothing twice
    whole = picasso.audit(fair, images, method="saliency", out=tmp_path / "whole")
    np.testing.assert_array_equal(np.asarray(audit.maps), np.asarray(whole.maps))
    with pytest.raises(picasso.PicassoError, match="holds another audit"):
        picasso.audit(fair, images, method="grad-cam", out=tmp_path)


def test_bad_rows_are_recorded_and_the_audit_goes_on(fair, scenes, tmp_path):
    folder = tmp_path / "data"
    (folder / "tank").mkdir(parents=True)
    (folder / "forest").mkdir()
    for i, scene in enumerate(scenes[:6]):
        Image.fromarray(scene.image).save(folder / fair.info.labels[scene.label] / f"{i}.png")
    (folder / "tank" / "notes.png").write_text("not an image")
    audit = picasso.audit(fair, folder, method="saliency", out=tmp_path / "out")
    assert len(audit.table) == 7
    bad = audit.table.set_index("image").loc["tank/notes.png"]
    assert "not a readable image" in bad["error"] and bad["cluster"] == -1
    assert np.isnan(audit.maps[list(audit.table["image"]).index("tank/notes.png")]).all()
    good = audit.table[audit.table["error"].isna()]
    assert list(good["label"]) == [name.split("/")[0] for name in good["image"]]  # folders
    assert len(good) == 6 and good["correct"].all()
    # a box outside its image is that row's error
    boxes = [(0, 0, 10, 10), (50, 50, 70, 70)]
    audit = picasso.audit(
        fair, [s.image for s in scenes[:2]], method="saliency", boxes=boxes, out=tmp_path / "boxes"
    )
    assert pd.isna(audit.table["error"][0])
    assert "outside the 64x64 image" in audit.table["error"][1]


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"images": "/nonexistent/folder"}, "no such folder"),
        ({"labels": ["tank", "zebra"]}, "'zebra' is not a class"),
        ({"boxes": [(0, 0, 1, 1)]}, "1 boxes for 2 images"),
        ({"boxes": [(5, 5, 1, 1), None]}, "is empty"),
    ],
)
def test_bad_datasets_are_refused_before_work(fair, scenes, tmp_path, kwargs, fragment):
    arguments = {"images": [s.image for s in scenes[:2]], **kwargs}
    with pytest.raises(DatasetError, match=fragment):
        picasso.audit(fair, method="saliency", out=tmp_path, **arguments)


def test_class_folders_must_be_classes(fair, scenes, tmp_path):
    for name in ("tank", "zebra"):
        (tmp_path / name).mkdir()
        Image.fromarray(scenes[0].image).save(tmp_path / name / "a.png")
    with pytest.raises(DatasetError, match="sub-folders zebra are not classes"):
        picasso.audit(fair, tmp_path, method="saliency", out=tmp_path / "out")


def test_saved_audits_read_back(fair, scenes, tmp_path):
    audit = picasso.audit(
        fair,
        [s.image for s in scenes[:8]],
        method="saliency",
        labels=[s.label for s in scenes[:8]],
        out=tmp_path,
    )
    back = load_audit(tmp_path)
    assert back.table.equals(audit.table)
    assert [s.summary() for s in back.strategies] == [s.summary() for s in audit.strategies]
    assert pd.read_parquet(tmp_path / "audit.parquet").shape == audit.table.shape
    assert list(pd.read_csv(tmp_path / "classes.csv")["class"]) == ["forest", "tank"]


def run_cli(*args):
    from click.testing import CliRunner

    from picasso.cli import build_cli
    from picasso.plugins import discover

    return CliRunner().invoke(build_cli(discover(plugin_dirs=[])), list(args))


def test_the_cli_audits_a_folder_with_a_box_file(scenes, tmp_path):
    data = tmp_path / "data"
    rows = []
    for i, scene in enumerate(scenes[:10]):
        folder = data / ("tank" if scene.label else "forest")
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(scene.image).save(folder / f"{i}.png")
        if scene.box:
            x0, y0, x1, y1 = scene.box
            rows.append({"image": f"tank/{i}.png", "x0": x0, "y0": y0, "x1": x1, "y1": y1})
    pd.DataFrame(rows).to_csv(tmp_path / "boxes.csv", index=False)
    out = tmp_path / "out"
    result = run_cli(
        "audit",
        str(data),
        "-m",
        "demo:tanks-fair",
        "--method",
        "saliency",
        "--boxes",
        str(tmp_path / "boxes.csv"),
        "-o",
        str(out),
    )
    assert result.exit_code == 0, result.output
    assert "no strategy flagged" in result.output and "report.html" in result.output
    table = pd.read_parquet(out / "audit.parquet")
    assert table["in_box"].notna().sum() == len(rows)  # every tank has its box
    assert (table["label"] == [name.split("/")[0] for name in table["image"]]).all()
    bad = run_cli(
        "audit",
        str(data),
        "--boxes",
        str(tmp_path / "boxes.csv"),
        "-o",
        str(out),
        "--method",
        "magic",
    )
    assert bad.exit_code == 1 and "unknown method 'magic'" in bad.output


def test_a_killed_cli_audit_continues_where_it_stopped(tmp_path):
    """kill -9 in the middle, then the same command: nothing lost, nothing twice."""
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "out"
    command = [
        sys.executable,
        "-m",
        "picasso",
        "audit",
        "demo:tanks-dataset",
        "-m",
        "demo:tanks-fair",
        "--method",
        "occlusion",
        "--window",
        "4",
        "--stride",
        "4",
        "--images-per-step",
        "4",
        "-o",
        str(out),
        "-q",
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    rows = out / "rows.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if rows.is_file() and len(rows.read_text().splitlines()) >= 8:
            break
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    done_before = len(rows.read_text().splitlines())
    assert 8 <= done_before < 120
    finished = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert finished.returncode == 0, finished.stdout + finished.stderr
    lines = rows.read_text().splitlines()
    import json

    assert sorted(json.loads(line)["row"] for line in lines) == list(range(120))
    maps = np.load(out / "maps.npy")
    assert not np.isnan(maps).any()
