"""Hiding pixels from the model (the explore page's engine): masks from boxes and PNGs,
fills equal to occlusion's, predictions that agree with occlusion maps, errors."""

from __future__ import annotations

import base64
import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image
from pydantic import ValidationError

import picasso
from conftest import FlatNet, seeded
from picasso.core.errors import InvalidImageError, JobError, TargetError
from picasso.demo import demo_images
from picasso.hiding import Hide, boxes_mask, mask_png
from picasso.service import Probe


@pytest.fixture(scope="module")
def fair():
    return picasso.load_model("demo:tanks-fair")


@pytest.fixture(scope="module")
def scene():
    return demo_images("tank-overcast")[0]


@pytest.mark.parametrize("fill", [0.0, "mean", "blur"])
def test_hiding_one_window_gives_occlusions_value_there(fair, scene, fill):
    """Occlusion with stride = window measures one window per pixel: hiding that window
    by hand (same fill) must give exactly the map's value there."""
    window = 16
    exp = picasso.explain(fair, scene, "occlusion", window=window, stride=window, baseline=fill)
    probe = Probe(fair, scene)
    target = exp.targets[0].index
    for y, x in [(0, 0), (16, 32), (48, 48), (32, 0)]:
        hide = Hide(boxes=((x, y, x + window, y + window),), fill=fill, blur_window=window)
        out = probe.predict(hide, target=target)
        assert out["hidden"] == pytest.approx(window * window / 64**2)
        assert out["target"]["drop"] == pytest.approx(
            float(exp.attributions[0, y + 3, x + 5]), abs=1e-5
        )
    # the windows differ, so the equality above is not of one repeated number
    assert np.ptp(exp.attributions[0]) > 0.01


def test_fills_replace_only_the_hidden_pixels(fair, scene):
    batch = fair.preprocess([picasso.core.images.load_image(scene).image])
    mask = boxes_mask([(2, 3, 10, 7)], (64, 64))
    for fill in (1.5, "mean", "blur"):
        hidden = Hide(boxes=((2, 3, 10, 7),), fill=fill).apply(batch, mask)
        np.testing.assert_array_equal(hidden[:, :, ~mask], batch[:, :, ~mask])
        assert not np.allclose(hidden[:, :, mask], batch[:, :, mask])
    hidden = Hide(boxes=((2, 3, 10, 7),), fill=1.5).apply(batch, mask)
    assert (hidden[:, :, mask] == 1.5).all()
    means = batch[0].mean(axis=(1, 2))
    hidden = Hide(boxes=((2, 3, 10, 7),), fill="mean").apply(batch, mask)
    np.testing.assert_allclose(hidden[0][:, mask], np.repeat(means[:, None], mask.sum(), 1))


def test_a_png_mask_equals_its_boxes_and_invert_keeps_only_them(fair, scene):
    image = picasso.core.images.load_image(scene).image
    boxes = ((0, 0, 20, 10), (30, 40, 64, 64))
    by_boxes = Hide(boxes=boxes).mask(fair, image)
    by_png = Hide(png="data:image/png;base64," + mask_png(by_boxes)).mask(fair, image)
    np.testing.assert_array_equal(by_png, by_boxes)
    assert by_boxes.sum() == 20 * 10 + 34 * 24
    np.testing.assert_array_equal(Hide(boxes=boxes, invert=True).mask(fair, image), ~by_boxes)
    # an RGBA mask as a canvas draws it: white where painted, transparent elsewhere
    rgba = np.zeros((64, 64, 4), np.uint8)
    rgba[by_boxes] = 255
    buffer = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buffer, format="PNG")
    png = base64.b64encode(buffer.getvalue()).decode()
    np.testing.assert_array_equal(Hide(png=png).mask(fair, image), by_boxes)


def test_masks_in_image_space_follow_the_models_crop():
    """A centre-cropping model sees the middle of a wide image: a box over the image's
    left third is partly cropped away, and what is left lands at the input's left."""
    model = picasso.from_torch(seeded(FlatNet((16, 16))), input_size=(16, 16), resize="center-crop")
    image = Image.new("RGB", (48, 16))  # scaled 1:1, crop keeps x in [16, 32)
    mask = Hide(boxes=((0, 0, 24, 16),), space="image").mask(model, image)
    expected = np.zeros((16, 16), bool)
    expected[:, :8] = True
    np.testing.assert_array_equal(mask, expected)
    png = mask_png(boxes_mask([(0, 0, 24, 16)], (48, 16)))  # a PNG at the image's size
    np.testing.assert_array_equal(Hide(png=png).mask(model, image), expected)


