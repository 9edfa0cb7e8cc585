"""Rendering explanations: overlay PNG, raw ``.npy`` maps and a ``.json`` summary.

Signed maps (occlusion) use a diverging colormap centred on zero, so red supports the
target and blue argues against it; magnitude maps (saliency) use a sequential one.
Methods without maps (class probabilities) render a bar chart.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from .core.errors import SettingsError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from .explanation import Explanation
    from .sanity import SanityResult

DIVERGING = "RdBu_r"
SEQUENTIAL = "inferno"
OPACITY = 0.6
#: Panels in the overlay PNG: the first targets'; every map is in the .npy and layers.
MAX_PANELS = 8


Sign = Literal["auto", "both", "positive", "negative", "absolute"]
#: The colour scale ends at this percentile of the map's magnitudes by default: a few
#: extreme pixels (as Integrated Gradients and saliency have) no longer wash out the rest.
PERCENTILE = 99.5


@dataclass(frozen=True)
class Display:
    """How maps are drawn. ``percentile``: where the colour scale ends, as a percentile
    of the map's magnitudes (100: its largest value); ``colormap``: any matplotlib name
    (default: a diverging one for signed maps, ``inferno`` otherwise); ``sign``: which
    values to show (``both`` signs, only ``positive`` or ``negative`` evidence, or the
    ``absolute`` value; ``auto``: both for signed maps, the value for magnitudes)."""

    percentile: float = PERCENTILE
    colormap: str | None = None
    sign: Sign = "auto"
    #: Fixed colour limits instead of the map's own (e.g. one scale for two maps that
    #: are compared); ``low`` defaults to ``-high`` for signed maps.
    low: float | None = None
    high: float | None = None

    def __post_init__(self) -> None:
        from matplotlib import colormaps

        if not 50 <= self.percentile <= 100:
            raise SettingsError("percentile must be between 50 and 100", {"percentile": ""})
        if self.colormap is not None and self.colormap not in colormaps:
            raise SettingsError(f"unknown colormap {self.colormap!r}", {"colormap": ""})
        if self.sign not in ("auto", "both", "positive", "negative", "absolute"):
            raise SettingsError(f"unknown sign {self.sign!r}", {"sign": ""})
        if self.high is not None and not (
            np.isfinite(self.high) and (self.low is None or self.low < self.high)
        ):
            raise SettingsError("the colour limits must be finite, low below high", {})

    def shown(self, values: np.ndarray, signed: bool) -> tuple[np.ndarray, bool]:
        """The values drawn and whether they are signed (a diverging scale)."""
        sign = self.sign if self.sign != "auto" else ("both" if signed else "value")
        if sign == "positive":
            return np.maximum(values, 0), False
        if sign == "negative":
            return np.maximum(-values, 0), False
        if sign == "absolute":
            return np.abs(values), False
        return values, sign == "both"

    def cmap_name(self, signed: bool) -> str:
        return self.colormap or (DIVERGING if signed else SEQUENTIAL)

    def summary(self) -> dict[str, Any]:
        shown: dict[str, Any] = {
            "percentile": self.percentile,
            "colormap": self.colormap,
            "sign": self.sign,
        }
        if self.high is not None:
            shown.update(low=self.low, high=self.high)
        return shown


def color_limits(
    values: np.ndarray, signed: bool, percentile: float = 100.0
) -> tuple[float, float]:
    """The value range a colormap spans: symmetric around zero for signed maps (so the
    centre colour means no effect), up to ``percentile`` of the magnitudes; for
    magnitudes from the map's minimum up to that percentile of its values."""
    if signed:
        magnitude = np.abs(values)
        bound = float(np.percentile(magnitude, percentile)) or float(magnitude.max()) or 1.0
        return -bound, bound
    low = float(values.min())
    high = float(np.percentile(values, percentile))
    if high <= low:
        high = float(values.max())
    return low, high if high > low else low + 1.0


