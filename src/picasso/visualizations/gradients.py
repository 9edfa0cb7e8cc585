"""Gradient-integrating methods: SmoothGrad (Smilkov et al. 2017) and Integrated
Gradients (Sundararajan et al. 2017).

SmoothGrad averages saliency maps (|d logit / d input|, max over channels) of noisy
copies of the image; its per-channel average |gradient| (what
``captum.attr.NoiseTunnel(Saliency)`` returns) is kept in ``extras["channels"]``.
Integrated Gradients integrates the gradient along the straight path from a baseline
to the image; its map sums the attribution over channels, so that completeness holds:
the map sums to f(image) - f(baseline) (the logit), up to the integration error, which
every result reports as ``completeness_gap``.
"""

from __future__ import annotations

import typing
from collections.abc import Sequence
from typing import Literal

import numpy as np
from pydantic import Field

from ..core.method import Cost, Method, MethodOutput, MethodSettings
from ..core.model import GRADIENTS, GradientModel, Model, require
from ..core.progress import Progress
from .imaging import baseline_fill

#: The 'blur' baseline blurs as occlusion's default 16-pixel window does (sigma 8).
BLUR_WINDOW = 16
Rule = Literal[
    "gausslegendre", "riemann_trapezoid", "riemann_left", "riemann_right", "riemann_middle"
]
RULES: tuple[str, ...] = typing.get_args(Rule)


class SmoothGradSettings(MethodSettings):
    samples: int = Field(25, ge=1, le=1000, description="Noisy copies averaged per target.")
    noise: float = Field(
        0.15,
        gt=0,
        le=1,
        description="Noise standard deviation, as a fraction of the input range "
        "(max - min of the preprocessed image).",
    )
    seed: int = Field(0, ge=0, description="Seed of the noise (results are reproducible).")


class SmoothGrad(Method):
    """Saliency averaged over noisy copies of the image."""

    name = "smoothgrad"
    description = "Saliency averaged over noisy copies of the image: less speckle, same meaning."
    reference = "https://arxiv.org/abs/1706.03825"
    cost = "samples forward + backward passes per target"
    Settings = SmoothGradSettings
    quantity = "mean |d logit / d pixel| under noise"
    requires = frozenset({GRADIENTS})
    signed = False

    @classmethod
    def estimate(
        cls, settings: SmoothGradSettings, input_size: tuple[int, int], targets: int
    ) -> Cost:
        return Cost(settings.samples * targets, "samples")

    def explain(
        self,
        model: Model,
        batch: np.ndarray,
        targets: Sequence[int],
        settings: SmoothGradSettings,
        progress: Progress,
    ) -> MethodOutput:
        network = require(model, GradientModel)
        targets = list(targets)
        rng = np.random.default_rng(settings.seed)
        sigma = settings.noise * float(batch.max() - batch.min())
        maps = np.zeros((len(targets), *batch.shape[2:]), np.float64)
        channels = np.zeros((len(targets), *batch.shape[1:]), np.float64)
        total, done = len(targets) * settings.samples, 0
        progress(0, total)
        for t, target in enumerate(targets):
            for start in range(0, settings.samples, settings.batch_size):
                n = min(settings.batch_size, settings.samples - start)
                noisy = (batch + rng.normal(0, sigma, size=(n, *batch.shape[1:]))).astype(
                    np.float32
                )
                _, grads = network.gradients(noisy, [target] * n, score="logit")
                magnitude = np.abs(grads)
                channels[t] += magnitude.sum(axis=0)
                maps[t] += magnitude.max(axis=1).sum(axis=0)
                done += n
                progress(done, total)
        return MethodOutput(
            maps=(maps / settings.samples).astype(np.float32),
            extras={"channels": (channels / settings.samples).astype(np.float32), "sigma": sigma},
        )


class IntegratedGradientsSettings(MethodSettings):
    steps: int = Field(50, ge=2, le=2048, description="Points on the path from the baseline.")
    baseline: float | Literal["mean", "blur"] = Field(
        0.0,
        description="Start of the path: a number in the model's input space (0 = the "
        "normalisation mean for standard preprocessing), 'mean' or 'blur' (as occlusion).",
    )
    rule: Rule = Field("gausslegendre", description="Integration rule (Captum's names).")
    batch_size: int = Field(32, ge=1, le=4096, description="Path points per gradient call.")


def integration_points(rule: str, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """(alphas, weights) of ``rule`` on [0, 1], as Captum defines them."""
    if rule == "gausslegendre":
        x, w = np.polynomial.legendre.leggauss(steps)
        return 0.5 * (x + 1), 0.5 * w
    weights = np.full(steps, 1.0 / steps)
    if rule == "riemann_trapezoid":
        weights[0] /= 2
        weights[-1] /= 2
        return np.linspace(0, 1, steps), weights
    if rule == "riemann_left":
        return np.linspace(0, 1 - 1 / steps, steps), weights
    if rule == "riemann_right":
        return np.linspace(1 / steps, 1, steps), weights
    return np.linspace(1 / (2 * steps), 1 - 1 / (2 * steps), steps), weights  # middle


class IntegratedGradients(Method):
    """Path integral of gradients from a baseline to the image."""

    name = "integrated-gradients"
    description = (
        "Gradients integrated from a baseline to the image; the map sums to the score change."
    )
    reference = "https://arxiv.org/abs/1703.01365"
    cost = "steps forward + backward passes per target, + 2 forward passes for the gap"
    Settings = IntegratedGradientsSettings
    quantity = "contribution to the logit"
    requires = frozenset({GRADIENTS})
    signed = True

    @classmethod
    def estimate(
        cls, settings: IntegratedGradientsSettings, input_size: tuple[int, int], targets: int
    ) -> Cost:
        return Cost(settings.steps * targets, "steps")

    def explain(
        self,
        model: Model,
        batch: np.ndarray,
        targets: Sequence[int],
        settings: IntegratedGradientsSettings,
        progress: Progress,
    ) -> MethodOutput:
        network = require(model, GradientModel)
        targets = list(targets)
        image = batch[0].astype(np.float64)
        fill = baseline_fill(batch[0], settings.baseline, BLUR_WINDOW)
        start_point = np.broadcast_to(np.asarray(fill, np.float64), image.shape)
        delta = image - start_point
        alphas, weights = integration_points(settings.rule, settings.steps)
        channels = np.zeros((len(targets), *image.shape), np.float64)
        total, done = len(targets) * settings.steps, 0
        progress(0, total)
        for t, target in enumerate(targets):
            for first in range(0, settings.steps, settings.batch_size):
                a = alphas[first : first + settings.batch_size]
                points = (start_point[None] + a[:, None, None, None] * delta[None]).astype(
                    np.float32
                )
                _, grads = network.gradients(points, [target] * len(a), score="logit")
                w = weights[first : first + len(a)]
                channels[t] += (grads * w[:, None, None, None]).sum(axis=0)
                done += len(a)
                progress(done, total)
        channels *= delta[None]
        ends = np.stack([image, start_point]).astype(np.float32)
        logits = model.logits(ends)
        change = logits[0, targets] - logits[1, targets]
        gaps = np.abs(channels.sum(axis=(1, 2, 3)) - change)
        return MethodOutput(
            maps=channels.sum(axis=1).astype(np.float32),
            extras={
                "channels": channels.astype(np.float32),
                "completeness_gap": [float(g) for g in gaps],
                "score_change": [float(c) for c in change],
            },
        )
