"""Dataset audits: where a model's evidence lies across a whole dataset.

:func:`run_audit` explains every image with one method through the method's batch path,
measures each map against the object's box or mask (``in_box``, ``pointing``),
clusters each class's maps into strategies (SpRAy) and flags those whose evidence lies
outside the object or in one fixed place. Results are written as they are computed, so
an interrupted audit resumes where it stopped. ``engine="ray"`` runs the same work on
Ray. See ``docs/audit.md``.
"""

from __future__ import annotations

import json
import math
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import MissingDependencyError
from ..core.images import load_image
from ..core.model import Model
from ..core.progress import Progress, ProgressCallback
from ..requests import AuditRequest, Checked
from .dataset import DEMO_DATASET, DatasetError, Item, resolve
from .engine import MAPS, AuditFolder, run_local
from .report import overlay, thumbnail
from .result import COLUMNS, Audit, strategies_of

__all__ = ["DEMO_DATASET", "Audit", "DatasetError", "load_audit", "resolve", "run_audit"]


def _pandas() -> Any:
    try:
        import pandas
    except ImportError:
        raise MissingDependencyError("pandas", "audit", "A dataset audit") from None
    return pandas


def run_audit(
    model: Model,
    images: Any,
    checked: Checked[AuditRequest],
    labels: Sequence[Any] | bool | None = None,
    boxes: Sequence[Any] | None = None,
    masks: Sequence[Any] | None = None,
    out: str | Path | None = None,
    progress: Progress | ProgressCallback | None = None,
    model_ref: str | None = None,
) -> Audit:
    """Audit ``images`` (see :func:`picasso.audit`) into the folder ``out`` (a
    temporary folder when None). A folder that already holds this audit (same model,
    method, settings and images) is resumed: finished images are not computed again.
    ``model_ref`` (a path or ``demo:NAME``) lets Ray workers load the model themselves."""
    pd = _pandas()
    started = time.perf_counter()
    progress = progress if isinstance(progress, Progress) else Progress(progress)
    items = resolve(images, model, labels, boxes, masks)
    request = checked.request
    folder_path = Path(out) if out is not None else Path(tempfile.mkdtemp(prefix="picasso-audit-"))
    config = {
        "model": model.info.fingerprint,
        "method": request.method,
        "settings": request.settings,
        "items": [item.key for item in items],
    }
    folder = AuditFolder(folder_path, config, model.info.input_size)
    pending = [(row, item) for row, item in enumerate(items) if row not in folder.records]
    done = len(items) - len(pending)
    progress(done, len(items))

    def report(count: int) -> None:
        nonlocal done
        done += count
        progress(done, len(items))

    if request.engine == "ray":
        from .ray_engine import run_ray

        run_ray(model, model_ref, checked, folder, items, pending, report, progress)
    else:
        run_local(model, checked, folder, pending, request.batch_size, report, progress)
    computed = time.perf_counter()

    table = pd.DataFrame([folder.records[row] for row in range(len(items))])
    strategies, clusters = strategies_of(table, folder.maps)
    table["cluster"] = clusters
    extra = [c for c in table.columns if c not in COLUMNS and not c.endswith("_index")]
    table = table[[*COLUMNS, *extra]]
    audit = Audit(
        table=table,
        maps=np.load(folder_path / MAPS, mmap_mode="r"),
        strategies=strategies,
        folder=folder_path,
        model=model.info.summary(),
        method=request.method,
        settings=request.settings,
        dataset=request.dataset or _describe(images),
    )
    _write_thumbnails(audit, items, model)
    audit.timings = {
        "explain_s": round(computed - started, 3),
        "total_s": round(time.perf_counter() - started, 3),
        "images_per_s": round(len(pending) / max(computed - started, 1e-9), 2),
    }
    audit.save()
    return audit


def _describe(images: Any) -> str:
    if isinstance(images, (str, Path)):
        return str(images)
    return f"{len(images)} images"


def _write_thumbnails(audit: Audit, items: list[Item], model: Model) -> None:
    """Overlays of the examples the report shows (the images may not be files)."""
    from .report import EXAMPLES

    folder = audit.folder / "thumbs"
    folder.mkdir(exist_ok=True)
    for strategy in audit.strategies:
        for row in strategy.rows[:EXAMPLES]:
            path = folder / f"{row}.png"
            if path.is_file():
                continue
            fitted = np.asarray(model.fit_image(load_image(items[row].source).image))
            from PIL import Image

            Image.fromarray(thumbnail(overlay(fitted, np.asarray(audit.maps[row])))).save(path)


def load_audit(folder: str | Path) -> Audit:
    """A saved audit, read back from its folder (``summary.json``, the table, the
    maps); strategies are restored from the summary."""
    from .strategies import Strategy

    pd = _pandas()
    folder = Path(folder)
    summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    table = pd.read_parquet(folder / "audit.parquet")
    maps = np.load(folder / MAPS, mmap_mode="r")
    strategies = []
    for s in summary["strategies"]:
        rows = s["rows"]
        members = np.abs(np.nan_to_num(np.asarray(maps[rows], np.float64)))
        totals = members.sum(axis=(1, 2), keepdims=True)
        unit = np.where(totals > 0, members / np.where(totals > 0, totals, 1), 0)
        strategies.append(
            Strategy(
                label=s["label"],
                cluster=s["cluster"],
                rows=rows,
                share=s["share"],
                accuracy=_nan(s["accuracy"]),
                in_box=_nan(s["in_box"]),
                box_share=_nan(s["box_share"]),
                mean_map=unit.mean(axis=0).astype(np.float32),
                band=s["band"],
                band_share=s["band_share"],
                consistency=s["consistency"],
                flags=list(s["flags"]),
                description=s["description"],
            )
        )
    return Audit(
        table=table,
        maps=maps,
        strategies=strategies,
        folder=folder,
        model=summary["model"],
        method=summary["method"],
        settings=summary["settings"],
        dataset=summary["dataset"],
        timings=summary.get("timings", {}),
    )


def _nan(value: float | None) -> float:
    return math.nan if value is None else float(value)