def test_explain_with_hidden_pixels_matches_the_prediction_and_shows_them(fair, scene):
    hide = Hide(boxes=((16, 24, 48, 56),), fill="blur")
    exp = picasso.explain(fair, scene, "class-probabilities", hide=hide)
    out = Probe(fair, scene).predict(hide, top_k=2)
    by_index = {c["index"]: c["probability"] for c in out["classes"]}
    for c in exp.extras["classes"]:
        assert c["probability"] == pytest.approx(by_index[c["index"]], abs=1e-6)
    assert exp.extras["hidden"] == pytest.approx(32 * 32 / 64**2)
    plain = picasso.explain(fair, scene, "class-probabilities")
    changed = np.any(exp.image != plain.image, axis=2)
    assert changed[24:56, 16:48].mean() > 0.9 and not changed[:24].any()


def test_probe_reports_changes_against_the_original(fair, scene):
    probe = Probe(fair, scene)
    same = probe.predict(None, top_k=2, target=0)
    assert all(c["change"] == 0 for c in same["classes"]) and same["target"]["drop"] == 0
    everything = probe.predict(Hide(boxes=((0, 0, 64, 64),)), top_k=2, target=0)
    assert everything["hidden"] == 1.0
    for c in everything["classes"]:
        assert c["change"] == pytest.approx(c["probability"] - c["original"])
    with pytest.raises(TargetError, match="target 2 is not a class"):
        probe.predict(None, target=2)


@pytest.mark.parametrize(
    ("fields", "fragment"),
    [
        ({}, "exactly one of boxes or png"),
        ({"boxes": [[0, 0, 4, 4]], "png": "AAAA"}, "exactly one of boxes or png"),
        ({"boxes": [[4, 0, 4, 4]]}, "0 <= x0 < x1"),
        ({"boxes": [[-1, 0, 4, 4]]}, "0 <= x0 < x1"),
        ({"boxes": [[0, 0, 4, 4]], "fill": "nan"}, "fill"),
    ],
)
def test_malformed_hides_are_refused(fields, fragment):
    with pytest.raises(ValidationError, match=fragment):
        Hide(**fields)


def _png(size: tuple[int, int], fmt: str = "PNG") -> str:
    buffer = io.BytesIO()
    Image.new("L", size, 255).save(buffer, format=fmt)
    return base64.b64encode(buffer.getvalue()).decode()


def _bomb(width: int, height: int) -> str:
    """A tiny PNG whose header claims ``width`` x ``height`` pixels."""
    data = bytearray(base64.b64decode(_png((1, 1))))
    data[16:24] = struct.pack(">II", width, height)  # IHDR's width and height
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return base64.b64encode(bytes(data)).decode()


@pytest.mark.parametrize(
    ("hide", "fragment"),
    [
        (Hide(boxes=((64, 0, 70, 4),)), "lies outside the 64x64 image"),
        (Hide(png="not base64!"), "not valid base64"),
        (Hide(png=base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 30).decode()), "not a readable"),
        (Hide(png=_png((64, 64), "JPEG")), "must be a PNG, not JPEG"),
        (Hide(png=_png((63, 64))), "it must be 64x64"),
        (Hide(png=_bomb(30000, 30000)), "it must be 64x64"),  # refused before decoding
        (Hide(png=_bomb(64, 64)), "not a readable PNG"),  # the right size, a broken body
    ],
)
def test_bad_masks_get_a_clear_error(fair, scene, hide, fragment):
    image = picasso.core.images.load_image(scene).image
    with pytest.raises(InvalidImageError, match=fragment):
        hide.mask(fair, image)


def test_results_with_hidden_pixels_are_not_sanity_checked(tmp_path, fair, scene):
    from picasso.jobs import JobRunner, JobStore
    from picasso.plugins import discover
    from picasso.requests import ExplainRequest

    runner = JobRunner(JobStore(tmp_path), {"fair": fair}, discover(), workers=1)
    try:
        request = ExplainRequest(method="saliency", hide=Hide(boxes=((0, 0, 8, 8),)))
        job = runner.wait(runner.submit("fair", scene, request).id)
        assert job.status == "done"
        with pytest.raises(JobError, match="hidden pixels are not sanity-checked"):
            runner.sanity_request(job)
    finally:
        runner.shutdown()
        runner.store.close()


@pytest.mark.parametrize("export", ["onnx", "keras", "tensorflow"])
def test_hiding_works_the_same_on_every_framework(fair, scene, export):
    """Hiding needs forward passes only: the exports answer as the PyTorch model does."""
    other = picasso.load_model(f"demo:tanks-fair-{export}")
    hide = {"boxes": [(6, 28, 34, 48)], "fill": "blur"}
    expected = picasso.predict(fair, scene, hide=hide, target=1)["target"]
    got = picasso.predict(other, scene, hide=hide, target=1)["target"]
    assert expected["drop"] > 0.5  # hiding the tank matters to the fair model
    assert got["probability"] == pytest.approx(expected["probability"], abs=1e-4)
    assert got["drop"] == pytest.approx(expected["drop"], abs=1e-4)
