"""Saliency maps (Simonyan et al. 2014): how strongly each pixel moves the class score.

The map is |d logit_target / d input|, maximised over colour channels; it equals
``captum.attr.Saliency(model).attribute(x, target=t, abs=True)`` reduced by a max over
channels. Magnitudes only (no sign). Cost: one forward and one backward pass per
``batch_size`` targets.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ..core.method import BatchOutput, Method, MethodOutput, MethodSettings
from ..core.model import (
    GRADIENTS,
    GradientModel,
    GradientsWithOutputs,
    Model,
    require,
    resolve_top,
)
from ..core.progress import Progress


class SaliencySettings(MethodSettings):
    pass


def gradient_maps(
    gradients: Callable[[np.ndarray, list[int]], np.ndarray],
    batch: np.ndarray,
    targets: Sequence[int],
    batch_size: int,
    progress: Progress,
) -> np.ndarray:
    """|input gradient|, max over channels, per target of one image: ``gradients(images,
    targets)`` for ``batch_size`` copies of the image at a time (saliency, and Guided
    Backprop with its guided gradients)."""
    targets = list(targets)
    maps = np.empty((len(targets), *batch.shape[2:]), np.float32)
    progress(0, len(targets))
    for start in range(0, len(targets), batch_size):
        chunk = targets[start : start + batch_size]
        grads = gradients(np.repeat(batch, len(chunk), axis=0), chunk)
        maps[start : start + len(chunk)] = np.abs(grads).max(axis=1)
        progress(start + len(chunk), len(targets))
    return maps


class Saliency(Method):
    """Absolute input gradient of the target's logit, max over channels."""

    name = "saliency"
    description = "Gradient of the class score w.r.t. each pixel: where a small change matters."
    reference = "https://arxiv.org/abs/1312.6034"
    cost = "1 forward + 1 backward pass per target"
    Settings = SaliencySettings
    quantity = "|d logit / d pixel|"
    requires = frozenset({GRADIENTS})
    signed = False

    def explain(
        self,
        model: Model,
        batch: np.ndarray,
        targets: Sequence[int],
        settings: SaliencySettings,
        progress: Progress,
    ) -> MethodOutput:
        network = require(model, GradientModel)
        maps = gradient_maps(
            lambda images, chunk: network.gradients(images, chunk, score="logit")[1],
            batch,
            targets,
            settings.batch_size,
            progress,
        )
        return MethodOutput(maps=maps)

    def explain_batch(
        self,
        model: Model,
        batch: np.ndarray,
        targets: Sequence[int | None],
        settings: SaliencySettings,
        progress: Progress,
    ) -> BatchOutput:
        """Many images per gradient call (``batch_size`` at a time); where the model
        can, the prediction comes from the same forward pass."""
        network = require(model, GradientModel)
        maps = np.empty((len(batch), *batch.shape[2:]), np.float32)
        if isinstance(model, GradientsWithOutputs):
            chosen: list[int] = []
            parts = []
            for start in range(0, len(batch), settings.batch_size):
                chunk = slice(start, start + settings.batch_size)
                raw, used, grads = model.gradients_and_outputs(
                    batch[chunk], list(targets[chunk]), score="logit"
                )
                parts.append(model.to_probabilities(raw))
                chosen += used
                maps[chunk] = np.abs(grads).max(axis=1)
                progress(min(start + settings.batch_size, len(batch)), len(batch))
            probabilities = np.concatenate(parts)
        else:
            probabilities = model.probabilities(batch)
            chosen = resolve_top(targets, probabilities)
            for start in range(0, len(batch), settings.batch_size):
                chunk = slice(start, start + settings.batch_size)
                _, grads = network.gradients(batch[chunk], chosen[chunk], score="logit")
                maps[chunk] = np.abs(grads).max(axis=1)
                progress(min(start + settings.batch_size, len(batch)), len(batch))
        return BatchOutput(maps, [{} for _ in range(len(batch))], probabilities, chosen)