def colored(
    values: np.ndarray, signed: bool, display: Display
) -> tuple[np.ndarray, tuple[float, float], str, bool]:
    """RGBA (floats in [0, 1]) of a map under ``display``, its limits, colormap and
    whether it was drawn signed. Alpha follows the magnitude, so values near zero leave
    the photo beneath as it is (a white-centred colormap no longer pales it)."""
    from matplotlib import colormaps

    shown, diverging = display.shown(values.astype(np.float64), signed)
    low, high = color_limits(shown, diverging, display.percentile)
    if display.high is not None:
        high = display.high
        low = display.low if display.low is not None else (-high if diverging else low)
    name = display.cmap_name(diverging)
    scaled = np.clip((shown - low) / (high - low), 0.0, 1.0)
    rgba = colormaps[name](scaled)
    if diverging:
        rgba[..., 3] = np.clip(np.abs(shown) / high, 0.0, 1.0)
    else:
        rgba[..., 3] = scaled
    return rgba, (low, high), name, diverging


def _safe_stem(stem: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._")
    return cleaned[:100] or "image"


def draw_overlay(ax: Any, exp: Explanation, index: int, display: Display | None = None) -> None:
    """Target ``index``'s map over the image on ``ax``, with its colour bar."""
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    display = display or Display()
    target = exp.targets[index]
    rgba, (vmin, vmax), name, _ = colored(exp.attributions[index], exp.signed, display)
    rgba[..., 3] *= OPACITY
    ax.imshow(exp.image, interpolation="nearest")
    ax.imshow(rgba, interpolation="nearest")
    detections = exp.extras.get("detections")
    if detections and 0 <= target.index < len(detections):  # the explained box
        from matplotlib.patches import Rectangle

        x0, y0, x1, y1 = detections[target.index]["box"]
        box = Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, lw=2, ec="#ffcc33")
        ax.add_patch(box)
        ax.set_title(f"{target.label} (score={target.probability:.3f})", fontsize=10)
    else:
        ax.set_title(f"{target.label} (p={target.probability:.3f})", fontsize=10)
    ax.set_axis_off()
    scale = ScalarMappable(norm=Normalize(vmin, vmax), cmap=name)
    bar = ax.figure.colorbar(scale, ax=ax, fraction=0.046, pad=0.02)
    bar.set_label(exp.quantity or ("attribution" if exp.signed else "magnitude"), fontsize=8)


def figure_png(figure: Figure) -> bytes:
    import io

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def overlay_figure(
    exp: Explanation, check: Callable[[], None] | None = None, display: Display | None = None
) -> Figure:
    """One panel per target (the first :data:`MAX_PANELS`): the input with the map over
    it, a colour bar labelled with the method's quantity, the target's label and
    probability."""
    from matplotlib.figure import Figure

    display = display or Display()
    if len(exp.attributions) == 0:
        return probabilities_figure(exp)
    n = min(len(exp.targets), MAX_PANELS)  # drawing costs ~0.1 s a panel: a bounded figure
    fig = Figure(figsize=(4.2 * n, 4.4), dpi=100, layout="constrained")
    axes = fig.subplots(1, n, squeeze=False)[0]
    for index, ax in enumerate(axes):
        if check is not None:
            check()
        draw_overlay(ax, exp, index, display)
    more = f" (the first {n} of {len(exp.targets)} classes)" if len(exp.targets) > n else ""
    fig.suptitle(f"{exp.method} — {exp.model.get('name', '')}{more}", fontsize=11)
    return fig


def probabilities_figure(exp: Explanation) -> Figure:
    from matplotlib.figure import Figure

    classes = exp.extras.get("classes") or [t._asdict() for t in exp.top]
    fig = Figure(figsize=(7.5, 3.6), dpi=100, layout="constrained")
    ax_img, ax_bar = fig.subplots(1, 2, width_ratios=[1, 1.6])
    ax_img.imshow(exp.image, interpolation="nearest")
    ax_img.set_axis_off()
    labels = [c["label"] for c in classes][::-1]
    probs = [c["probability"] for c in classes][::-1]
    ax_bar.barh(range(len(probs)), probs, color="#3b6ea8")
    ax_bar.set_yticks(range(len(probs)), labels, fontsize=9)
    ax_bar.set_xlim(0, 1)
    ax_bar.set_xlabel("probability")
    for y, p in enumerate(probs):
        ax_bar.text(min(p + 0.02, 0.85), y, f"{p:.3f}", va="center", fontsize=8)
    fig.suptitle(f"class probabilities — {exp.model.get('name', '')}", fontsize=11)
    return fig


