"""Strategies, not just averages: the maps of one class clustered as SpRAy does
(Lapuschkin et al. 2019, "Unmasking Clever Hans predictors"), and each cluster described
in words a person can check.

Maps are taken as absolute values, averaged down to a 16 x 16 grid and normalised to
unit mass, so a cluster groups images whose evidence lies in the same places. The
affinity is a symmetric k-nearest-neighbour graph with locally scaled Gaussian weights;
the number of clusters comes from the eigengap of its normalised Laplacian (counting
only gaps after small eigenvalues, so one homogeneous group stays one cluster);
scikit-learn's spectral clustering then assigns the images.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

GRID = 16  # maps are compared on a GRID x GRID grid
MAX_CLUSTERS = 8
MIN_IMAGES = 6  # fewer images in a class: one cluster
SMALL = 0.2  # eigenvalues of the normalised Laplacian this small mean (nearly) apart
BAND = 0.3  # the bands a concentration is reported for: 30 % of the rows or columns
CONCENTRATED = 0.6  # a band holding this share of the mass (twice its area) is a place
CONSISTENT = 0.5  # mean correlation of members with their cluster's mean map
OUTSIDE = 2.0  # in_box below this many times the box's own share of the image
NOTABLE = 1.2  # a band holding this many times its area is worth a mention


def features(maps: np.ndarray) -> np.ndarray:
    """(n, GRID * GRID): absolute maps, block-averaged to the grid, unit mass each."""
    n, height, width = maps.shape
    ys = np.linspace(0, height, GRID + 1).round().astype(int)
    xs = np.linspace(0, width, GRID + 1).round().astype(int)
    mass = np.abs(np.nan_to_num(maps.astype(np.float64)))
    cells = np.add.reduceat(np.add.reduceat(mass, ys[:-1], axis=1), xs[:-1], axis=2)
    areas = np.outer(np.diff(ys), np.diff(xs))
    grid = (cells / np.maximum(areas, 1)).reshape(n, -1)
    totals = grid.sum(axis=1, keepdims=True)
    return np.where(totals > 0, grid / np.where(totals > 0, totals, 1), 1.0 / grid.shape[1])


def affinity(points: np.ndarray, neighbours: int = 10, scale_at: int = 7) -> np.ndarray:
    """Symmetric k-nearest-neighbour affinity with locally scaled Gaussian weights
    (Zelnik-Manor & Perona 2004: each point's scale is its distance to its
    ``scale_at``-th neighbour, so dense and sparse groups are treated alike)."""
    n = len(points)
    k = max(1, min(neighbours, n - 1))
    distance = np.sqrt(((points[:, None, :] - points[None, :, :]) ** 2).sum(axis=2))
    scale = np.sort(distance, axis=1)[:, min(scale_at, n - 1)] + 1e-12
    weights = np.exp(-(distance**2) / (scale[:, None] * scale[None, :]))
    order = np.argsort(distance, axis=1)[:, 1 : k + 1]
    knn = np.zeros((n, n), bool)
    knn[np.arange(n)[:, None], order] = True
    weights = np.where(knn | knn.T, weights, 0.0)
    np.fill_diagonal(weights, 0.0)
    return weights


def eigengap(matrix: np.ndarray, most: int = MAX_CLUSTERS) -> tuple[int, np.ndarray]:
    """The number of clusters from the eigengap of the normalised Laplacian: the largest
    gap after an eigenvalue that is still small (at most ``SMALL``), so a group whose
    second eigenvalue is not near zero stays one cluster."""
    degree = matrix.sum(axis=1)
    inverse = np.where(degree > 0, 1 / np.sqrt(np.where(degree > 0, degree, 1)), 0)
    laplacian = np.eye(len(matrix)) - inverse[:, None] * matrix * inverse[None, :]
    values = np.clip(np.linalg.eigvalsh(laplacian)[: most + 1], 0, None)
    gaps = np.diff(values)
    small = values[:-1] <= SMALL
    gaps = np.where(small, gaps, -1.0)
    return int(np.argmax(gaps)) + 1, values


def cluster(maps: np.ndarray, seed: int = 0) -> tuple[np.ndarray, dict[str, Any]]:
    """Cluster labels (0 = the largest cluster) for one class's maps, and how they were
    found (the eigenvalues, the number of clusters)."""
    n = len(maps)
    if n < MIN_IMAGES:
        return np.zeros(n, int), {"clusters": 1, "reason": f"fewer than {MIN_IMAGES} images"}
    points = features(maps)
    matrix = affinity(points)
    k, values = eigengap(matrix)
    info: dict[str, Any] = {"eigenvalues": [round(float(v), 5) for v in values]}
    if k == 1:
        return np.zeros(n, int), {**info, "clusters": 1}
    import warnings

    from sklearn.cluster import SpectralClustering

    with warnings.catch_warnings():  # well-separated strategies are what we look for
        warnings.filterwarnings("ignore", message="Graph is not fully connected")
        labels = SpectralClustering(
            n_clusters=k, affinity="precomputed", assign_labels="cluster_qr", random_state=seed
        ).fit_predict(matrix)
    by_size = [c for c, _ in sorted(enumerate(np.bincount(labels)), key=lambda x: -x[1])]
    relabel = np.empty(len(by_size), int)
    relabel[by_size] = np.arange(len(by_size))
    return relabel[labels], {**info, "clusters": k}


BANDS = {
    "top": lambda h, w: (slice(0, round(BAND * h)), slice(None)),
    "bottom": lambda h, w: (slice(h - round(BAND * h), h), slice(None)),
    "left": lambda h, w: (slice(None), slice(0, round(BAND * w))),
    "right": lambda h, w: (slice(None), slice(w - round(BAND * w), w)),
}


@dataclass
class Strategy:
    """One cluster of one class: how many images follow it and where they look."""

    label: str
    cluster: int
    rows: list[int]  # table rows of its images
    share: float  # of the class's images
    accuracy: float  # NaN without labels
    in_box: float  # mean; NaN without boxes
    box_share: float  # mean share of the image the objects' boxes cover (NaN without)
    mean_map: np.ndarray  # mean of the members' unit-mass absolute maps (H, W)
    band: str  # where the mean map's mass concentrates most ("top", ...)
    band_share: float  # share of the mean map's mass in that band
    consistency: float  # mean correlation of the members' maps with the mean map
    flags: list[str] = field(default_factory=list)
    description: str = ""

    def summary(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "cluster": self.cluster,
            "images": len(self.rows),
            "rows": self.rows,
            "share": round(self.share, 4),
            "accuracy": _round(self.accuracy),
            "in_box": _round(self.in_box),
            "box_share": _round(self.box_share),
            "band": self.band,
            "band_share": round(self.band_share, 4),
            "consistency": round(self.consistency, 4),
            "flags": self.flags,
            "description": self.description,
        }


def _round(value: float) -> float | None:
    return None if math.isnan(value) else round(value, 4)


def describe(
    label: str,
    cluster_id: int,
    rows: list[int],
    class_size: int,
    maps: np.ndarray,
    correct: np.ndarray,
    in_box: np.ndarray,
    box_share: np.ndarray,
) -> Strategy:
    """A cluster in numbers and words; ``maps``, ``correct``, ``in_box`` and
    ``box_share`` are its members'."""
    mass = np.abs(np.nan_to_num(maps.astype(np.float64)))
    totals = mass.sum(axis=(1, 2), keepdims=True)
    unit = np.where(totals > 0, mass / np.where(totals > 0, totals, 1), 0)
    mean_map = unit.mean(axis=0)
    height, width = mean_map.shape
    shares = {name: float(mean_map[band(height, width)].sum()) for name, band in BANDS.items()}
    band = max(shares, key=lambda name: shares[name])
    grid = features(maps)
    centre = grid.mean(axis=0)
    consistency = float(np.mean([_correlation(g, centre) for g in grid]) if len(grid) > 1 else 1.0)
    strategy = Strategy(
        label=label,
        cluster=cluster_id,
        rows=rows,
        share=len(rows) / class_size,
        accuracy=float(np.mean(correct))
        if correct.size and not np.isnan(correct).any()
        else math.nan,
        in_box=float(np.nanmean(in_box)) if np.isfinite(in_box).any() else math.nan,
        box_share=float(np.nanmean(box_share)) if np.isfinite(box_share).any() else math.nan,
        mean_map=mean_map.astype(np.float32),
        band=band,
        band_share=shares[band],
        consistency=consistency,
    )
    _flag(strategy)
    return strategy


