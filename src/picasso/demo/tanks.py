"""A seeded generator of synthetic tank/forest photographs with controllable weather.

It recreates the "tank detector" parable: if every tank photo in the training set is
overcast and every forest photo sunny, a classifier can score perfectly by looking
at the sky. :func:`make_dataset` controls that correlation; each tank image comes
with its bounding box, so tests can measure where an attribution map puts its mass.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SIZE = 64
LABELS = ("forest", "tank")
WEATHERS = ("sunny", "overcast")
#: The classes of :attr:`Scene.mask`, pixel by pixel.
SEGMENT_LABELS = ("ground", "tank", "sky")


@dataclass(frozen=True)
class Scene:
    image: np.ndarray  # (SIZE, SIZE, 3) uint8
    label: int  # 0 forest, 1 tank
    weather: str  # "sunny" or "overcast"
    box: tuple[int, int, int, int] | None  # tank box (x0, y0, x1, y1), exclusive ends
    #: the class of every pixel (:data:`SEGMENT_LABELS`: trees and grass are ground)
    mask: np.ndarray | None = None


def _sky(rng: np.random.Generator, weather: str, horizon: int) -> np.ndarray:
    rows = np.linspace(0.0, 1.0, horizon)[:, None, None]
    if weather == "sunny":
        top = np.array([60, 130, 230]) + rng.uniform(-15, 15, 3)
        bottom = np.array([160, 200, 245]) + rng.uniform(-10, 10, 3)
    else:
        grey = rng.uniform(120, 165)
        top = np.array([grey, grey, grey + 5])
        bottom = top + rng.uniform(10, 30)
    sky = top * (1 - rows) + bottom * rows
    sky = np.broadcast_to(sky, (horizon, SIZE, 3)).copy()
    yy, xx = np.mgrid[0:horizon, 0:SIZE]
    if weather == "sunny":
        cy, cx, r = rng.uniform(3, max(4, horizon - 6)), rng.uniform(6, SIZE - 6), rng.uniform(3, 5)
        sun = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
        sky[sun] = [255, 240, 150]
    else:
        for _ in range(rng.integers(3, 6)):  # darker cloud blobs
            cy, cx = rng.uniform(0, horizon), rng.uniform(0, SIZE)
            ry, rx = rng.uniform(3, 7), rng.uniform(6, 14)
            blob = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
            sky[blob] -= rng.uniform(15, 35)
    return sky


def _tree(
    canvas: np.ndarray,
    rng: np.random.Generator,
    x: float,
    base: int,
    height: int,
    mask: np.ndarray,
) -> None:
    green = np.array([30, 90, 35]) + rng.uniform(-12, 12, 3)
    trunk_top = base - max(2, height // 4)
    canvas[max(0, trunk_top) : base, int(x) : int(x) + 2] = [80, 55, 30]
    mask[max(0, trunk_top) : base, int(x) : int(x) + 2] = 0
    half = height * 0.35
    for row in range(base - height, trunk_top + 1):
        if row < 0 or row >= SIZE:
            continue
        frac = (row - (base - height)) / max(1, trunk_top - (base - height))
        w = max(0.5, half * frac)
        lo, hi = round(x + 1 - w), round(x + 1 + w)
        canvas[row, max(0, lo) : min(SIZE, hi)] = green
        mask[row, max(0, lo) : min(SIZE, hi)] = 0


def _tank(
    canvas: np.ndarray, rng: np.random.Generator, horizon: int, mask: np.ndarray
) -> tuple[int, int, int, int]:
    width = int(rng.integers(16, 23))
    height = int(rng.integers(6, 9))
    x0 = int(rng.integers(2, SIZE - width - 2))
    y1 = int(rng.integers(horizon + 14, SIZE - 3))
    y0 = y1 - height
    body = np.array([85, 95, 55]) + rng.uniform(-10, 10, 3)
    canvas[y0:y1, x0 : x0 + width] = body
    mask[y0:y1, x0 : x0 + width] = 1
    canvas[y1 - 3 : y1, x0 : x0 + width] = [35, 35, 30]  # tracks
    for wx in range(x0 + 2, x0 + width - 1, 4):  # wheels
        canvas[y1 - 2, wx : wx + 2] = [110, 110, 100]
    t_w, t_h = width // 2, 4
    tx0 = x0 + (width - t_w) // 2
    canvas[y0 - t_h : y0, tx0 : tx0 + t_w] = body * 0.85  # turret
    mask[y0 - t_h : y0, tx0 : tx0 + t_w] = 1
    barrel_len = int(rng.integers(6, 10))
    by = y0 - t_h // 2 - 1
    if rng.random() < 0.5:
        bx0, bx1 = max(0, tx0 - barrel_len), tx0
    else:
        bx0, bx1 = tx0 + t_w, min(SIZE, tx0 + t_w + barrel_len)
    canvas[by : by + 2, bx0:bx1] = [45, 50, 35]
    mask[by : by + 2, bx0:bx1] = 1
    return min(x0, bx0), y0 - t_h, max(x0 + width, bx1), y1


def make_scene(rng: np.random.Generator, label: int, weather: str) -> Scene:
    """Draw one scene: sky with the weather, grass, trees and (label 1) a tank."""
    horizon = int(rng.integers(20, 28))
    canvas = np.empty((SIZE, SIZE, 3), np.float64)
    mask = np.zeros((SIZE, SIZE), np.uint8)
    mask[:horizon] = 2  # sky, until trees are drawn over it
    canvas[:horizon] = _sky(rng, weather, horizon)
    grass = np.array([70, 120, 45]) + rng.uniform(-15, 15, 3)
    rows = np.linspace(0.85, 1.1, SIZE - horizon)[:, None, None]
    canvas[horizon:] = grass * rows + rng.normal(0, 8, (SIZE - horizon, SIZE, 3))
    for _ in range(int(rng.integers(3, 7))):
        _tree(
            canvas,
            rng,
            rng.uniform(0, SIZE - 3),
            horizon + int(rng.integers(0, 8)),
            int(rng.integers(10, 20)),
            mask,
        )
    box = _tank(canvas, rng, horizon, mask) if label == 1 else None
    light = rng.uniform(1.05, 1.2) if weather == "sunny" else rng.uniform(0.7, 0.85)
    canvas[horizon:] *= light  # the weather lights the whole scene, not only the sky
    canvas += rng.normal(0, 4, canvas.shape)
    image = np.clip(canvas, 0, 255).astype(np.uint8)
    return Scene(image, label, weather, box, mask)


def make_dataset(n: int, seed: int, bias: float) -> list[Scene]:
    """``n`` scenes, half tanks. ``bias`` is the probability that a tank is overcast
    and a forest sunny: 1.0 is the biased training set, 0.5 independent weather,
    0.0 the weather-swapped test set."""
    rng = np.random.default_rng(seed)
    scenes = []
    for i in range(n):
        label = i % 2
        aligned = rng.random() < bias
        weather = (
            ("overcast" if label == 1 else "sunny")
            if aligned
            else ("sunny" if label == 1 else "overcast")
        )
        scenes.append(make_scene(rng, label, weather))
    return scenes
