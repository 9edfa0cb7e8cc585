"""Approximate occlusion: compute the windows whose values matter, interpolate the rest,
and say how far off the result is likely to be.

Windows form a grid (rows x columns of window positions). The approximation starts
from a coarse sub-grid (every 8th, 4th or 2nd window in each direction, and the last
row and column), so that every window lies in a *cell* whose four corners are known.
It then refines adaptively, as a quadtree: the cell whose corners disagree most
(their range, in units of the map's range, times the windows inside it) is split in
four by computing its edge midpoints and centre; splitting stops when the ``budget``
share of windows is spent. Flat regions stay coarse; edges of the map, where
interpolation errs, are resolved to single windows. Every window not computed takes
the bilinear interpolation of the corners of the smallest cell holding it.

**The error estimate** is honest by construction: after refinement a random sample of
the windows *not* computed (``holdout``, a share of the budget) is computed too, and
the root-mean-square difference between their interpolated and exact values estimates
that of every interpolated window (an unbiased estimate: the sample is uniform among
them). The result reports it relative to the spread (standard deviation) of the
window values, as an RMS over all windows (computed ones counting as exact).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

Cell = tuple[int, int, int, int]  # (row0, row1, column0, column1), corners inclusive

#: The coarsest start: every 8th window in each direction, finer if the budget allows.
START_STEPS = (8, 4, 2)
#: The share of the budget spent on the random sample behind the error estimate.
HOLDOUT = 0.1
#: The smallest random sample behind the error estimate (budget permitting).
MIN_SAMPLE = 16
#: The most of the refinement budget the start grid may take.
START_SHARE = 0.4


@dataclass
class Approximation:
    """Window values (rows, columns, targets), which were computed, and the error."""

    values: np.ndarray
    computed: np.ndarray  # bool (rows, columns)
    error: float  # estimated RMS error of all window values / their spread
    rms: np.ndarray  # estimated RMS error per target, in score units
    checked: int  # windows of the random sample behind the estimate


def axis_points(count: int, step: int) -> list[int]:
    """Multiples of ``step`` and the last index."""
    return sorted({*range(0, count, step), count - 1})


def approximate(
    compute: Callable[[list[tuple[int, int]]], np.ndarray],
    rows: int,
    columns: int,
    targets: int,
    budget: float,
    holdout: float,
    batch_size: int,
    seed: int = 0,
    update: Callable[[Callable[[], np.ndarray], bool], None] | None = None,
) -> Approximation:
    """Approximate window values; ``compute(indices)`` returns exact values
    (len(indices), targets) for a list of (row, column) window indices. ``update(
    current, first)`` is called after the start grid (``first``) and after each
    refinement batch; ``current()`` interpolates the window values known so far."""
    total = rows * columns
    values = np.full((rows, columns, targets), np.nan)
    allowed = max(1, round(budget * total))
    # the error sample: a share of the budget, at least MIN_SAMPLE windows (at most
    # half the budget)
    check = min(max(round(holdout * allowed), MIN_SAMPLE), allowed // 2, total)
    refine_budget = max(1, allowed - check)

    def run(points: list[tuple[int, int]]) -> None:
        todo = [p for p in dict.fromkeys(points) if np.isnan(values[p][0])]
        for i in range(0, len(todo), batch_size):
            part = todo[i : i + batch_size]
            found = np.asarray(compute(part), dtype=np.float64)
            for (r, c), v in zip(part, found, strict=True):
                values[r, c] = v

    # the finest start that leaves most of the budget to refinement
    step = next(
        (
            s
            for s in reversed(START_STEPS)
            if len(axis_points(rows, s)) * len(axis_points(columns, s))
            <= START_SHARE * refine_budget
        ),
        START_STEPS[0],
    )
    ys, xs = axis_points(rows, step), axis_points(columns, step)
    run([(r, c) for r in ys for c in xs])
    cells = [
        (ys[i], ys[i + 1], xs[j], xs[j + 1]) for i in range(len(ys) - 1) for j in range(len(xs) - 1)
    ]
    if len(ys) == 1:  # one row of windows
        cells = [(0, 0, xs[j], xs[j + 1]) for j in range(len(xs) - 1)]
    if len(xs) == 1:
        cells = [(ys[i], ys[i + 1], 0, 0) for i in range(len(ys) - 1)]

    def scale() -> np.ndarray:
        known = values[~np.isnan(values[..., 0])]
        spread = known.max(axis=0) - known.min(axis=0) if len(known) else np.ones(targets)
        return np.where(spread > 0, spread, 1.0)

    def priority(cell: Cell, spread: np.ndarray) -> float:
        r0, r1, c0, c1 = cell
        corners = values[[r0, r0, r1, r1], [c0, c1, c0, c1]]  # (4, targets)
        disagreement = float(((corners.max(axis=0) - corners.min(axis=0)) / spread).sum())
        return disagreement * (r1 - r0 + 1) * (c1 - c0 + 1)

    spread = scale()
    heap = [(-priority(cell, spread), cell) for cell in cells]
    heapq.heapify(heap)
    leaves: list[Cell] = []

    def current() -> np.ndarray:
        return interpolate(values, leaves + [cell for _, cell in heap])

    if update is not None:
        update(current, True)

    def used() -> int:
        return int((~np.isnan(values[..., 0])).sum())

    while heap and used() < refine_budget:
        batch: dict[tuple[int, int], None] = {}  # new windows, in order
        split: list[Cell] = []
        while heap and len(batch) < batch_size:
            entry = heapq.heappop(heap)
            r0, r1, c0, c1 = cell = entry[1]
            if r1 - r0 <= 1 and c1 - c0 <= 1:  # nothing inside: final
                leaves.append(cell)
                continue
            mr, mc = (r0 + r1) // 2, (c0 + c1) // 2
            new = [
                (r, c)
                for r in (r0, mr, r1)
                for c in (c0, mc, c1)
                if np.isnan(values[r, c, 0]) and (r, c) not in batch
            ]
            if used() + len(batch) + len(new) > refine_budget:
                heapq.heappush(heap, entry)  # over budget: it stays a leaf
                break
            batch.update(dict.fromkeys(new))
            split.append(cell)
        if not split:
            break
        run(list(batch))
        spread = scale()
        for r0, r1, c0, c1 in split:
            mr, mc = (r0 + r1) // 2, (c0 + c1) // 2
            for a, b in ((r0, mr), (mr, r1)) if r1 - r0 > 1 else ((r0, r1),):
                for c, d in ((c0, mc), (mc, c1)) if c1 - c0 > 1 else ((c0, c1),):
                    heapq.heappush(heap, (-priority((a, b, c, d), spread), (a, b, c, d)))
        if update is not None:
            update(current, False)
    leaves += [cell for _, cell in heap]
    estimate = interpolate(values, leaves)

    computed = ~np.isnan(values[..., 0])
    rms = np.zeros(targets)
    missing = np.argwhere(~computed)
    checked = min(check, len(missing))
    if checked:
        rng = np.random.default_rng(seed)
        sample = [
            tuple(int(v) for v in missing[i]) for i in rng.choice(len(missing), checked, False)
        ]
        guesses = np.array([estimate[r, c] for r, c in sample])
        run(sample)  # type: ignore[arg-type]
        exact = np.array([values[r, c] for r, c in sample])
        unknown_share = (len(missing) - checked) / total
        rms = np.sqrt(((guesses - exact) ** 2).mean(axis=0) * unknown_share)
    computed = ~np.isnan(values[..., 0])
    filled = np.where(computed[..., None], values, estimate)
    spread_std = filled.reshape(-1, targets).std(axis=0)
    relative = float(np.mean(rms / np.where(spread_std > 0, spread_std, 1.0)))
    return Approximation(filled, computed, relative, rms, checked)


def interpolate(values: np.ndarray, cells: list[Cell]) -> np.ndarray:
    """Every window's value: known ones as they are, the others bilinear between the
    corners of the smallest cell holding them (larger cells first, smaller ones
    overwrite the edges they share)."""
    out = values.copy()
    known = ~np.isnan(values[..., 0])
    for r0, r1, c0, c1 in sorted(cells, key=lambda c: -(c[1] - c[0] + 1) * (c[3] - c[2] + 1)):
        ty = (np.arange(r0, r1 + 1) - r0) / max(r1 - r0, 1)
        tx = (np.arange(c0, c1 + 1) - c0) / max(c1 - c0, 1)
        a, b = values[r0, c0], values[r0, c1]
        c, d = values[r1, c0], values[r1, c1]
        top = a[None, :] * (1 - tx[:, None]) + b[None, :] * tx[:, None]  # (width, targets)
        bottom = c[None, :] * (1 - tx[:, None]) + d[None, :] * tx[:, None]
        block = top[None] * (1 - ty[:, None, None]) + bottom[None] * ty[:, None, None]
        region = (slice(r0, r1 + 1), slice(c0, c1 + 1))
        out[region] = np.where(known[region][..., None], values[region], block)
    return out
