"""Deletion and insertion curves (Petsiuk et al. 2018): does the map rank pixels by
how much the model needs them?

Deletion removes pixels in the map's order, most important first (set to 0 in the
model's input space, the normalisation mean for standard preprocessing), and records
the target's probability: a faithful map makes it fall fast (low area under the
curve). Insertion starts from a blurred copy of the image and puts the original
pixels back in the same order: a faithful map makes it rise fast (high area). Both
curves have ``steps + 1`` points from 0 to 100 % of the pixels; areas use the
trapezoid rule over that fraction. Cost: 2 (steps + 1) forward passes per target.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .core.model import Model
from .visualizations.imaging import baseline_fill


def _curve(
    model: Model,
    start: np.ndarray,
    end: np.ndarray,
    order: np.ndarray,
    target: int,
    steps: int,
    batch_size: int,
) -> list[float]:
    """Probabilities along a path that moves pixels from ``start`` to ``end`` in
    ``order``; at most ``batch_size`` images are built at a time."""
    _, height, width = start.shape
    counts = np.linspace(0, height * width, steps + 1).round().astype(int)
    rows, cols = np.unravel_index(order, (height, width))
    values: list[float] = []
    for first in range(0, len(counts), batch_size):
        chunk = counts[first : first + batch_size]
        images = np.repeat(start[None], len(chunk), axis=0)
        for i, n in enumerate(chunk):
            images[i][:, rows[:n], cols[:n]] = end[:, rows[:n], cols[:n]]
        values.extend(float(p) for p in model.probabilities(images)[:, target])
    return values


def deletion_insertion(
    model: Model,
    batch: np.ndarray,
    attribution: np.ndarray,
    target: int,
    steps: int = 20,
    batch_size: int = 32,
) -> dict[str, Any]:
    """Deletion and insertion curves and their areas for one map and target."""
    image = batch[0].astype(np.float32)
    order = np.argsort(-attribution.ravel(), kind="stable")
    removed = np.zeros_like(image)
    blurred = np.asarray(baseline_fill(image, "blur", max(image.shape[1:]) // 8), np.float32)
    deletion = _curve(model, image, removed, order, target, steps, batch_size)
    insertion = _curve(model, blurred, image, order, target, steps, batch_size)
    fractions = np.linspace(0, 1, steps + 1)
    return {
        "fractions": [round(float(f), 6) for f in fractions],
        "deletion": deletion,
        "insertion": insertion,
        "deletion_auc": float(np.trapezoid(deletion, fractions)),
        "insertion_auc": float(np.trapezoid(insertion, fractions)),
    }
