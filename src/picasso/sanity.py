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

from .core.images import load_image
from .core.model import Model, RandomizableModel, require
from .core.progress import Progress, ProgressCallback
from .explanation import Explanation
from .requests import Checked, ExplainRequest, SanityRequest
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
    checked: Checked[SanityRequest],
    progress: Progress | ProgressCallback | None = None,
    seed: int = 0,
) -> SanityResult:
    """Cascading randomisation check of the checked request's method on ``model`` for
    one image.

    ``progress(done, total)`` is called after the trained map and after each stage
    (``stages + 1`` steps); cancelling it stops the check inside the current map."""
    request = checked.request
    if not isinstance(progress, Progress):
        progress = Progress(progress)
    inner = Progress(lambda _done, _total: progress.check())
    network = require(model, RandomizableModel)
    loaded = load_image(image)

    def map_of(of: Model, target: int | None) -> Explanation:
        # The same method and parsed settings on the trained and the randomised copies.
        explain_request = ExplainRequest(
            method=request.method, settings=request.settings, target=target
        )
        return explain(
            of, loaded, Checked(explain_request, checked.method, checked.settings), inner
        )

    base = map_of(model, request.target)
    chosen = base.targets[0].index
    layers = network.parameter_layers()[::-1]  # from the output down
    stages = request.stages
    cuts = sorted({max(1, round(len(layers) * (i + 1) / stages)) for i in range(stages)})
    steps: list[dict[str, Any]] = []
    rho = 1.0
    progress(1, len(cuts) + 1)
    for count in cuts:
        exp = map_of(network.randomized(layers[:count], seed=seed), chosen)
        rho = spearman(np.abs(base.attribution), np.abs(exp.attribution))
        steps.append(
            {"layers_randomized": count, "down_to": layers[count - 1], "spearman": round(rho, 4)}
        )
        progress(len(steps) + 1, len(cuts) + 1)
    verdict = "pass" if round(rho, 4) < request.threshold else "fail"
    return SanityResult(base.method, chosen, request.threshold, verdict, steps)
