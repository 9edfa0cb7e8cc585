"""An audit's result: the table (one row per image), the maps (memory-mapped, in table
order), the strategies of each class, a per-class summary, and everything saved as
files and a self-contained HTML report."""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .strategies import Strategy, cluster, describe

if TYPE_CHECKING:
    import pandas as pd

#: The table's columns, in order (a method's own numbers follow them).
COLUMNS = (
    "image",
    "label",
    "predicted",
    "probability",
    "correct",
    "target",
    "target_probability",
    "in_box",
    "pointing",
    "box_share",
    "cluster",
    "error",
)


@dataclass
class Audit:
    """What :func:`picasso.audit` returns.

    Attributes:
        table: one row per image (see :data:`COLUMNS`): its label and the model's
            prediction, the explained target (the label when known, else the
            prediction), ``in_box`` (share of the map's absolute mass inside the object's
            box or mask, NaN without one), ``pointing`` (the map's largest |value| lies
            inside it), ``cluster`` (the image's strategy within its target class, -1 for
            an image that failed), ``error`` and the method's own numbers.
        maps: (images, H, W) float32, in table order, memory-mapped from ``folder``;
            NaN for failed images. Each equals ``explain(model, image, method,
            target=..., **settings).attribution``.
        strategies: the clusters of each class, with flags and a description.
        folder: where the audit's files are.
    """

    table: pd.DataFrame
    maps: np.ndarray
    strategies: list[Strategy]
    folder: Path
    model: dict[str, Any] = field(default_factory=dict)
    method: str = ""
    settings: dict[str, Any] = field(default_factory=dict)
    dataset: str = ""
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def classes(self) -> pd.DataFrame:
        """Per explained class: images, accuracy, mean and median ``in_box``, number of
        strategies and how many of them are flagged."""
        import pandas as pd

        rows = []
        ok = self.table[self.table["error"].isna()]
        for name, group in ok.groupby("target", sort=True):
            strategies = [s for s in self.strategies if s.label == name]
            correct = group["correct"].dropna()
            rows.append(
                {
                    "class": name,
                    "images": len(group),
                    "accuracy": float(correct.astype(float).mean()) if len(correct) else math.nan,
                    "mean_in_box": float(group["in_box"].mean()),
                    "median_in_box": float(group["in_box"].median()),
                    "clusters": len(strategies),
                    "flagged": sum(1 for s in strategies if s.flags),
                }
            )
        return pd.DataFrame(rows)

    @property
    def flagged(self) -> list[Strategy]:
        """The strategies whose evidence lies outside the object or in one place."""
        return [s for s in self.strategies if s.flags]

    def summary(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "method": self.method,
            "settings": self.settings,
            "dataset": self.dataset,
            "images": len(self.table),
            "failed": int(self.table["error"].notna().sum()),
            "timings": self.timings,
            "classes": json.loads(self.classes.to_json(orient="records")),
            "strategies": [s.summary() for s in self.strategies],
        }

    def save(self, directory: str | Path | None = None) -> dict[str, Path]:
        """Write ``audit.parquet`` (the table), ``classes.csv``, ``maps.npy``,
        ``summary.json`` and a self-contained ``report.html`` into ``directory``
        (default: the audit's own folder); returns the paths."""
        from .report import write_report

        target = Path(directory) if directory is not None else self.folder
        target.mkdir(parents=True, exist_ok=True)
        paths = {
            "parquet": target / "audit.parquet",
            "csv": target / "classes.csv",
            "npy": target / "maps.npy",
            "json": target / "summary.json",
            "html": target / "report.html",
        }
        self.table.to_parquet(paths["parquet"], index=False)
        self.classes.to_csv(paths["csv"], index=False)
        if paths["npy"].resolve() != (self.folder / "maps.npy").resolve():
            shutil.copyfile(self.folder / "maps.npy", paths["npy"])
        paths["json"].write_text(json.dumps(self.summary(), indent=2) + "\n", encoding="utf-8")
        write_report(self, paths["html"])
        return paths

    def _repr_html_(self) -> str:
        from .report import report_body

        return report_body(self)


def strategies_of(table: pd.DataFrame, maps: np.ndarray) -> tuple[list[Strategy], np.ndarray]:
    """Cluster each target class's maps; the strategies and each row's cluster id."""
    clusters = np.full(len(table), -1, int)
    found: list[Strategy] = []
    ok = table["error"].isna().to_numpy()
    for name in sorted(table.loc[ok, "target"].dropna().unique()):
        rows = np.flatnonzero(ok & (table["target"] == name).to_numpy())
        class_maps = np.asarray(maps[rows])
        labels, _info = cluster(class_maps)
        clusters[rows] = labels
        for cluster_id in range(int(labels.max()) + 1):
            members = rows[labels == cluster_id]
            correct = table["correct"].to_numpy()[members]
            found.append(
                describe(
                    str(name),
                    cluster_id,
                    [int(r) for r in members],
                    len(rows),
                    np.asarray(maps[members]),
                    np.array([math.nan if c is None else float(c) for c in correct], np.float64),
                    table["in_box"].to_numpy(np.float64)[members],
                    table["box_share"].to_numpy(np.float64)[members],
                )
            )
    return found, clusters