def save_explanation(
    exp: Explanation,
    directory: Path,
    stem: str,
    check: Callable[[], None] | None = None,
    display: Display | None = None,
) -> dict[str, Path]:
    """Write ``<stem>.<method>.{png,npy,json}`` into ``directory``. ``check()`` is called
    between drawing steps (a job's cancellation and time limit stop rendering too)."""
    directory.mkdir(parents=True, exist_ok=True)
    if stem == "image" and exp.image_sha256:  # no file name: the content names it
        stem = f"image-{exp.image_sha256[:12]}"
    base = directory / f"{_safe_stem(stem)}.{exp.method}"
    if _holds_another_image(base.with_name(base.name + ".json"), exp.image_sha256):
        base = directory / f"{_safe_stem(stem)}-{exp.image_sha256[:8]}.{exp.method}"
    paths = {
        "png": base.with_name(base.name + ".png"),
        "npy": base.with_name(base.name + ".npy"),
        "json": base.with_name(base.name + ".json"),
    }
    display = display or Display()
    overlay_figure(exp, check, display).savefig(paths["png"])
    np.save(paths["npy"], exp.attributions.astype(np.float32))
    if exp.segmentation is not None:
        paths["segmentation"] = base.with_name(base.name + ".segmentation.png")
        segmentation_png(exp.segmentation).save(paths["segmentation"])
    summary = exp.summary(display)
    summary["files"] = {k: p.name for k, p in paths.items()}
    paths["json"].write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return paths


def _holds_another_image(summary: Path, sha256: str) -> bool:
    """Whether ``summary`` is the result of a different image (same stem, other
    content): its results are not overwritten."""
    if not summary.is_file() or not sha256:
        return False
    try:
        return json.loads(summary.read_text(encoding="utf-8"))["image"]["sha256"] != sha256
    except (ValueError, KeyError, TypeError, OSError):
        return False


def save_layers(
    exp: Explanation,
    directory: Path,
    check: Callable[[], None] | None = None,
    display: Display | None = None,
) -> dict[str, Path]:
    """The pieces the web page stacks itself: ``input.png`` (the image as the model saw
    it), ``map-<k>.png`` per target (the coloured map alone, at model input size, its
    alpha following the magnitude) and ``colorbar.png`` (the colormap from the lower to
    the upper limit). The limits are those recorded per map in the JSON summary."""
    from PIL import Image

    display = display or Display()
    directory.mkdir(parents=True, exist_ok=True)
    paths = {"input": directory / "input.png", "colorbar": directory / "colorbar.png"}
    Image.fromarray(exp.image).save(paths["input"])
    _, diverging = display.shown(np.zeros(1), exp.signed)
    colorbar_png(display.cmap_name(diverging)).save(paths["colorbar"])
    for k, attribution in enumerate(exp.attributions):
        if check is not None:
            check()
        paths[f"map-{k}"] = directory / f"map-{k}.png"
        map_png(attribution, exp.signed, display).save(paths[f"map-{k}"])
    if exp.segmentation is not None:
        from PIL import Image

        paths["segmentation"] = directory / "segmentation.png"
        segmentation_png(exp.segmentation).save(paths["segmentation"])
        if exp.segmentation.max() < 256:  # the class of every pixel, for the page's picker
            paths["labels"] = directory / "labels.png"
            Image.fromarray(exp.segmentation.astype(np.uint8), "L").save(paths["labels"])
    return paths


def segment_colours(count: int) -> np.ndarray:
    """RGB (count, 3) uint8: a distinct colour per class (tab20, repeated)."""
    from matplotlib import colormaps

    table = colormaps["tab20"](np.arange(count) % 20)[:, :3]
    return (table * 255).round().astype(np.uint8)


def segmentation_png(labels: np.ndarray) -> Any:
    """Predicted classes as an RGBA image: each class its colour, half transparent."""
    from PIL import Image

    colours = segment_colours(int(labels.max()) + 1)
    rgba = np.empty((*labels.shape, 4), np.uint8)
    rgba[..., :3] = colours[labels]
    rgba[..., 3] = 150
    return Image.fromarray(rgba, "RGBA")


