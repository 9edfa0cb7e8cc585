"""Approximate occlusion: adaptive refinement where the map changes, interpolation
elsewhere, and an error estimate that is honest (close to the actual error on average).
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from scipy.stats import spearmanr

import picasso
from picasso.core.errors import SettingsError
from picasso.demo import demo_images
from picasso.visualizations.occlusion_approx import approximate


def grid_function(values: np.ndarray):
    """A ``compute`` that looks up window values (rows, columns) and counts calls."""
    calls: list[tuple[int, int]] = []

    def compute(indices):
        calls.extend(indices)
        return np.array([[values[r, c]] for r, c in indices])

    return compute, calls


def test_a_bilinear_map_is_interpolated_exactly():
    rows, columns = np.mgrid[0:25, 0:31]
    values = 2.0 * rows - 3.0 * columns + 0.5 * rows * columns / 10
    compute, calls = grid_function(values)
    found = approximate(compute, 25, 31, 1, budget=0.2, holdout=0.1, batch_size=8)
    # bilinear within every cell: exact wherever the cells' corners are known
    np.testing.assert_allclose(found.values[..., 0], values, atol=1e-9)
    assert found.error == pytest.approx(0.0, abs=1e-12) and found.checked >= 16
    assert len(set(calls)) == len(calls) <= round(0.2 * 25 * 31)  # each window once


def test_refinement_follows_the_edges():
    """A disc of 1s on 0s: the computed windows gather along its boundary."""
    rows, columns = np.mgrid[0:40, 0:40]
    distance = np.hypot(rows - 20, columns - 17)
    values = (distance < 9).astype(float)
    compute, _ = grid_function(values)
    found = approximate(compute, 40, 40, 1, budget=0.25, holdout=0.1, batch_size=16)
    near = np.abs(distance - 9) < 2.5
    computed = found.computed
    assert computed[near].mean() > 3 * computed[~near].mean()
    wrong = np.abs(found.values[..., 0] - values) > 0.25
    assert wrong.mean() < 0.03  # the disc is recovered nearly everywhere


def test_the_error_estimate_is_honest_on_average():
    """Over random smooth maps with edges, the estimated RMS error of the window values
    is close to the actual one (their mean squares within a factor of two)."""
    rng = np.random.default_rng(0)
    estimated, actual = [], []
    for trial in range(24):
        rows, columns = np.mgrid[0:27, 0:27]
        field = np.zeros((27, 27))
        for _ in range(6):  # bumps of random place, size and sign
            cy, cx, width = rng.uniform(0, 27), rng.uniform(0, 27), rng.uniform(1.5, 6)
            field += rng.normal() * np.exp(-((rows - cy) ** 2 + (columns - cx) ** 2) / width**2)
        compute, _ = grid_function(field)
        found = approximate(compute, 27, 27, 1, budget=0.2, holdout=0.1, batch_size=32, seed=trial)
        estimated.append(found.rms[0] ** 2)
        actual.append(((found.values[..., 0] - field) ** 2).mean())
    ratio = np.mean(estimated) / np.mean(actual)
    assert 0.5 < ratio < 2.0, ratio
    assert np.mean(actual) > 0  # the maps were not all interpolated exactly


def test_approximate_maps_rank_regions_like_the_exact_map():
    model = picasso.load_model("demo:tanks-fair")
    path = demo_images("tank-overcast")[0]
    settings = {"window": 8, "stride": 2}
    exact = picasso.explain(model, path, "occlusion", **settings).attribution
    seen = []
    approx = picasso.explain(
        model,
        path,
        "occlusion",
        mode="approximate",
        budget=0.2,
        progress=lambda done, total: seen.append((done, total)),
        **settings,
    )
    extras = approx.extras
    assert extras["mode"] == "approximate" and extras["windows"] == 841
    assert extras["windows_computed"] <= round(0.2 * 841) + 8  # a batch may overshoot a little
    assert seen[-1][0] == seen[-1][1] and extras["error_sample"] >= 16
    assert 0 <= extras["error"] < 0.5 and extras["criterion"]
    a, b = exact.ravel(), approx.attribution.ravel()
    assert spearmanr(a, b)[0] > 0.9
    top_a, top_b = a >= np.quantile(a, 0.9), b >= np.quantile(b, 0.9)
    assert (top_a & top_b).sum() / (top_a | top_b).sum() > 0.7
    whole = picasso.explain(model, path, "occlusion", mode="approximate", budget=1.0, **settings)
    np.testing.assert_allclose(whole.attribution, exact, atol=1e-6)
    assert whole.extras["error"] == 0.0


def test_bad_budgets_are_refused():
    model = picasso.load_model("demo:tanks-fair")
    path = demo_images("tank-overcast")[0]
    for budget in (0, 1.5):
        with pytest.raises(SettingsError, match="budget"):
            picasso.explain(model, path, "occlusion", mode="approximate", budget=budget)
    with pytest.raises(SettingsError, match="mode"):
        picasso.explain(model, path, "occlusion", mode="fast")


def test_approximate_mode_sends_previews_that_refine_towards_its_map():
    from picasso.core.progress import Progress
    from picasso.visualizations.occlusion import Occlusion

    model = picasso.load_model("demo:tanks-fair")
    batch = model.preprocess([Image.open(demo_images("tank-overcast")[0]).convert("RGB")])
    previews: list[np.ndarray] = []
    progress = Progress(preview=lambda maps: previews.append(maps.copy()), preview_interval=0)
    settings = Occlusion.parse_settings({"mode": "approximate", "window": 8, "stride": 2})
    final = Occlusion().explain(model, batch, [1], settings, progress).maps[0].ravel()
    assert len(previews) >= 3 and all(np.isfinite(p).all() for p in previews)
    agreement = [spearmanr(p[0].ravel(), final)[0] for p in previews]
    assert 0.5 < agreement[0] < agreement[-1], agreement  # the start grid, then refined
