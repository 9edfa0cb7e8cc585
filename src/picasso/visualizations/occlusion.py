"""Partial occlusion (Zeiler & Fergus 2014): hide a patch, see how the score drops.

A square window slides over the image with a stride; windows start at 0 and the last
one along each axis is clipped at the edge. Each window is filled with the
``baseline`` and the attribution at a pixel is score(original) - score(occluded),
averaged over every window that covers the pixel. Positive values mark regions that
support the target class, negative ones regions that argue against it.

With the same window, stride, baseline and target this equals
``captum.attr.Occlusion(f).attribute(x, sliding_window_shapes=(C, w, w),
strides=(C, s, s), baselines=b, target=t)`` with ``f`` = softmax (``score=
"probability"``) or the logits (``score="logit"``). Unlike Captum it never builds
full-size masks: one batch of perturbed inputs is alive at a time, and the window
counts per pixel are accumulated in a single (H, W) array. The model's
:class:`~picasso.core.model.Occluder` computes the scores; the PyTorch one recomputes
only the part of each layer that a window changes.

Cost: 1 + ceil((H - w) / s + 1) * ceil((W - w) / s + 1) forward passes, in batches of
``batch_size``; no gradients, so it runs on any model.

Windows are computed coarse to fine: every eighth window in each direction first, then
every fourth, every second, and the rest. The result does not depend on the order; a listener for
previews (``explain(..., preview=callback)``, the web app's job page) gets a whole map
after the first level (about 1/64 of the work), each missing window taking the value of
the nearest window of the finest level computed so far, and refined maps after each
level and every half second.

``mode="approximate"`` computes a ``budget`` share of the windows, chosen where the map
changes, interpolates the rest and reports an error estimate
(:mod:`.occlusion_approx`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np
from pydantic import Field, model_validator

from ..core.method import Cost, Method, MethodOutput, MethodSettings
from ..core.model import Model
from ..core.progress import Progress
from .imaging import baseline_fill


class OcclusionSettings(MethodSettings):
    window: int = Field(
        16, ge=1, le=4096, description="Side of the square patch, in pixels of the model input."
    )
    stride: int = Field(
        8, ge=1, le=4096, description="Step between patches, in pixels; at most the window."
    )
    baseline: float | Literal["mean", "blur"] = Field(
        0.0,
        description=(
            "Fill for the patch: a number in the model's input space (0 = the "
            "normalisation mean for standard preprocessing), 'mean' (the image's "
            "channel means) or 'blur' (a blurred copy of the image)."
        ),
    )
    score: Literal["probability", "logit"] = Field(
        "probability", description="Score whose drop is measured."
    )
    mode: Literal["exact", "approximate"] = Field(
        "exact",
        description="exact: every window; approximate: refine where the map changes, "
        "interpolate the rest, and estimate the error (docs/methods/occlusion.md).",
    )
    budget: float = Field(
        0.2,
        gt=0,
        le=1,
        description="approximate: the share of windows computed (a tenth of them spent "
        "on a random sample that estimates the error).",
    )
    batch_size: int = Field(32, ge=1, le=4096, description="Occluded images per forward call.")

    @model_validator(mode="after")
    def _stride_within_window(self) -> OcclusionSettings:
        if self.stride > self.window:
            raise ValueError(
                f"stride ({self.stride}) must not exceed window ({self.window}), "
                "or some pixels would never be occluded"
            )
        return self


def window_starts(size: int, window: int, stride: int) -> list[int]:
    """Start offsets along one axis: 0, s, 2s, ... until the window reaches the edge."""
    count = math.ceil((size - window) / stride) + 1
    return [i * stride for i in range(count)]


#: Coarse-to-fine levels: every 8th window in both directions, then every 4th, 2nd, all.
LEVELS = (8, 4, 2, 1)


def level_of(iy: int, ix: int) -> int:
    """The first level whose step divides both indices."""
    return next(i for i, step in enumerate(LEVELS) if iy % step == 0 and ix % step == 0)


def coarse_to_fine(rows: int, columns: int) -> list[tuple[int, int]]:
    """Window indices (row, column), level by level (:data:`LEVELS`), each level in
    reading order."""
    cells = [(iy, ix) for iy in range(rows) for ix in range(columns)]
    return sorted(cells, key=lambda c: (level_of(*c), c))


def preview_map(
    drops: np.ndarray,
    ys: list[int],
    xs: list[int],
    win_h: int,
    win_w: int,
    height: int,
    width: int,
    step: int,
) -> np.ndarray:
    """The map from the windows computed so far (``drops`` (rows, columns, targets),
    NaN where not yet computed), every window whose indices are multiples of ``step``
    among them (a complete level): each missing window takes the value of the nearest
    of those, then windows are averaged over pixels as the exact map does."""

    def nearest(count: int) -> np.ndarray:
        snapped = np.rint(np.arange(count) / step).astype(int) * step
        return np.minimum(snapped, (count - 1) // step * step)

    known = ~np.isnan(drops[..., :1])
    filled = np.where(known, drops, drops[np.ix_(nearest(len(ys)), nearest(len(xs)))])
    return window_map(filled, ys, xs, win_h, win_w, height, width)


def window_map(
    drops: np.ndarray, ys: list[int], xs: list[int], win_h: int, win_w: int, height: int, width: int
) -> np.ndarray:
    """The map (targets, H, W) from every window's value (rows, columns, targets):
    each pixel the mean over the windows covering it."""
    sums = np.zeros((drops.shape[2], height, width))
    counts = np.zeros((height, width))
    for iy, y in enumerate(ys):
        for ix, x in enumerate(xs):
            sums[:, y : y + win_h, x : x + win_w] += drops[iy, ix][:, None, None]
            counts[y : y + win_h, x : x + win_w] += 1.0
    return (sums / np.maximum(counts, 1)).astype(np.float32)


class Occlusion(Method):
    """Score drop when a sliding window hides part of the image."""

    name = "occlusion"
    description = "Slide a patch over the image; where hiding it lowers the score, the model looks."
    reference = "https://arxiv.org/abs/1311.2901"
    cost = (
        "1 + (number of windows) forward passes (approximate: the budget's share of them), "
        "in batches of batch_size"
    )
    Settings = OcclusionSettings
    quantity = "score drop when hidden"
    signed = True

    @classmethod
    def estimate(
        cls, settings: OcclusionSettings, input_size: tuple[int, int], targets: int
    ) -> Cost:
        height, width = input_size
        win_h, win_w = min(settings.window, height), min(settings.window, width)
        windows = len(window_starts(height, win_h, settings.stride)) * len(
            window_starts(width, win_w, settings.stride)
        )
        if settings.mode == "approximate":
            return Cost(max(1, round(settings.budget * windows)) + 1, "budget")
        return Cost(windows + 1, "stride")

    def explain(
        self,
        model: Model,
        batch: np.ndarray,
        targets: Sequence[int],
        settings: OcclusionSettings,
        progress: Progress,
    ) -> MethodOutput:
        classes = np.asarray(list(targets), dtype=np.int64)
        _, _, height, width = batch.shape
        win_h, win_w = min(settings.window, height), min(settings.window, width)
        ys = window_starts(height, win_h, settings.stride)
        xs = window_starts(width, win_w, settings.stride)
        grid = coarse_to_fine(len(ys), len(xs))
        positions = [(ys[iy], xs[ix]) for iy, ix in grid]
        total = len(positions)
        # window values for previews, kept only when someone listens
        drops_seen = np.full(
            (len(ys), len(xs), len(classes)) if progress.listening else (0,), np.nan
        )
        # where each level ends: batches stop there, so a preview follows at once
        ends = np.cumsum(np.bincount([level_of(*c) for c in grid], minlength=len(LEVELS)))
        boundaries = sorted({int(e) for e in ends if 0 < e < total})
        fill = baseline_fill(batch[0], settings.baseline, settings.window)
        progress(0, total)

        original = model.scores(batch, settings.score)[0, classes].astype(np.float64)
        occluder = model.occluder(batch, fill)
        if settings.mode == "approximate":
            return self._approximate(
                occluder, original, classes, settings, progress, ys, xs, win_h, win_w
            )
        sums = np.zeros((len(classes), height, width), np.float64)
        counts = np.zeros((height, width), np.float64)
        start = 0
        while start < total:
            stop = min([start + settings.batch_size, total, *(b for b in boundaries if b > start)])
            chunk = positions[start:stop]
            boxes = [(y, min(y + win_h, height), x, min(x + win_w, width)) for y, x in chunk]
            scores = occluder.scores(boxes, settings.score)[:, classes].astype(np.float64)
            drops = original[None, :] - scores  # (windows, targets)
            for i, (y, x) in enumerate(chunk):
                sums[:, y : y + win_h, x : x + win_w] += drops[i][:, None, None]
                counts[y : y + win_h, x : x + win_w] += 1.0
                if progress.listening:
                    iy, ix = grid[start + i]
                    drops_seen[iy, ix] = drops[i]
            start = stop
            progress(start, total)
            level_done = start in boundaries
            complete = [i for i, end in enumerate(ends) if end <= start]  # whole levels
            wanted = bool(complete) and (level_done or progress.wants_preview)
            if progress.listening and start < total and wanted:
                step = LEVELS[complete[-1]]
                progress.preview(
                    preview_map(drops_seen, ys, xs, win_h, win_w, height, width, step),
                    force=level_done,
                )
        maps = (sums / counts).astype(np.float32)
        return MethodOutput(
            maps=maps,
            extras={
                "windows": total,
                "forward_passes": total + 1,
                "engine": occluder.engine,
                # share of the dense path's convolution work the patches needed
                "work_fraction": getattr(occluder, "work_fraction", 1.0),
                "original_scores": original.tolist(),
            },
        )

    @staticmethod
    def _approximate(
        occluder: Any,
        original: np.ndarray,
        classes: np.ndarray,
        settings: OcclusionSettings,
        progress: Progress,
        ys: list[int],
        xs: list[int],
        win_h: int,
        win_w: int,
    ) -> MethodOutput:
        """``mode="approximate"``: :mod:`.occlusion_approx`'s adaptive refinement."""
        from .occlusion_approx import HOLDOUT, approximate

        height, width = occluder.image.shape[2:]
        total = len(ys) * len(xs)
        planned = max(1, round(settings.budget * total))
        done = 0
        progress(0, planned)

        def compute(indices: list[tuple[int, int]]) -> np.ndarray:
            nonlocal done
            boxes = [
                (ys[r], min(ys[r] + win_h, height), xs[c], min(xs[c] + win_w, width))
                for r, c in indices
            ]
            scores = occluder.scores(boxes, settings.score)[:, classes].astype(np.float64)
            done += len(indices)
            progress(min(done, planned), planned)
            return original[None, :] - scores

        def update(current: Callable[[], np.ndarray], first: bool) -> None:
            # a whole interpolated map after the start grid, then refined ones
            if progress.listening and (first or progress.wants_preview):
                maps = window_map(current(), ys, xs, win_h, win_w, height, width)
                progress.preview(maps, force=first)

        found = approximate(
            compute,
            len(ys),
            len(xs),
            len(classes),
            settings.budget,
            HOLDOUT,
            settings.batch_size,
            update=update,
        )
        progress(planned, planned)
        maps = window_map(found.values, ys, xs, win_h, win_w, height, width)
        computed = int(found.computed.sum())
        return MethodOutput(
            maps=maps,
            extras={
                "windows": total,
                "windows_computed": computed,
                "forward_passes": computed + 1,
                "engine": occluder.engine,
                "work_fraction": getattr(occluder, "work_fraction", 1.0),
                "original_scores": original.tolist(),
                "mode": "approximate",
                "error": round(found.error, 4),
                "error_rms": [round(float(v), 6) for v in found.rms],
                "error_sample": found.checked,
                "criterion": "RMS error of the window values, estimated from a uniform "
                "sample of the interpolated windows, relative to their standard deviation",
            },
        )
