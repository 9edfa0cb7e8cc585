"""RISE: forward passes only, so every framework gives the same map; a known answer."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import picasso
from picasso.core.errors import SettingsError
from picasso.demo import demo_images
from picasso.visualizations.rise import RISE, random_masks


class LeftHalf(torch.nn.Module):
    """Class 1's logit grows with the mean brightness of the left half; class 0's is 0."""

    def forward(self, x):
        left = x[:, :, :, : x.shape[3] // 2].mean(dim=(1, 2, 3))
        return torch.stack([torch.zeros_like(left), 8 * (left - 0.5)], dim=1)


def test_rise_finds_the_region_the_model_reads():
    model = picasso.from_torch(LeftHalf(), input_size=(32, 32), mean=(0, 0, 0), std=(1, 1, 1))
    image = np.full((32, 32, 3), 255, np.uint8)
    exp = picasso.explain(model, image, method="rise", target=1, masks=1000, grid=4)
    left, right = exp.attribution[:, :16].mean(), exp.attribution[:, 16:].mean()
    assert left > right + 0.03  # measured: 0.58 vs 0.52


def test_masks_are_smooth_and_keep_the_right_share():
    masks = random_masks(np.random.default_rng(0), 200, 5, 0.3, 40, 30)
    assert masks.shape == (200, 40, 30) and masks.min() >= 0 and masks.max() <= 1
    assert masks.mean() == pytest.approx(0.3, abs=0.03)
    assert np.abs(np.diff(masks, axis=2)).max() < 0.5  # no hard edges


def test_same_map_from_every_framework():
    image = demo_images("tank-overcast")[0]
    maps = [
        picasso.explain(
            f"demo:tanks-fair{suffix}", image, method="rise", target=1, masks=64, grid=4
        ).attribution
        for suffix in ("", "-onnx", "-tensorflow")
    ]
    np.testing.assert_allclose(maps[1], maps[0], atol=1e-4)
    np.testing.assert_allclose(maps[2], maps[0], atol=1e-4)


def test_reproducible_and_batched(tiny_model, astronaut_small):
    seen = []
    a = picasso.explain(
        tiny_model,
        astronaut_small,
        method="rise",
        masks=50,
        batch_size=7,
        progress=lambda d, t: seen.append((d, t)),
    )
    b = picasso.explain(tiny_model, astronaut_small, method="rise", masks=50, batch_size=50)
    np.testing.assert_allclose(a.attributions, b.attributions, rtol=1e-5)
    assert seen[-1] == (50, 50) and len(seen) == 1 + 8


@pytest.mark.parametrize("settings", [{"keep": 1.0}, {"grid": 1}, {"masks": 0}])
def test_bad_settings(settings):
    with pytest.raises(SettingsError):
        RISE.parse_settings(settings)


class Constant(torch.nn.Module):
    """Class probabilities (0.25, 0.75) whatever the input."""

    def forward(self, x):
        logits = torch.tensor([0.0, float(np.log(3.0))], dtype=x.dtype)
        return logits.expand(len(x), 2)


def test_a_constant_score_gives_a_constant_map_equal_to_it():
    """E[score * mask] / keep = score * E[mask] / keep = score: RISE normalises by the
    number of masks times the keep rate (dividing by the masks alone halves the map)."""
    model = picasso.from_torch(Constant(), input_size=(16, 16))
    image = np.full((16, 16, 3), 128, np.uint8)
    exp = picasso.explain(model, image, method="rise", target=1, masks=3000, grid=4, keep=0.5)
    assert exp.attribution.mean() == pytest.approx(0.75, abs=0.01)
    np.testing.assert_allclose(exp.attribution, 0.75, atol=0.06)  # noise of 3000 masks


class RegionMean(torch.nn.Module):
    """Probability of class 1 = mean of the (masked) input over rows 0-3, columns 8-11."""

    def forward(self, x):
        score = x[:, 0, 0:4, 8:12].mean(dim=(1, 2))
        return torch.stack([1 - score, score], dim=1)


def test_a_region_mean_model_peaks_on_its_region_with_the_known_value():
    model = picasso.from_torch(RegionMean(), input_size=(16, 16), output="probabilities")
    image = np.full((16, 16, 3), 255, np.uint8)  # all ones: the score is the masks' mean
    settings = {"masks": 500, "grid": 4, "keep": 0.5, "seed": 3, "error": 0}
    exp = picasso.explain(model, image, method="rise", target=1, estimator="paper", **settings)
    # Independent computation of the RISE estimate from the same masks:
    # sum_n score_n * mask_n / (N * keep), score_n = mean of mask_n over the region.
    masks = random_masks(np.random.default_rng(3), 500, 4, 0.5, 16, 16).astype(np.float64)
    scores = masks[:, 0:4, 8:12].mean(axis=(1, 2))
    expected = np.einsum("n,nhw->hw", scores, masks) / (500 * 0.5)
    np.testing.assert_allclose(exp.attribution, expected, rtol=1e-5, atol=1e-6)
    # ... and the control-variate estimate: mean score + sum (s_n - mean) mask_n / (N keep)
    default = picasso.explain(model, image, method="rise", target=1, **settings)
    centred = scores.mean() + np.einsum("n,nhw->hw", scores - scores.mean(), masks) / 250
    np.testing.assert_allclose(default.attribution, centred, rtol=1e-5, atol=1e-6)
    inside, outside = exp.attribution[0:4, 8:12].mean(), exp.attribution[8:, :4].mean()
    assert inside > outside + 0.05  # the map peaks where the model reads


def test_masks_are_shifted_randomly_so_every_pixel_varies_alike():
    """Without the random shift the cell grid stays put: pixels at cell centres vary
    far more than pixels between cells (measured: interior max/min variance 3.3,
    coefficient of variation 0.37). The shift evens it out (1.4 and 0.15)."""
    masks = random_masks(np.random.default_rng(1), 4000, 4, 0.5, 32, 32)
    variance = masks.var(axis=0)
    interior = variance[8:24, 8:24]
    assert interior.max() / interior.min() < 2.0
    assert variance.std() / variance.mean() < 0.25
    assert masks.mean(axis=0).min() == pytest.approx(0.5, abs=0.05)
    assert masks.mean(axis=0).max() == pytest.approx(0.5, abs=0.05)


def test_the_control_variate_removes_the_masks_own_noise():
    """A constant score: the paper's estimate is the score times the masks' mean over
    keep (noisy); the control-variate estimate is the score exactly."""
    model = picasso.from_torch(Constant(), input_size=(16, 16))
    image = np.full((16, 16, 3), 128, np.uint8)
    settings = {"masks": 200, "grid": 4, "error": 0}
    paper = picasso.explain(model, image, "rise", target=1, estimator="paper", **settings)
    centred = picasso.explain(model, image, "rise", target=1, **settings)
    assert paper.attribution.std() > 0.01
    np.testing.assert_allclose(centred.attribution, 0.75, atol=1e-6)


def test_sampling_stops_when_the_map_has_converged_and_says_so():
    model = picasso.from_torch(RegionMean(), input_size=(16, 16), output="probabilities")
    image = np.full((16, 16, 3), 255, np.uint8)
    settings = {"grid": 4, "keep": 0.5, "seed": 1}
    early = picasso.explain(model, image, "rise", target=1, masks=4000, **settings)
    used = early.extras["masks_used"]
    assert early.extras["converged"] and 200 <= used < 4000 and used % 100 == 0
    assert early.extras["error"] <= 0.7 and "checked every 100 masks" in early.extras["criterion"]
    batched = picasso.explain(model, image, "rise", target=1, masks=4000, batch_size=7, **settings)
    np.testing.assert_allclose(batched.attribution, early.attribution, rtol=1e-6)
    everything = picasso.explain(model, image, "rise", target=1, masks=300, error=0, **settings)
    assert everything.extras["masks_used"] == 300 and not everything.extras["converged"]
    # the reported error is honest: the distance to a far better estimate is of its size
    reference = picasso.explain(
        model, image, "rise", target=1, masks=20000, error=0, grid=4, seed=9
    )
    spread = early.attribution.std()
    actual = np.abs(early.attribution - reference.attribution).mean() / spread
    assert 0.3 < actual / early.extras["error"] < 2.0, (actual, early.extras["error"])
