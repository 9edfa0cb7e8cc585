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
