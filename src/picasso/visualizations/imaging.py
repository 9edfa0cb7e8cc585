"""Numeric helpers several methods share: fills for hidden pixels (a value, the image
mean, a Gaussian blur) and bilinear resizing of maps. numpy only."""

from __future__ import annotations

import numpy as np


def gaussian_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur of a (C, H, W) array with reflected edges."""
    radius = max(1, int(3 * sigma))
    xs = np.arange(-radius, radius + 1, dtype=np.float64)
    kernel = np.exp(-0.5 * (xs / sigma) ** 2)
    kernel /= kernel.sum()
    out = image.astype(np.float64)
    for axis in (1, 2):
        pad = [(0, 0)] * 3
        pad[axis] = (radius, radius)
        padded = np.pad(out, pad, mode="reflect" if out.shape[axis] > radius else "edge")
        out = np.apply_along_axis(lambda v: np.convolve(v, kernel, mode="valid"), axis, padded)
    return out.astype(np.float32)


def baseline_fill(image: np.ndarray, baseline: float | str, window: int) -> np.ndarray | float:
    """The values that replace occluded pixels, for a (C, H, W) image."""
    if baseline == "mean":
        return np.broadcast_to(image.mean(axis=(1, 2), keepdims=True), image.shape).copy()
    if baseline == "blur":
        return gaussian_blur(image, sigma=max(1.0, window / 2))
    return float(baseline)


def resize_bilinear(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear resize with half-pixel centres and clamped edges (as OpenCV's
    INTER_LINEAR and ``align_corners=False``), for a 2-d float array."""

    def axis(out_size: int, in_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        pos = (np.arange(out_size) + 0.5) * (in_size / out_size) - 0.5
        pos = np.clip(pos, 0, in_size - 1)
        low = np.floor(pos).astype(int)
        high = np.minimum(low + 1, in_size - 1)
        return low, high, (pos - low).astype(np.float32)

    y0, y1, fy = axis(height, image.shape[0])
    x0, x1, fx = axis(width, image.shape[1])
    top = image[y0][:, x0] * (1 - fx) + image[y0][:, x1] * fx
    bottom = image[y1][:, x0] * (1 - fx) + image[y1][:, x1] * fx
    return (top * (1 - fy)[:, None] + bottom * fy[:, None]).astype(np.float32)
