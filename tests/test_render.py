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
    with Image.open(paths["png"]) as png:  # figsize 7.5 x 3.6 inches at 100 dpi
        assert png.size == (750, 360)
    assert [c["label"] for c in json.loads(paths["json"].read_text())["extras"]["classes"]] == [
        c["label"] for c in exp.extras["classes"]
    ]


def signed_explanation(values: np.ndarray, signed: bool = True) -> picasso.Explanation:
    image = np.zeros((*values.shape, 3), np.uint8)
    target = picasso.Target(0, "a", 1.0)
    return picasso.Explanation(values[None], [target], image, "occlusion", {}, {}, signed=signed)


def test_signed_maps_use_a_range_symmetric_around_zero(tmp_path):
    """Zero is the diverging colormap's centre (white: no effect), however lopsided the
    map; the range recorded in the JSON is the one drawn."""
    from matplotlib import colormaps

    from picasso.render import DIVERGING, SEQUENTIAL, color_limits, save_layers

    values = np.array([[-1.0, 0.0], [3.0, 1.5]], np.float32)
    assert color_limits(values, signed=True) == (-3.0, 3.0)
    assert color_limits(values, signed=False) == (-1.0, 3.0)
    exp = signed_explanation(values)
    assert exp.summary()["maps"][0]["limits"] == [-3.0, 3.0]
    with Image.open(save_layers(exp, tmp_path)["map-0"]) as png:
        pixels = np.asarray(png.convert("RGB")).astype(int)
    cmap = colormaps[DIVERGING]

    def colour(fraction: float) -> np.ndarray:
        return (np.asarray(cmap(fraction)[:3]) * 255).astype(int)

    np.testing.assert_allclose(pixels[0, 1], colour(0.5), atol=1)  # zero: the centre
    np.testing.assert_allclose(pixels[1, 0], colour(1.0), atol=1)  # the largest value
    np.testing.assert_allclose(pixels[0, 0], colour(1 / 3), atol=1)  # -1 of (-3, 3)
    magnitudes = signed_explanation(np.abs(values), signed=False)
    with Image.open(save_layers(magnitudes, tmp_path / "m")["map-0"]) as png:
        pixels = np.asarray(png.convert("RGB")).astype(int)
    lowest = (np.asarray(colormaps[SEQUENTIAL](0.0)[:3]) * 255).astype(int)
    np.testing.assert_allclose(pixels[0, 1], lowest, atol=1)  # magnitudes: own range
