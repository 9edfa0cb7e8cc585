"""Sanity checks for saliency methods (Adebayo et al. 2018, cascading model-parameter
randomisation): a map that explains the model must change when the model's learned
parameters are destroyed.

Layers are re-initialised from the output down, in ``stages`` cumulative steps, and
the map of the same method, settings and target is recomputed after each step. The
Spearman rank correlation between the trained model's map and each randomised map
(of absolute values, as in the paper) is reported. The verdict is ``"pass"`` when the
correlation after randomising every layer is below ``threshold`` (0.5 by default: at
most a weak monotone relation left), and ``"fail"`` otherwise: such a method shows
the image, not the model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .core.errors import CapabilityError
from .core.images import load_image
from .core.model import RANDOMIZE, Model
from .core.progress import Progress, ProgressCallback
from .plugins import MethodRegistry
from .service import explain

DEFAULT_THRESHOLD = 0.5


def rank(values: np.ndarray) -> np.ndarray:
    """Ranks with ties averaged (as scipy.stats.rankdata)."""
    flat = values.ravel()
    order = np.argsort(flat, kind="mergesort")
    inverse = np.empty_like(order)
    inverse[order] = np.arange(len(flat))
    ordered = flat[order]
    new = np.r_[True, ordered[1:] != ordered[:-1]]
    dense = new.cumsum()[inverse]
    bounds = np.r_[np.nonzero(new)[0], len(new)]
    return 0.5 * (bounds[dense] + bounds[dense - 1] + 1)


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation; 0 when either map is constant (no order to share)."""
    ra, rb = rank(a), rank(b)
    if ra.std() == 0 or rb.std() == 0:
        return 0.0
    return float(np.corrcoef(ra, rb)[0, 1])


@dataclass
class SanityResult:
    method: str
    target: int
    threshold: float
    verdict: str  # "pass" or "fail"
    steps: list[dict[str, Any]] = field(default_factory=list)  # layers randomised, rho

    def summary(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "target": self.target,
            "threshold": self.threshold,
            "verdict": self.verdict,
            "steps": self.steps,
        }


def sanity_check(
    model: Model,
    image: Any,
    method: str | type,
    target: int | None = None,
    stages: int = 5,
    threshold: float = DEFAULT_THRESHOLD,
    seed: int = 0,
    settings: dict[str, Any] | None = None,
    registry: MethodRegistry | None = None,
    progress: Progress | ProgressCallback | None = None,
) -> SanityResult:
    """Cascading randomisation check of ``method`` on ``model`` for one image.

    ``progress(done, total)`` is called after the trained map and after each stage
    (``stages + 1`` steps); cancelling it stops the check inside the current map."""
    if not isinstance(progress, Progress):
        progress = Progress(progress)
    inner = Progress(lambda _done, _total: progress.check())
    if RANDOMIZE not in model.capabilities:
        raise CapabilityError(
            f"sanity check needs a model that can be randomised; model "
            f"{model.info.name!r} ({model.info.framework}) cannot"
        )
    loaded = load_image(image)
    base = explain(
        model,
        loaded,
        method,
        target=target,
        settings=settings,
        registry=registry,
        progress=inner,
    )
    if len(base.attributions) == 0:
        raise CapabilityError(f"method {base.method!r} produces no map to check")
    chosen = base.targets[0].index
    layers = model.parameter_layers()[::-1]  # from the output down
    cuts = sorted({max(1, round(len(layers) * (i + 1) / stages)) for i in range(stages)})
    steps = []
    progress(1, len(cuts) + 1)
    for count in cuts:
        randomized = model.randomized(layers[:count], seed=seed)
        exp = explain(
            randomized,
            loaded,
            method,
            target=chosen,
            settings=settings,
            registry=registry,
            progress=inner,
        )
        rho = spearman(np.abs(base.attribution), np.abs(exp.attribution))
        steps.append(
            {"layers_randomized": count, "down_to": layers[count - 1], "spearman": round(rho, 4)}
        )
        progress(len(steps) + 1, len(cuts) + 1)
    verdict = "pass" if steps[-1]["spearman"] < threshold else "fail"
    return SanityResult(base.method, chosen, threshold, verdict, steps)
