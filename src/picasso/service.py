"""The one place where a request becomes an explanation.

The Python API and the CLI (and later the web app) call :func:`explain`, so the same
request gives the same result whichever face it came through.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ._version import __version__
from .core.errors import TargetError
from .core.images import DEFAULT_MAX_PIXELS, LoadedImage, load_image
from .core.method import Method
from .core.model import Model
from .core.progress import Progress
from .core.targets import Target
from .explanation import Explanation
from .plugins import MethodRegistry, discover

TOP_CLASSES = 5


def resolve_targets(
    probabilities: np.ndarray,
    target: int | Sequence[int] | None,
    top_k: int | None,
) -> list[int]:
    """Class indices to explain: top-1 by default, given indices, or the top-k."""
    classes = probabilities.shape[0]
    if target is not None and top_k is not None:
        raise TargetError("give either target or top_k, not both")
    if top_k is not None:
        if not 1 <= int(top_k) <= classes:
            raise TargetError(f"top_k must be between 1 and {classes}, got {top_k}")
        return [int(i) for i in np.argsort(-probabilities, kind="stable")[: int(top_k)]]
    if target is None:
        return [int(np.argmax(probabilities))]
    indices = [target] if np.isscalar(target) else list(target)
    if not indices:
        raise TargetError("target list is empty")
    for index in indices:
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
            raise TargetError(f"target must be a class index (int), got {index!r}")
        if not 0 <= int(index) < classes:
            raise TargetError(f"target class {index} does not exist (model has {classes} classes)")
    return [int(i) for i in indices]


def get_method(method: str | type[Method], registry: MethodRegistry | None) -> type[Method]:
    if isinstance(method, type) and issubclass(method, Method):
        return method
    return (registry if registry is not None else discover())[method]


def explain(
    model: Model,
    image: Any,
    method: str | type[Method] = "occlusion",
    target: int | Sequence[int] | None = None,
    top_k: int | None = None,
    settings: dict[str, Any] | None = None,
    progress: Progress | Callable[[int, int], None] | None = None,
    registry: MethodRegistry | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    faithfulness: bool = False,
    faithfulness_steps: int = 20,
) -> Explanation:
    """Explain one image with one method; see :func:`picasso.explain`."""
    started = time.perf_counter()
    method_cls = get_method(method, registry)
    parsed = method_cls.parse_settings(settings)
    method_cls.check_capabilities(model)  # refuse before any work starts
    if not isinstance(progress, Progress):
        progress = Progress(progress)
    loaded = image if isinstance(image, LoadedImage) else load_image(image, max_pixels)

    t0 = time.perf_counter()
    batch = model.preprocess([loaded.image])
    probabilities = model.probabilities(batch)[0]
    t1 = time.perf_counter()
    targets = resolve_targets(probabilities, target, top_k)
    progress.check()
    output = method_cls().explain(model, batch, targets, parsed, progress)
    t2 = time.perf_counter()

    maps = np.asarray(output.maps, dtype=np.float32)
    expected = (len(targets), *model.info.input_size)
    if method_cls.produces_map and maps.shape != expected:
        raise ValueError(
            f"method {method_cls.name} returned maps of shape {maps.shape}, expected {expected}"
        )

    extras = dict(output.extras)
    if faithfulness and len(maps):
        from .faithfulness import deletion_insertion

        extras["faithfulness"] = [
            deletion_insertion(model, batch, m, t, steps=faithfulness_steps)
            for m, t in zip(maps, targets, strict=True)
        ]
    t3 = time.perf_counter()

    def as_target(i: int) -> Target:
        return Target(int(i), model.info.label(int(i)), float(probabilities[i]))

    top = np.argsort(-probabilities, kind="stable")[:TOP_CLASSES]
    return Explanation(
        attributions=maps,
        targets=[as_target(i) for i in targets],
        image=np.asarray(model.fit_image(loaded.image), dtype=np.uint8),
        method=method_cls.name,
        settings=parsed.model_dump(mode="json"),
        model=model.info.summary(),
        top=[as_target(int(i)) for i in top],
        signed=method_cls.signed,
        image_name=loaded.name,
        image_sha256=loaded.sha256,
        reference=method_cls.reference,
        version=__version__,
        timings={
            "preprocess_and_predict_s": round(t1 - t0, 6),
            "method_s": round(t2 - t1, 6),
            "faithfulness_s": round(t3 - t2, 6),
            "total_s": round(time.perf_counter() - started, 6),
        },
        extras=extras,
    )