def full_size_overlay(
    exp: Explanation,
    original: Any,
    region: tuple[float, float, float, float],
    index: int = 0,
    display: Display | None = None,
) -> Any:
    """Target ``index``'s map over the original image at its own size (PIL): the map is
    resized onto the part of the image the model saw (``region``, from the model's
    preprocessing); the rest of the image is shown as it is."""
    from PIL import Image

    display = display or Display()
    base = original.convert("RGBA")
    rgba, _, _, _ = colored(exp.attributions[index], exp.signed, display)
    rgba[..., 3] *= OPACITY
    heat = rgba_png(rgba)
    x0, y0, x1, y1 = region
    size = (max(1, round(x1 - x0)), max(1, round(y1 - y0)))
    layer = Image.new("RGBA", base.size, (0, 0, 0, 0))
    layer.paste(heat.resize(size, Image.Resampling.BILINEAR), (round(x0), round(y0)))
    return Image.alpha_composite(base, layer).convert("RGB")


def preview_png(image: np.ndarray, values: np.ndarray, signed: bool) -> Any:
    """A partial map over the image as the model saw it (uint8 H x W x 3): what a
    running job's page shows while the map fills."""
    from PIL import Image

    rgba, _, _, _ = colored(values, signed, Display())
    rgba[..., 3] *= OPACITY
    base = Image.fromarray(image).convert("RGBA")
    return Image.alpha_composite(base, rgba_png(rgba)).convert("RGB")


def map_png(values: np.ndarray, signed: bool, display: Display) -> Any:
    """A map as an RGBA PIL image under ``display``."""
    rgba, _, _, _ = colored(values, signed, display)
    return rgba_png(rgba)


def rgba_png(rgba: np.ndarray) -> Any:
    """RGBA floats in [0, 1] (as :func:`colored` gives them) as a PIL image."""
    from PIL import Image

    return Image.fromarray((rgba * 255).round().astype(np.uint8), mode="RGBA")


def colorbar_png(name: str) -> Any:
    """The colormap as a 256 x 12 strip."""
    from matplotlib import colormaps
    from PIL import Image

    strip = colormaps[name](np.linspace(0.0, 1.0, 256))[None, :, :3]
    return Image.fromarray((np.repeat(strip, 12, axis=0) * 255).astype(np.uint8))


def save_sanity(result: SanityResult, directory: Path, stem: str) -> dict[str, Path]:
    """``<stem>.sanity.json`` and ``<stem>.sanity.png``: the input, the trained map and
    the map after each randomisation stage, each map on its own colour scale."""
    from matplotlib.figure import Figure

    directory.mkdir(parents=True, exist_ok=True)
    base = directory / f"{_safe_stem(stem)}.sanity"
    paths = {"json": base.with_name(base.name + ".json"), "png": base.with_name(base.name + ".png")}
    maps = result.maps if result.maps is not None else np.zeros((0, 1, 1), np.float32)
    panels = len(maps) + (1 if result.image is not None else 0)
    fig = Figure(figsize=(2.2 * max(panels, 1), 2.8), dpi=100, layout="constrained")
    axes = fig.subplots(1, max(panels, 1), squeeze=False)[0]
    titles = ["trained"] + [
        f"{s['layers_randomized']} layers\n"
        + ("constant" if s.get("constant") else f"ρ={s['spearman']:.2f}")
        for s in result.steps
    ]
    index = 0
    if result.image is not None:
        axes[0].imshow(result.image, interpolation="nearest")
        axes[0].set_title("input", fontsize=8)
        index = 1
    for ax, values, title in zip(axes[index:], maps, titles, strict=False):
        ax.imshow(values, cmap=SEQUENTIAL, interpolation="nearest")
        ax.set_title(title, fontsize=8)
    for ax in axes:
        ax.set_axis_off()
    fig.suptitle(f"sanity check of {result.method}: {result.verdict}", fontsize=10)
    fig.savefig(paths["png"])
    paths["json"].write_text(json.dumps(result.summary(), indent=2) + "\n", encoding="utf-8")
    return paths
