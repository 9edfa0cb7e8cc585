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
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

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


class Occlusion(Method):
    """Score drop when a sliding window hides part of the image."""

    name = "occlusion"
    description = "Slide a patch over the image; where hiding it lowers the score, the model looks."
    reference = "https://arxiv.org/abs/1311.2901"
    cost = "1 + (number of windows) forward passes, in batches of batch_size"
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
        positions = [
            (y, x)
            for y in window_starts(height, win_h, settings.stride)
            for x in window_starts(width, win_w, settings.stride)
        ]
        total = len(positions)
        fill = baseline_fill(batch[0], settings.baseline, settings.window)
        progress(0, total)

        original = model.scores(batch, settings.score)[0, classes].astype(np.float64)
        occluder = model.occluder(batch, fill)
        sums = np.zeros((len(classes), height, width), np.float64)
        counts = np.zeros((height, width), np.float64)
        for start in range(0, total, settings.batch_size):
            chunk = positions[start : start + settings.batch_size]
            boxes = [(y, min(y + win_h, height), x, min(x + win_w, width)) for y, x in chunk]
            scores = occluder.scores(boxes, settings.score)[:, classes].astype(np.float64)
            drops = original[None, :] - scores  # (windows, targets)
            for i, (y, x) in enumerate(chunk):
                sums[:, y : y + win_h, x : x + win_w] += drops[i][:, None, None]
                counts[y : y + win_h, x : x + win_w] += 1.0
            progress(start + len(chunk), total)
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
