"""The numeric helpers methods share, against independent implementations."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from picasso.visualizations.imaging import baseline_fill, gaussian_blur


@pytest.mark.parametrize("window", [2, 5, 8, 16])
def test_blur_fill_is_a_gaussian_with_sigma_half_the_window(window):
    """The documented blur: sigma = window / 2 (at least 1), truncated at 3 sigma,
    mirrored edges; scipy's gaussian_filter computes the same."""
    image = np.random.default_rng(window).normal(size=(3, 40, 50)).astype(np.float32)
    sigma = max(1.0, window / 2)
    expected = ndimage.gaussian_filter(
        image.astype(np.float64), sigma=(0, sigma, sigma), mode="mirror", radius=int(3 * sigma)
    )
    np.testing.assert_allclose(baseline_fill(image, "blur", window), expected, atol=1e-5)


def test_blur_of_a_constant_image_is_the_constant():
    image = np.full((1, 9, 7), 0.25, np.float32)
    np.testing.assert_allclose(gaussian_blur(image, 3.0), 0.25, atol=1e-6)


def test_value_and_mean_fills():
    image = np.arange(2 * 6 * 8, dtype=np.float32).reshape(2, 6, 8)
    assert baseline_fill(image, 0.5, 4) == 0.5
    mean = baseline_fill(image, "mean", 4)
    np.testing.assert_allclose(
        mean, np.broadcast_to(image.mean(axis=(1, 2))[:, None, None], mean.shape)
    )
