"""The one place where a checked request becomes an explanation.

The Python API, the CLI and the job runner (behind the web app) call :func:`explain`,
so the same request gives the same result whichever face it came through.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._version import __version__
from .core.errors import CapabilityError, PicassoError, TargetError
from .core.images import DEFAULT_MAX_PIXELS, LoadedImage, load_image
from .core.method import Method
from .core.model import Detection, DetectionModel, Model, SegmentationModel
from .core.progress import Progress, ProgressCallback
from .core.targets import Target
from .explanation import Explanation
from .hiding import Hide, shade
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
    hidden = None
    if request.hide is not None:
        hidden = request.hide.mask(model, loaded.image)
        batch = request.hide.apply(batch, hidden)
    segmented: Segmented | None = None
    detected: Detected | None = None
    if model.info.task == "segmentation":
        segmented = segment(model, batch, loaded, request)
        explained, probabilities, targets = segmented.model, segmented.areas, segmented.targets
    elif model.info.task == "detection":
        detected = detect(model, batch, request)
        explained, probabilities, targets = detected.model, detected.scores, detected.targets
    else:
        explained, probabilities = model, model.probabilities(batch)[0]
        targets = resolve_targets(probabilities, request.targets, request.top_k)
    t1 = time.perf_counter()
    progress.check()
    output = method_cls().explain(explained, batch, targets, parsed, progress)
    t2 = time.perf_counter()
    return _explanation(
        model,
        loaded,
        batch,
        checked,
        probabilities,
        targets,
        output.maps,
        output.extras,
        {"preprocess_and_predict_s": t1 - t0, "method_s": t2 - t1},
        started,
        faithfulness_steps,
        hidden,
        segmented,
        detected,
    )


@dataclass(frozen=True)
class Detected:
    """A detector's answer for one image, made explainable: the detections (most
    confident first; targets index them), their scores, and the classifier view whose
    score j is detection j's in the detector's answer for a changed image."""

    detections: list[Detection]
    scores: np.ndarray
    targets: list[int]
    model: Model


#: Detections listed (and explainable) per image, the most confident first.
MAX_DETECTIONS = 100


def detect(model: Model, batch: np.ndarray, request: ExplainRequest) -> Detected:
    assert isinstance(model, DetectionModel)  # check() refused the others
    found = model.detect(batch)[0][:MAX_DETECTIONS]
    if not found:
        raise TargetError(f"model {model.info.name!r} found no object in this image")
    scores = np.array([d.score for d in found], np.float64)
    for index in request.targets or []:
        if not 0 <= index < len(found):
            raise TargetError(
                f"detection {index} does not exist: the model found {len(found)} object"
                f"{'s' if len(found) != 1 else ''} in this image (0 is the most confident)"
            )
    if request.top_k is not None:
        top_k = min(int(request.top_k), len(found))
        targets = resolve_targets(scores, None, top_k)
    else:
        targets = resolve_targets(scores, request.targets, None)
    return Detected(found, scores, targets, model.for_detection(found))


@dataclass(frozen=True)
class Segmented:
    """A segmentation model's answer for one image, made explainable: the predicted
    class of every pixel, each class's share of the pixels (what ranks the classes),
    the targets, and the classifier view whose score for class k sums k's logits over
    k's region (the given region, or the pixels predicted as k)."""

    labels: np.ndarray
    areas: np.ndarray
    targets: list[int]
    region: np.ndarray | None
    model: Model


def segment(
    model: Model, batch: np.ndarray, loaded: LoadedImage, request: ExplainRequest
) -> Segmented:
    assert isinstance(model, SegmentationModel)  # check() refused the others
    logits = model.segment(batch)[0]
    classes = logits.shape[0]
    labels = logits.argmax(axis=0)
    areas = np.bincount(labels.ravel(), minlength=classes)[:classes] / labels.size
    targets = resolve_targets(areas, request.targets, request.top_k)
    region = request.region.mask(model, loaded.image) if request.region is not None else None
    if region is not None and not region.any():
        raise TargetError("the region is empty: it marks no pixel of the model's input")
    masks = np.stack([region if region is not None else labels == k for k in range(classes)])
    for k in targets:
        if not masks[k].any():
            raise TargetError(
                f"class {k} ({model.info.label(k)}) covers no pixel of the prediction; "
                "give a region to explain it there"
            )
    return Segmented(labels, areas, targets, region, model.for_regions(masks))


