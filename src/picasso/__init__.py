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
from .models import from_torch, load_model

if TYPE_CHECKING:
    from .plugins import MethodRegistry
    from .sanity import SanityResult

__all__ = [
    "Explanation",
    "Method",
    "MethodOutput",
    "MethodSettings",
    "Model",
    "PicassoError",
    "Progress",
    "Target",
    "__version__",
    "explain",
    "from_torch",
    "load_model",
    "methods",
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
        **settings: the method's settings, e.g. ``window=16, stride=8``.
    Returns:
        an :class:`Explanation`; ``.attribution`` is the first target's (H, W) map.
    """
    from .requests import ExplainRequest, check
    from .service import explain as run

    model, registry, name = _resolve(model, method, plugin_dirs)
    request = ExplainRequest(
        method=name, settings=settings, target=target, top_k=top_k, faithfulness=faithfulness
    )
    return run(model, image, check(request, model, registry), progress=progress)


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
