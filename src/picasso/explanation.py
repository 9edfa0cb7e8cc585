"""The result of explaining one image: maps, targets, settings and provenance.

An :class:`Explanation` is data; drawing and writing it is the render layer's work
(:mod:`picasso.render`), which :meth:`Explanation.save` hands it to."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .core.targets import Target

if TYPE_CHECKING:
    from .render import Display


@dataclass
class Explanation:
    """Attribution maps for one image and everything needed to reproduce them.

    Attributes:
        attributions: float32 array (targets, H, W) at model input size, one map per
            target (empty for methods that produce no map).
        targets: the explained classes, in the order of ``attributions``.
        image: the input as the model saw it (uint8, H x W x 3, resized/cropped).
        method: the method's name; ``settings`` its validated settings.
        model: the model summary (name, framework, sha256, fingerprint, ...).
        top: the model's top classes for this image (for the probabilities table).
        timings: seconds spent per phase.
        segmentation: for segmentation models, the predicted class of every pixel
            (H, W) at model input size; ``top`` then ranks classes by their share of
            the pixels, and each target's ``probability`` is that share.
    """

    attributions: np.ndarray
    targets: list[Target]
    image: np.ndarray
    method: str
    settings: dict[str, Any]
    model: dict[str, Any]
    top: list[Target] = field(default_factory=list)
    signed: bool = False
    quantity: str = ""  # what the values measure (the colour bar's label)
    image_name: str = "image"
    image_sha256: str = ""
    reference: str = ""
    version: str = ""
    timings: dict[str, float] = field(default_factory=dict)
    extras: dict[str, Any] = field(default_factory=dict)
    segmentation: np.ndarray | None = None

    @property
    def attribution(self) -> np.ndarray:
        """The (H, W) map of the first target."""
        if len(self.attributions) == 0:
            raise ValueError(f"method {self.method!r} produces no attribution map")
        return self.attributions[0]

    def summary(self, display: Display | None = None) -> dict[str, Any]:
        """A JSON-serialisable record of the result (no arrays); ``limits`` are those
        of the colour scale under ``display`` (the default one when not given)."""
        from .render import Display, colored

        display = display or Display()
        maps = [
            {
                "min": float(m.min()),
                "max": float(m.max()),
                "sum": float(m.sum()),
                "limits": list(colored(m, self.signed, display)[1]),  # of the drawn colours
            }
            for m in self.attributions
        ]
        return {
            "picasso_version": self.version,
            "image": {"name": self.image_name, "sha256": self.image_sha256},
            "model": self.model,
            "method": self.method,
            "reference": self.reference,
            "settings": self.settings,
            "targets": [t._asdict() for t in self.targets],
            "top": [t._asdict() for t in self.top],
            "maps": maps,
            "map_shape": list(self.attributions.shape[1:]) if len(self.attributions) else None,
            "signed": self.signed,
            "quantity": self.quantity,
            "display": display.summary(),
            "timings": self.timings,
            "extras": _jsonable(self.extras),
        }

    # -- notebooks ---------------------------------------------------------------------
    def _repr_png_(self) -> bytes:
        """Jupyter shows the overlay (one panel per target, the first 8)."""
        from .render import figure_png, overlay_figure

        return figure_png(overlay_figure(self))

    def _repr_html_(self) -> str:
        """Jupyter's rich view: the overlay and a row per target."""
        import base64
        import html

        rows = "".join(
            f"<tr><td>{html.escape(t.label)}</td><td>{t.index}</td>"
            f"<td>{t.probability:.3f}</td></tr>"
            for t in self.targets
        )
        picture = base64.b64encode(self._repr_png_()).decode("ascii")
        return (
            f"<div><p><strong>{html.escape(self.method)}</strong> on "
            f"{html.escape(str(self.model.get('name', '')))} · {html.escape(self.image_name)}"
            f"</p><img src='data:image/png;base64,{picture}' style='max-width:100%'>"
            f"<table><tr><th>class</th><th>index</th><th>probability</th></tr>{rows}</table>"
            "</div>"
        )

    def plot(self, ax: Any = None, target: int = 0, display: Display | None = None) -> Any:
        """Draw one target's map over the image on a matplotlib ``ax`` (a new figure
        when None); returns the axes."""
        from .render import draw_overlay

        if ax is None:
            import matplotlib.pyplot as plt

            _, ax = plt.subplots(figsize=(4.5, 4.5))
        draw_overlay(ax, self, target, display)
        return ax

    def show(self, target: int = 0, display: Display | None = None) -> None:
        """:meth:`plot`, then ``matplotlib.pyplot.show()``."""
        import matplotlib.pyplot as plt

        self.plot(target=target, display=display)
        plt.show()

    def save(
        self,
        directory: str | Path,
        stem: str | None = None,
        check: Callable[[], None] | None = None,
        display: Display | None = None,
    ) -> dict[str, Path]:
        """Write ``<stem>.<method>.png`` (overlay of the first 8 targets), ``.npy`` (raw
        maps, targets x H x W) and ``.json`` (summary) into ``directory``; returns the
        paths. ``check()``, if given, is called between drawing steps (and may raise to
        stop)."""
        from .render import save_explanation  # render imports matplotlib: keep it lazy

        return save_explanation(self, Path(directory), stem or self.image_name, check, display)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist() if value.size <= 64 else f"array{list(value.shape)}"
    if isinstance(value, np.generic):
        return value.item()
    return value