def explain_many(
    model: Model,
    images: Sequence[Any],
    checked: Checked[ExplainRequest],
    progress: Progress | ProgressCallback | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> Iterator[tuple[int, Explanation | PicassoError]]:
    """Explain several images: ``(index, Explanation)`` per image, in order, or
    ``(index, error)`` for an image that cannot be explained. Where the request asks
    for one class per image (top-1 or one given class) and the method has a batch path,
    ``batch_size`` images share each model call; each result equals :func:`explain`'s.
    ``progress(done, total)`` counts images."""
    if not isinstance(progress, Progress):
        progress = Progress(progress)
    request, method_cls = checked.request, checked.method
    batched = shares_batches(checked) and model.info.task == "classification"
    if not batched:
        for index, image in enumerate(images):
            try:
                yield index, explain(model, image, checked, None, max_pixels)
            except PicassoError as exc:
                yield index, exc
            progress(index + 1, len(images))
        return
    size = checked.settings.batch_size
    for start in range(0, len(images), size):
        started = time.perf_counter()
        ready: list[tuple[int, LoadedImage]] = []
        for index in range(start, min(start + size, len(images))):
            try:
                image = images[index]
                loaded = image if isinstance(image, LoadedImage) else load_image(image, max_pixels)
                ready.append((index, loaded))
            except PicassoError as exc:
                yield index, exc
        if ready:
            batch = model.preprocess([loaded.image for _, loaded in ready])
            target = request.targets[0] if request.targets else None
            inner = Progress(lambda _done, _total: progress.check())
            output = method_cls().explain_batch(
                model, batch, [target] * len(ready), checked.settings, inner
            )
            seconds = (time.perf_counter() - started) / len(ready)
            for i, (index, loaded) in enumerate(ready):
                yield (
                    index,
                    _explanation(
                        model,
                        loaded,
                        batch[i : i + 1],
                        checked,
                        output.probabilities[i],
                        [output.targets[i]],
                        output.maps[i : i + 1],
                        output.extras[i],
                        {"batched_per_image_s": seconds},
                        time.perf_counter(),
                        20,
                    ),
                )
        progress(min(start + size, len(images)), len(images))


def shares_batches(checked: Checked[ExplainRequest]) -> bool:
    """Whether images of this request can share model calls: one class per image (the
    top one or one given) and a method with its own batch path."""
    request = checked.request
    one_class = request.top_k in (None, 1) and len(request.targets or [None]) == 1
    batch_path = checked.method.explain_batch is not Method.explain_batch
    return one_class and request.hide is None and batch_path


def _explanation(
    model: Model,
    loaded: LoadedImage,
    batch: np.ndarray,
    checked: Checked[ExplainRequest],
    probabilities: np.ndarray,
    targets: list[int],
    method_maps: np.ndarray,
    method_extras: dict[str, Any],
    timings: dict[str, float],
    started: float,
    faithfulness_steps: int,
    hidden: np.ndarray | None = None,
    segmented: Segmented | None = None,
    detected: Detected | None = None,
) -> Explanation:
    """The explanation of one image from what the method computed: shape checked,
    faithfulness curves added where asked, provenance recorded. ``hidden``: the pixels
    the request hid, shaded in the result's image."""
    method_cls = checked.method
    t2 = time.perf_counter()
    maps = np.asarray(method_maps, dtype=np.float32)
    if not np.isfinite(maps).all():
        raise PicassoError(
            f"{method_cls.name}: the map holds non-finite values (NaN or infinity); a "
            "setting may lie outside the model's numeric range"
        )
    expected = (len(targets), *model.info.input_size)
    if method_cls.produces_map and maps.shape != expected:
        raise ValueError(
            f"method {method_cls.name} returned maps of shape {maps.shape}, expected {expected}"
        )
    extras = dict(method_extras)
    explained = segmented.model if segmented else detected.model if detected else model
    if checked.request.faithfulness and len(maps):
        from .faithfulness import deletion_insertion

        extras["faithfulness"] = [
            deletion_insertion(explained, batch, m, t, steps=faithfulness_steps)
            for m, t in zip(maps, targets, strict=True)
        ]
    t3 = time.perf_counter()

    def as_target(i: int) -> Target:
        if detected is not None:  # a detection: its class and rank
            label = f"{model.info.label(detected.detections[i].label)} (detection {i})"
            return Target(int(i), label, float(probabilities[i]))
        return Target(int(i), model.info.label(int(i)), float(probabilities[i]))

    top = np.argsort(-probabilities, kind="stable")[:TOP_CLASSES]
    image = np.asarray(model.fit_image(loaded.image), dtype=np.uint8)
    if hidden is not None:
        image = shade(image, hidden)
        extras["hidden"] = round(float(hidden.mean()), 6)
    if segmented is not None:
        extras["task"] = "segmentation"
        extras["region"] = "given" if segmented.region is not None else "predicted pixels"
        order = np.argsort(-segmented.areas, kind="stable")
        extras["segments"] = [
            {"index": int(k), "label": model.info.label(int(k)), "share": float(segmented.areas[k])}
            for k in order
            if segmented.areas[k] > 0
        ]
    if detected is not None:
        extras["task"] = "detection"
        extras["detections"] = [
            {
                "index": i,
                "class": d.label,
                "label": model.info.label(d.label),
                "score": round(d.score, 6),
                "box": [round(v, 2) for v in d.box],
            }
            for i, d in enumerate(detected.detections)
        ]
    return Explanation(
        attributions=maps,
        targets=[as_target(i) for i in targets],
        image=image,
        method=method_cls.name,
        settings=checked.settings.model_dump(mode="json"),
        model=model.info.summary(),
        top=[as_target(int(i)) for i in top],
        signed=method_cls.signed,
        quantity=method_cls.quantity,
        image_name=loaded.name,
        image_sha256=loaded.sha256,
        reference=method_cls.reference,
        version=__version__,
        timings={
            **{k: round(v, 6) for k, v in timings.items()},
            "faithfulness_s": round(t3 - t2, 6),
            "total_s": round(time.perf_counter() - started, 6),
        },
        extras=extras,
        segmentation=segmented.labels if segmented is not None else None,
    )


class Probe:
    """One image made ready once for many predictions with parts of it hidden (the
    explore page asks for one at every brush stroke): the image is decoded, resized and
    normalised once, and its own probabilities kept to compare against."""

    def __init__(self, model: Model, image: Any, max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
        if model.info.task != "classification":
            raise CapabilityError(
                f"model {model.info.name!r} is a {model.info.task} model; predictions with "
                "hidden pixels (the explore page) serve classifiers"
            )
        self.model = model
        self.image = image if isinstance(image, LoadedImage) else load_image(image, max_pixels)
        self.batch = model.preprocess([self.image.image])
        self.original = model.probabilities(self.batch)[0].astype(np.float64)

    def predict(
        self, hide: Hide | None = None, top_k: int = TOP_CLASSES, target: int | None = None
    ) -> dict[str, Any]:
        """Probabilities with ``hide`` applied: the classes most probable before or
        after (``top_k`` of each), each with its ``probability``, its ``original`` one
        and the ``change``; ``target`` (a class index) is reported on its own too, with
        ``drop`` = original - probability (occlusion's value for a hidden window)."""
        classes = len(self.original)
        if target is not None and not 0 <= target < classes:
            from .core.errors import TargetError

            raise TargetError(f"target {target} is not a class (the model has {classes})")
        batch, hidden = self.batch, 0.0
        if hide is not None:
            mask = hide.mask(self.model, self.image.image)
            batch, hidden = hide.apply(self.batch, mask), float(mask.mean())
        probabilities = self.model.probabilities(batch)[0].astype(np.float64)
        k = min(top_k, classes)
        order = np.argsort(-self.original, kind="stable")
        after = np.argsort(-probabilities, kind="stable")
        shown = set(order[:k].tolist()) | set(after[:k].tolist())

        def entry(i: int) -> dict[str, Any]:
            p, o = float(probabilities[i]), float(self.original[i])
            return {
                "index": i,
                "label": self.model.info.label(i),
                "probability": p,
                "original": o,
                "change": p - o,
            }

        answer: dict[str, Any] = {
            "hidden": round(hidden, 6),
            "classes": [entry(int(i)) for i in order if int(i) in shown],
            "target": None,
        }
        if target is not None:
            drop = float(self.original[target] - probabilities[target])
            answer["target"] = {**entry(target), "drop": drop}
        return answer