def _flag(s: Strategy) -> None:
    """Flags and words. ``outside-object``: with boxes or masks, less of the maps' mass
    inside the object than twice the object's own share of the image. ``fixed-place``:
    one band (30 % of the rows or columns) holds at least 60 % of the mass, the maps
    agree with each other, and the evidence is not on the object."""
    who = f"{s.share:.0%} of *{s.label}* images"
    if s.band_share == 0:
        s.description = f"{who}: the maps are blank (no evidence found for the class)"
        return
    has_box = not math.isnan(s.in_box)
    on_object = has_box and s.in_box >= OUTSIDE * s.box_share
    band = f"the {s.band} {BAND:.0%} of the image"
    if s.band_share >= CONCENTRATED and s.consistency >= CONSISTENT and not on_object:
        s.flags.append("fixed-place")
        s.description = (
            f"{who} are explained by {band} ({s.band_share:.0%} of their maps' mass, "
            "in the same place whatever the content)"
        )
    if has_box and not on_object:
        s.flags.append("outside-object")
        outside = (
            f"their evidence lies outside the object: {s.in_box:.0%} of the maps' mass "
            f"falls in its box, which covers {s.box_share:.0%} of the image"
        )
        if "fixed-place" not in s.flags and s.band_share >= NOTABLE * BAND:
            outside += f"; {band} holds {s.band_share:.0%} of it"
        s.description = f"{s.description}; {outside}" if s.description else f"{who}: {outside}"
    if not s.flags:
        where = (
            f"{s.in_box:.0%} of the maps' mass lies in the object's box, which covers "
            f"{s.box_share:.0%} of the image"
            if has_box
            else f"{band} holds the most of the maps' mass ({s.band_share:.0%})"
        )
        s.description = f"{who}: {where}"


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    if a.std() == 0 or b.std() == 0:
        return 1.0 if np.allclose(a, b) else 0.0
    return float(np.corrcoef(a, b)[0, 1])
