"""Results are written as an overlay PNG, the raw maps and a reproducible JSON summary."""

from __future__ import annotations

import json

import numpy as np
import pytest
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
        "mode": "exact",
        "budget": 0.2,
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

    from picasso.render import DIVERGING, SEQUENTIAL, Display, color_limits, save_layers

    values = np.array([[-1.0, 0.0], [3.0, 1.5]], np.float32)
    assert color_limits(values, signed=True) == (-3.0, 3.0)
    assert color_limits(values, signed=False) == (-1.0, 3.0)
    exp = signed_explanation(values)
    whole = Display(percentile=100)
    assert exp.summary(whole)["maps"][0]["limits"] == [-3.0, 3.0]
    with Image.open(save_layers(exp, tmp_path, display=whole)["map-0"]) as png:
        alpha = np.asarray(png)[:, :, 3]
        pixels = np.asarray(png.convert("RGB")).astype(int)
    assert alpha[0, 1] == 0 and alpha[1, 0] == 255  # zero leaves the photo as it is
    cmap = colormaps[DIVERGING]

    def colour(fraction: float) -> np.ndarray:
        return (np.asarray(cmap(fraction)[:3]) * 255).astype(int)

    np.testing.assert_allclose(pixels[0, 1], colour(0.5), atol=1)  # zero: the centre
    np.testing.assert_allclose(pixels[1, 0], colour(1.0), atol=1)  # the largest value
    np.testing.assert_allclose(pixels[0, 0], colour(1 / 3), atol=1)  # -1 of (-3, 3)
    magnitudes = signed_explanation(np.abs(values), signed=False)
    with Image.open(save_layers(magnitudes, tmp_path / "m", display=whole)["map-0"]) as png:
        pixels = np.asarray(png.convert("RGB")).astype(int)
    lowest = (np.asarray(colormaps[SEQUENTIAL](0.0)[:3]) * 255).astype(int)
    np.testing.assert_allclose(pixels[0, 1], lowest, atol=1)  # magnitudes: own range


def test_the_default_scale_is_robust_to_a_few_extreme_pixels(tmp_path):
    """Integrated Gradients and saliency have a few huge pixels: the colour scale ends
    at the 99.5th percentile of |map| by default, so the rest stays visible."""
    from picasso.render import Display

    values = np.full((40, 40), 0.1, np.float32)
    values[0, 0] = 50.0  # one pixel of 1,600
    exp = signed_explanation(values)
    limits = exp.summary()["maps"][0]["limits"]
    assert limits == pytest.approx([-0.1, 0.1], rel=1e-6)  # not 50: the outlier is cut
    assert exp.summary(Display(percentile=100))["maps"][0]["limits"] == [-50.0, 50.0]
    summary = exp.summary()
    assert summary["display"] == {"percentile": 99.5, "colormap": None, "sign": "auto"}
    positive = exp.summary(Display(sign="negative"))["maps"][0]["limits"]
    assert positive[1] > 0  # negative evidence drawn as magnitudes from zero


def test_display_options_are_checked():
    from picasso.core.errors import SettingsError
    from picasso.render import Display

    for bad in ({"percentile": 10}, {"colormap": "no-such-map"}, {"sign": "sideways"}):
        with pytest.raises(SettingsError):
            Display(**bad)


def test_the_colour_bar_names_the_methods_quantity(tmp_path, tiny_model, astronaut_small):
    exp = picasso.explain(tiny_model, astronaut_small, method="saliency")
    assert exp.quantity == "|d logit / d pixel|"
    summary = json.loads(exp.save(tmp_path)["json"].read_text())
    assert summary["quantity"] == "|d logit / d pixel|"


def test_full_size_overlays_place_the_map_where_the_model_looked():
    """Centre-cropped: the map covers the middle of the original image; the strips the
    model never saw are the original pixels."""
    from picasso.core.preprocessing import Preprocessing
    from picasso.render import Display, full_size_overlay

    crop = Preprocessing(input_size=(10, 10), resize="center-crop")
    assert crop.region((40, 20)) == (10.0, 0.0, 30.0, 20.0)
    assert Preprocessing(input_size=(10, 10)).region((40, 20)) == (0.0, 0.0, 40.0, 20.0)
    exp = signed_explanation(np.ones((10, 10), np.float32))
    original = Image.new("RGB", (40, 20), (10, 20, 30))
    out = np.asarray(full_size_overlay(exp, original, crop.region((40, 20)), display=Display()))
    assert out.shape == (20, 40, 3)
    np.testing.assert_array_equal(out[:, :10], 0 * out[:, :10] + [10, 20, 30])  # unseen
    np.testing.assert_array_equal(out[:, 30:], 0 * out[:, 30:] + [10, 20, 30])
    assert (out[:, 12:28] != [10, 20, 30]).any()  # the map is drawn where the model looked
