"""Picasso: see what an image classifier looks at.

    import picasso
    model = picasso.load_model("demo:tanks-biased")
    exp = picasso.explain(model, "photo.png", method="occlusion", window=16, stride=8)
    exp.save("out/")

Importing this package loads no deep-learning framework; a framework is imported when
a model that needs it is loaded.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._version import __version__
from .core.errors import PicassoError
from .core.method import Method, MethodOutput, MethodSettings
from .core.model import Model
from .core.progress import Progress
from .core.targets import Target
from .explanation import Explanation
from .hiding import Hide, Marks
from .models import from_timm, from_torch, load_model

if TYPE_CHECKING:
    from .audits import Audit
    from .plugins import MethodRegistry
    from .sanity import SanityResult

__all__ = [
    "Explanation",
    "Hide",
    "Method",
    "MethodOutput",
    "MethodSettings",
    "Model",
    "PicassoError",
    "Progress",
    "Target",
    "__version__",
    "audit",
    "explain",
    "from_timm",
    "from_torch",
    "load_model",
    "methods",
    "predict",
    "sanity_check",
]


def methods(plugin_dirs: Sequence[str | Path] | None = None) -> dict[str, type[Method]]:
    """Names -> method classes: built-ins and plugins (entry points, plugin folders,
    ``$PICASSO_PLUGINS``)."""
    from .plugins import discover

    return dict(discover(plugin_dirs))


def explain(
    model: Model | str | Path,
    image: Any,
    method: str | type[Method] = "occlusion",
    target: int | Sequence[int] | None = None,
    top_k: int | None = None,
    progress: Progress | Callable[[int, int], None] | None = None,
    plugin_dirs: Sequence[str | Path] | None = None,
    faithfulness: bool = False,
    hide: Hide | dict[str, Any] | None = None,
    region: Marks | dict[str, Any] | None = None,
    preview: Callable[[Any], None] | None = None,
    **settings: Any,
) -> Explanation:
    """Explain why ``model`` classifies ``image`` as it does.

    Args:
        model: a loaded model, or anything :func:`load_model` accepts.
        image: a file path, a PIL image, bytes or an (H, W, 3) uint8 array.
        method: a method name (see :func:`methods`) or class.
        target: class index (or indices) to explain; ``None`` explains the top-1 class.
        top_k: explain the k most probable classes instead.
        progress: ``callback(done, total)`` or a :class:`Progress` (which can cancel).
        plugin_dirs: extra plugin folders to search for ``method``.
        faithfulness: also compute deletion/insertion curves and their areas per
            target (``exp.extras["faithfulness"]``, Petsiuk et al. 2018).
        hide: hide part of the image from the model first (a :class:`Hide`, or its
            fields as a dict, e.g. ``{"boxes": [(0, 0, 32, 16)], "fill": "blur"}``).
        region: segmentation models: the pixels whose class logits are summed into the
            explained score (boxes or a mask PNG, as ``hide``); default: the pixels the
            model assigns to the class.
        preview: ``callback(maps)`` with partial maps (targets, H, W) while the method
            works, at most two a second: occlusion sends a whole coarse map after a
            sixteenth of its windows, then refined ones; RISE its running average.
        **settings: the method's settings, e.g. ``window=16, stride=8``.
    Returns:
        an :class:`Explanation`; ``.attribution`` is the first target's (H, W) map.
    """
    from .requests import ExplainRequest, check
    from .service import explain as run

    model, registry, name = _resolve(model, method, plugin_dirs)
    request = ExplainRequest(
        method=name,
        settings=settings,
        target=target,
        top_k=top_k,
        faithfulness=faithfulness,
        hide=Hide.model_validate(hide) if hide is not None else None,
        region=Marks.model_validate(region) if region is not None else None,
    )
    if preview is not None:
        progress = Progress(
            progress.__call__ if isinstance(progress, Progress) else progress, preview=preview
        )
    return run(model, image, check(request, model, registry), progress=progress)


def predict(
    model: Model | str | Path,
    image: Any,
    hide: Hide | dict[str, Any] | None = None,
    top_k: int = 5,
    target: int | None = None,
) -> dict[str, Any]:
    """Class probabilities of ``image``, with part of it hidden if ``hide`` says so:
    the ``top_k`` classes before and after, each with ``probability``, ``original``
    and ``change``; ``hidden`` (the share of the input hidden); with ``target``, that
    class with its ``drop``. For many masks on one image, keep a
    :class:`picasso.service.Probe` (the image is prepared once)."""
    from .service import Probe

    if not isinstance(model, Model):
        model = load_model(model)
    rule = Hide.model_validate(hide) if hide is not None else None
    return Probe(model, image).predict(rule, top_k=top_k, target=target)


def sanity_check(
    model: Model | str | Path,
    image: Any,
    method: str | type[Method] = "saliency",
    target: int | None = None,
    stages: int = 5,
    threshold: float = 0.5,
    plugin_dirs: Sequence[str | Path] | None = None,
    progress: Progress | Callable[[int, int], None] | None = None,
    **settings: Any,
) -> SanityResult:
    """Does ``method`` explain the model or just show the image? Re-initialises the
    model's layers from the output down and compares maps (Adebayo et al. 2018).

    Returns a :class:`picasso.sanity.SanityResult` with the Spearman correlation after
    each stage and a ``verdict``: ``"pass"`` when the fully randomised model's map
    correlates below ``threshold`` with the trained model's.
    """
    from .requests import SanityRequest, check
    from .sanity import sanity_check as run

    model, registry, name = _resolve(model, method, plugin_dirs)
    request = SanityRequest(
        method=name, settings=settings, target=target, stages=stages, threshold=threshold
    )
    return run(model, image, check(request, model, registry), progress=progress)


def _resolve(
    model: Model | str | Path, method: str | type[Method], plugin_dirs: Sequence[str | Path] | None
) -> tuple[Model, MethodRegistry, str]:
    """A loaded model, the registry to find the method in, and the method's name (a
    method given as a class is looked up in a registry of its own)."""
    from .plugins import MethodRegistry, discover

    if not isinstance(model, Model):
        model = load_model(model)
    if isinstance(method, type):
        return model, MethodRegistry({method.name: method}, []), method.name
    return model, discover(plugin_dirs), method


def audit(
    model: Model | str | Path,
    images: Any,
    method: str | type[Method] = "grad-cam",
    labels: Sequence[Any] | bool | None = None,
    boxes: Sequence[Any] | None = None,
    masks: Sequence[Any] | None = None,
    engine: str = "local",
    batch_size: int | None = None,
    progress: Progress | Callable[[int, int], None] | None = None,
    out: str | Path | None = None,
    workers: int = 1,
    gpus_per_worker: float = 0.0,
    ray_address: str | None = None,
    plugin_dirs: Sequence[str | Path] | None = None,
    **settings: Any,
) -> Audit:
    """Explain a whole dataset and find where the model's evidence lies.

    Args:
        model: a loaded model, or anything :func:`load_model` accepts.
        images: a folder (recursive; class sub-folders named after the model's labels
            give the labels), a CSV/Parquet manifest (``image``, optional ``label``,
            ``x0, y0, x1, y1``, ``mask``), a sequence of anything :func:`explain`
            accepts, or ``"demo:tanks-dataset"``.
        method: the visualization (a name or class); ``**settings`` its settings.
        labels: class indices or names aligned with the images (``False``: ignore the
            labels of class folders or a manifest); the explained target is the label
            when known, else the predicted class.
        boxes: ``(x0, y0, x1, y1)`` per image in its own pixels, or None for an image
            without an object; ``masks``: boolean arrays or mask files per image.
        engine: ``"local"`` or ``"ray"`` (``workers`` actors with ``gpus_per_worker``
            GPUs each, on ``ray_address`` or a local Ray started on demand).
        batch_size: images explained per step (default 32), and the method's own
            ``batch_size`` (inputs per model call) when given.
        progress: ``callback(done, total)`` in images, or a :class:`Progress`.
        out: the folder results are written to as they are computed; an interrupted
            audit run again with the same folder continues where it stopped.
    Returns:
        an :class:`~picasso.audits.Audit`: ``.table``, ``.maps``, ``.classes``,
        ``.strategies``, ``.save(dir)``.
    """
    from .audits import run_audit
    from .requests import AuditRequest, check

    loaded, registry, name = _resolve(model, method, plugin_dirs)
    if batch_size is not None:  # batch sizes never change results: one number for both
        settings["batch_size"] = batch_size
    request = AuditRequest(
        method=name,
        settings=settings,
        dataset=str(images) if isinstance(images, (str, Path)) else "",
        batch_size=batch_size or 32,
        engine=engine,
        workers=workers,
        gpus_per_worker=gpus_per_worker,
        ray_address=ray_address,
    )
    model_ref = str(model) if isinstance(model, (str, Path)) else None
    return run_audit(
        loaded,
        images,
        check(request, loaded, registry),
        labels=labels,
        boxes=boxes,
        masks=masks,
        out=out,
        progress=progress,
        model_ref=model_ref,
    )
