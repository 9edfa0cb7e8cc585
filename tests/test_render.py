"""Results are written as an overlay PNG, the raw maps and a reproducible JSON summary."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image

import picasso


def test_save_writes_png_npy_json(tmp_path, tiny_model, astronaut_small):
    exp = picasso.explain(
        tiny_model, astronaut_small, method="occlusion", top_k=2, window=8, stride=4
    )
    paths = exp.save(tmp_path, stem="../../evil name")
    assert {p.parent for p in paths.values()} == {tmp_path}  # the stem cannot escape
    assert paths["png"].name == "evil_name.occlusion.png"
    with Image.open(paths["png"]) as png:
        assert png.format == "PNG" and png.width > 2 * png.height * 0.9  # two panels
    maps = np.load(paths["npy"])
    assert maps.shape == (2, 24, 32) and maps.dtype == np.float32
    np.testing.assert_array_equal(maps, exp.attributions)
    summary = json.loads(paths["json"].read_text())
    assert summary["method"] == "occlusion"
    assert summary["settings"] == {
        "batch_size": 32,
        "window": 8,
        "stride": 4,
        "baseline": 0.0,
        "score": "probability",
    }
    assert summary["model"]["sha256"] == tiny_model.info.sha256
    assert [t["index"] for t in summary["targets"]] == [t.index for t in exp.targets]
    assert summary["targets"][0]["label"] in {"a", "b", "c", "d"}
    assert summary["picasso_version"] == picasso.__version__
    assert summary["timings"]["total_s"] > 0
    assert summary["files"] == {k: p.name for k, p in paths.items()}


def test_reproducible_from_the_summary(tmp_path, tiny_model, astronaut_small):
    first = picasso.explain(
        tiny_model, astronaut_small, method="occlusion", window=6, stride=3, baseline="mean"
    )
    summary = json.loads(first.save(tmp_path)["json"].read_text())
    again = picasso.explain(
        tiny_model,
        astronaut_small,
        method=summary["method"],
        target=[t["index"] for t in summary["targets"]],
        **summary["settings"],
    )
    np.testing.assert_array_equal(again.attributions, first.attributions)


def test_probabilities_render_as_a_chart(tmp_path, tiny_model, astronaut_small):
    exp = picasso.explain(tiny_model, astronaut_small, method="class-probabilities", classes=3)
    paths = exp.save(tmp_path)
    assert Image.open(paths["png"]).size[0] > 0
    assert [c["label"] for c in json.loads(paths["json"].read_text())["extras"]["classes"]] == [
        c["label"] for c in exp.extras["classes"]
    ]
