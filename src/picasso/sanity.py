"""Sanity checks for saliency methods (Adebayo et al. 2018, cascading model-parameter
randomisation): a map that explains the model must change when the model's learned
parameters are destroyed.

Layers are re-initialised from the output down, in ``stages`` cumulative steps, and
the map of the same method, settings and target is recomputed after each step. The
Spearman rank correlation between the trained model's map and each randomised map
(of absolute values, as in the paper) is reported. The verdict is ``"pass"`` when the
correlation after randomising every layer is below ``threshold`` (0.5 by default: at
most a weak monotone relation left), and ``"fail"`` otherwise: such a method shows
the image, not the model. A map that is constant (e.g. Grad-CAM after its ReLU on a
randomised layer) has no ranking to compare: its step reports "map became constant"
instead of a correlation, and a constant last map makes the verdict ``"inconclusive"``,
never a pass. The maps after each stage are kept (``SanityResult.maps``), as in the
paper's figure.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .core.images import load_image
from .core.model import Model, RandomizableModel, require
from .core.progress import Progress, ProgressCallback
from .explanation import Explanation
from .requests import Checked, ExplainRequest, SanityRequest
from .service import explain


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
    """Spearman rank correlation; 0 when either map is constant (no order to share).
    :func:`sanity_check` reports constant maps as such rather than as this 0."""
    ra, rb = rank(a), rank(b)
    if ra.std() == 0 or rb.std() == 0:
        return 0.0
    return float(np.corrcoef(ra, rb)[0, 1])


def is_constant(values: np.ndarray) -> bool:
    return bool(np.ptp(values) == 0)


def relation(rho: float) -> str:
    """What a rank correlation says, in words that match the number."""
    size = abs(rho)
    if size < 0.2:
        return "no longer related to"
    if size < 0.5:
        return "weakly related to"
    if size < 0.8:
        return "clearly related to"
    return "nearly the same as"


@dataclass
class SanityResult:
    """The outcome of a sanity check: the verdict, why, and every stage."""

    method: str
    target: int
    threshold: float
    verdict: str  # "pass", "fail" or "inconclusive"
    steps: list[dict[str, Any]] = field(default_factory=list)  # layers randomised, rho
    label: str = ""
    explanation: str = ""  # the verdict in words, with the numbers and the threshold
    maps: np.ndarray | None = None  # (stages + 1, H, W): the trained map, then each stage
    image: np.ndarray | None = None  # the input as the model saw it

    def summary(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "target": self.target,
            "label": self.label,
            "threshold": self.threshold,
            "verdict": self.verdict,
            "explanation": self.explanation,
            "steps": self.steps,
        }

    def _repr_png_(self) -> bytes:
        """Jupyter shows the stages (the input, the trained map, each randomised map)."""
        import tempfile

        with tempfile.TemporaryDirectory() as folder:
            return self.save(folder, stem="sanity")["png"].read_bytes()

    def save(self, directory: str | Path, stem: str = "image") -> dict[str, Path]:
        """``<stem>.sanity.json`` and ``<stem>.sanity.png`` (the map after each stage,
        as in Adebayo et al.'s figure) into ``directory``."""
        from .render import save_sanity

        return save_sanity(self, Path(directory), stem)


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

    layers = network.parameter_layers()[::-1]  # from the output down
    stages = request.stages
    cuts = sorted({max(1, round(len(layers) * (i + 1) / stages)) for i in range(stages)})
    progress(0, len(cuts) + 1)  # the number of maps is known before the first one
    base = map_of(model, request.target)
    chosen = base.targets[0].index
    steps: list[dict[str, Any]] = []
    maps = [np.abs(base.attribution)]
    progress(1, len(cuts) + 1)
    for count in cuts:
        exp = map_of(network.randomized(layers[:count], seed=seed), chosen)
        randomized = np.abs(exp.attribution)
        maps.append(randomized)
        step: dict[str, Any] = {"layers_randomized": count, "down_to": layers[count - 1]}
        if is_constant(maps[0]) or is_constant(randomized):
            step.update(spearman=None, constant=True, note="map became constant")
        else:
            rho = spearman(maps[0], randomized)
            step.update(spearman=round(rho, 4), constant=False, note=relation(rho))
        steps.append(step)
        progress(len(steps) + 1, len(cuts) + 1)
    verdict, explanation = _verdict(steps, request.threshold, len(layers), is_constant(maps[0]))
    return SanityResult(
        base.method,
        chosen,
        request.threshold,
        verdict,
        steps,
        label=base.targets[0].label,
        explanation=explanation,
        maps=np.stack(maps).astype(np.float32),
        image=base.image,
    )


def _verdict(
    steps: list[dict[str, Any]], threshold: float, layers: int, trained_constant: bool
) -> tuple[str, str]:
    last = steps[-1]
    if trained_constant:
        return "inconclusive", (
            "the trained model's map is constant: there is no ranking to compare"
        )
    if last["constant"]:
        return "inconclusive", (
            f"after randomising all {layers} layers the map became constant: a constant "
            "map neither follows nor ignores the model, so this is not a pass"
        )
    rho = last["spearman"]
    if rho < threshold:
        return "pass", (
            f"after randomising all {layers} layers the map is {relation(rho)} the trained "
            f"map (Spearman {rho:.2f}, below the threshold {threshold}): it shows the model"
        )
    return "fail", (
        f"after randomising all {layers} layers the map is still {relation(rho)} the "
        f"trained map (Spearman {rho:.2f}, not below the threshold {threshold}): it shows "
        "the image more than the model"
    )
