"""The one place where a checked request becomes an explanation.

The Python API, the CLI and the job runner (behind the web app) call :func:`explain`,
so the same request gives the same result whichever face it came through.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from ._version import __version__
from .core.images import DEFAULT_MAX_PIXELS, LoadedImage, load_image
from .core.model import Model
from .core.progress import Progress, ProgressCallback
from .core.targets import Target
from .explanation import Explanation
from .requests import Checked, ExplainRequest, resolve_targets

TOP_CLASSES = 5


def explain(
    model: Model,
    image: Any,
    checked: Checked[ExplainRequest],
    progress: Progress | ProgressCallback | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    faithfulness_steps: int = 20,
) -> Explanation:
    """Explain one image as ``checked`` (see :func:`picasso.requests.check`) asks."""
    started = time.perf_counter()
    request, method_cls, parsed = checked.request, checked.method, checked.settings
    if not isinstance(progress, Progress):
        progress = Progress(progress)
    loaded = image if isinstance(image, LoadedImage) else load_image(image, max_pixels)

    t0 = time.perf_counter()
    batch = model.preprocess([loaded.image])
    probabilities = model.probabilities(batch)[0]
    t1 = time.perf_counter()
    targets = resolve_targets(probabilities, request.targets, request.top_k)
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
    if request.faithfulness and len(maps):
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
