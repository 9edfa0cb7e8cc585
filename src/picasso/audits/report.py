"""The audit report: what a person reads first (the flagged strategies, in words), the
classes, and each class's strategies with their mean map and example images.

``report.html`` is self-contained (its style inline, images as data URIs); the web app
shows the same body under its own style sheet, with each example linked to that image's
regular results."""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

if TYPE_CHECKING:
    from .result import Audit

CSS = Path(__file__).parent / "static" / "report.css"
EXAMPLES = 6  # example images shown per strategy
THUMB = 96  # their side, pixels


def _png(array: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def heat(values: np.ndarray) -> np.ndarray:
    """A map as RGB (inferno), scaled to its own range."""
    from matplotlib import colormaps

    finite = np.nan_to_num(values.astype(np.float64))
    low, high = float(finite.min()), float(finite.max())
    scaled = (finite - low) / (high - low) if high > low else np.zeros_like(finite)
    return (colormaps["inferno"](scaled)[:, :, :3] * 255).astype(np.uint8)


def overlay(image: np.ndarray, attribution: np.ndarray) -> np.ndarray:
    """The map's magnitude over the image: dim where the map is low."""
    magnitude = np.abs(np.nan_to_num(attribution.astype(np.float64)))
    top = float(magnitude.max()) or 1.0
    alpha = (magnitude / top)[:, :, None] * 0.75
    return (image * (1 - alpha) + heat(magnitude) * alpha).astype(np.uint8)


def thumbnail(array: np.ndarray, side: int = THUMB) -> np.ndarray:
    image = Image.fromarray(array)
    scale = side / max(image.size)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    resample = Image.Resampling.NEAREST if scale >= 1 else Image.Resampling.BILINEAR
    return np.asarray(image.resize(size, resample))


def _number(value: float | None, percent: bool = True) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.0%}" if percent else f"{value:.3g}"


def report_body(audit: Audit, link: Callable[[int], str | None] | None = None) -> str:
    """The report as an HTML fragment (class names only: no inline style or script)."""
    e = html.escape
    thumbs = audit.folder / "thumbs"
    parts = [
        '<div class="audit-report">',
        f'<p class="audit-meta">{e(audit.method)} on <strong>{e(audit.model.get("name", ""))}'
        f"</strong> · {len(audit.table)} images ({e(audit.dataset)})"
        + (
            f" · {int(audit.table['error'].notna().sum())} could not be read"
            if audit.table["error"].notna().any()
            else ""
        )
        + (f" · {audit.timings['total_s']:.1f} s" if "total_s" in audit.timings else "")
        + "</p>",
    ]
    flagged = audit.flagged
    if flagged:
        parts.append('<section class="audit-flags"><h2>Look here first</h2><ul>')
        parts += [f"<li>{_strong(s.description)}</li>" for s in flagged]
        parts.append("</ul></section>")
    else:
        parts.append(
            '<section class="audit-flags audit-clear"><h2>No strategy flagged</h2><p>No '
            "cluster of any class keeps its evidence outside the object or in one fixed "
            "band of the image.</p></section>"
        )
    parts.append('<section><h2>Classes</h2><table class="audit-classes"><thead><tr>')
    parts.append(
        "<th>class</th><th>images</th><th>accuracy</th><th>mean in box</th>"
        "<th>median in box</th><th>strategies</th><th>flagged</th></tr></thead><tbody>"
    )
    for row in audit.classes.to_dict("records"):
        parts.append(
            f"<tr><td>{e(str(row['class']))}</td><td>{row['images']}</td>"
            f"<td>{_number(row['accuracy'])}</td><td>{_number(row['mean_in_box'])}</td>"
            f"<td>{_number(row['median_in_box'])}</td><td>{row['clusters']}</td>"
            f"<td>{row['flagged']}</td></tr>"
        )
    parts.append("</tbody></table></section>")
    for strategy in audit.strategies:
        flags = "".join(f'<span class="audit-flag">{e(f)}</span>' for f in strategy.flags)
        parts.append(
            f'<section class="audit-strategy{" flagged" if strategy.flags else ""}">'
            f"<h3>{e(strategy.label)} · strategy {strategy.cluster + 1} {flags}</h3>"
            f"<p>{_strong(strategy.description)}</p>"
            f'<div class="audit-row"><figure><img src="{_png(thumbnail(heat(strategy.mean_map)))}"'
            f' alt="mean map of strategy {strategy.cluster + 1}" width="{THUMB}">'
            f"<figcaption>mean map</figcaption></figure>"
            f'<dl class="audit-numbers"><dt>images</dt><dd>{len(strategy.rows)} '
            f"({strategy.share:.0%})</dd><dt>accuracy</dt><dd>{_number(strategy.accuracy)}</dd>"
            f"<dt>in box</dt><dd>{_number(strategy.in_box)}</dd><dt>{e(strategy.band)} "
            f"band</dt><dd>{strategy.band_share:.0%}</dd><dt>consistency</dt>"
            f"<dd>{strategy.consistency:.2f}</dd></dl>"
        )
        for row in strategy.rows[:EXAMPLES]:
            path = thumbs / f"{row}.png"
            if not path.is_file():
                continue
            with Image.open(path) as thumb:
                source = _png(np.asarray(thumb.convert("RGB")))
            name = str(audit.table["image"].iloc[row])
            figure = (
                f'<img src="{source}" alt="{e(name)}" title="{e(name)}" class="pixelated">'
                f"<figcaption>{e(name)}</figcaption>"
            )
            url = link(row) if link else None
            if url:
                figure = f'<a href="{e(url)}">{figure}</a>'
            parts.append(f"<figure>{figure}</figure>")
        parts.append("</div></section>")
    parts.append("</div>")
    return "\n".join(parts)


def _strong(text: str) -> str:
    """Escape, then show *class* names in bold."""
    escaped = html.escape(text)
    pieces = escaped.split("*")
    return "".join(f"<strong>{p}</strong>" if i % 2 else p for i, p in enumerate(pieces))


def write_report(audit: Audit, path: Path) -> None:
    title = f"Audit of {audit.model.get('name', 'a model')} with {audit.method}"
    document = (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{CSS.read_text(encoding='utf-8')}</style>"
        f"</head><body><h1>{html.escape(title)}</h1>{report_body(audit)}</body></html>\n"
    )
    path.write_text(document, encoding="utf-8")
