"""Rendering explanations: overlay PNG, raw ``.npy`` maps and a ``.json`` summary.

Signed maps (occlusion) use a diverging colormap centred on zero, so red supports the
target and blue argues against it; magnitude maps (saliency) use a sequential one.
Methods without maps (class probabilities) render a bar chart.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from .explanation import Explanation
    from .sanity import SanityResult

DIVERGING = "RdBu_r"
SEQUENTIAL = "inferno"
OPACITY = 0.6
#: Panels in the overlay PNG: the first targets'; every map is in the .npy and layers.
MAX_PANELS = 8


def color_limits(values: np.ndarray, signed: bool) -> tuple[float, float]:
    """The value range a colormap spans: symmetric around zero for signed maps (so
    white means no effect), the map's own range for magnitudes."""
    if signed:
        bound = float(np.abs(values).max()) or 1.0
        return -bound, bound
    low, high = float(values.min()), float(values.max())
    return low, high if high > low else low + 1.0


def _safe_stem(stem: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._")
    return cleaned[:100] or "image"


def overlay_figure(exp: Explanation, check: Callable[[], None] | None = None) -> Figure:
    """One panel per target: the input with the map over it, a color bar and the
    target's label and probability."""
    from matplotlib.figure import Figure

    if len(exp.attributions) == 0:
        return probabilities_figure(exp)
    n = min(len(exp.targets), MAX_PANELS)  # drawing costs ~0.1 s a panel: a bounded figure
    fig = Figure(figsize=(4.2 * n, 4.4), dpi=100, layout="constrained")
    axes = fig.subplots(1, n, squeeze=False)[0]
    cmap = DIVERGING if exp.signed else SEQUENTIAL
    for ax, target, attribution in zip(axes, exp.targets, exp.attributions[:n], strict=False):
        if check is not None:
            check()
        vmin, vmax = color_limits(attribution, exp.signed)
        ax.imshow(exp.image, interpolation="nearest")
        shown = ax.imshow(
            attribution, cmap=cmap, vmin=vmin, vmax=vmax, alpha=OPACITY, interpolation="nearest"
        )
        ax.set_title(f"{target.label} (p={target.probability:.3f})", fontsize=10)
        ax.set_axis_off()
        bar = fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.02)
        bar.set_label("score drop" if exp.signed else "magnitude", fontsize=8)
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
    exp: Explanation, directory: Path, stem: str, check: Callable[[], None] | None = None
) -> dict[str, Path]:
    """Write ``<stem>.<method>.{png,npy,json}`` into ``directory``. ``check()`` is called
    between drawing steps (a job's cancellation and time limit stop rendering too)."""
    directory.mkdir(parents=True, exist_ok=True)
    base = directory / f"{_safe_stem(stem)}.{exp.method}"
    paths = {
        "png": base.with_name(base.name + ".png"),
        "npy": base.with_name(base.name + ".npy"),
        "json": base.with_name(base.name + ".json"),
    }
    overlay_figure(exp, check).savefig(paths["png"])
    np.save(paths["npy"], exp.attributions.astype(np.float32))
    summary = exp.summary()
    summary["files"] = {k: p.name for k, p in paths.items()}
    paths["json"].write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return paths


def save_layers(
    exp: Explanation, directory: Path, check: Callable[[], None] | None = None
) -> dict[str, Path]:
    """The pieces the web page stacks itself: ``input.png`` (the image as the model saw
    it), ``map-<k>.png`` per target (the colored map alone, at model input size) and
    ``colorbar.png`` (the colormap from the lower to the upper limit). The limits are
    those of :func:`color_limits`, recorded per map in the JSON summary."""
    from matplotlib import colormaps
    from PIL import Image

    directory.mkdir(parents=True, exist_ok=True)
    paths = {"input": directory / "input.png", "colorbar": directory / "colorbar.png"}
    Image.fromarray(exp.image).save(paths["input"])
    cmap = colormaps[DIVERGING if exp.signed else SEQUENTIAL]
    strip = cmap(np.linspace(0.0, 1.0, 256))[None, :, :3]
    Image.fromarray((np.repeat(strip, 12, axis=0) * 255).astype(np.uint8)).save(paths["colorbar"])
    for k, attribution in enumerate(exp.attributions):
        if check is not None:
            check()
        vmin, vmax = color_limits(attribution, exp.signed)
        scaled = np.clip((attribution - vmin) / (vmax - vmin), 0.0, 1.0)
        rgb = (cmap(scaled)[:, :, :3] * 255).astype(np.uint8)
        paths[f"map-{k}"] = directory / f"map-{k}.png"
        Image.fromarray(rgb).save(paths[f"map-{k}"])
    return paths


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
