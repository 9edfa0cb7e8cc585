"""Where a map's evidence lies relative to the object: the object's box or mask carried
onto the map through the model's preprocessing, relevance mass accuracy (``in_box``,
Arras et al. 2022) and the pointing game (``pointing``, Zhang et al. 2018)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..core.errors import InvalidImageError
from ..core.preprocessing import Preprocessing
from .dataset import Box


def object_region(
    size: tuple[int, int], box: Box | None, mask: Any, preprocessing: Preprocessing
) -> np.ndarray | None:
    """The object's pixels on the map (bool, model input size), from a box in the
    image's own pixels or a mask of the image's size, resized and cropped as the model's
    preprocessing does with the image; None without either."""
    width, height = size
    if box is not None:
        x0, y0, x1, y1 = box
        if x0 < 0 or y0 < 0 or x1 > width or y1 > height:
            raise InvalidImageError(
                f"box ({x0:g}, {y0:g}, {x1:g}, {y1:g}) lies outside the {width}x{height} image"
            )
        drawn = np.zeros((height, width), np.uint8)
        drawn[math.floor(y0) : math.ceil(y1), math.floor(x0) : math.ceil(x1)] = 255
    elif mask is not None:
        drawn = _mask_array(mask)
        if drawn.shape != (height, width):
            raise InvalidImageError(
                f"mask is {drawn.shape[1]}x{drawn.shape[0]}, the image {width}x{height}"
            )
    else:
        return None
    fitted = preprocessing.fit(Image.fromarray(drawn, mode="L"))
    return np.asarray(fitted) >= 128


def _mask_array(mask: Any) -> np.ndarray:
    if isinstance(mask, (str, Path)):
        from ..core.images import load_image

        grey = np.asarray(load_image(mask).image.convert("L"))
        return np.where(grey > 0, 255, 0).astype(np.uint8)
    array = np.asarray(mask)
    if array.ndim != 2:
        raise InvalidImageError(f"a mask is a 2-d array, got shape {array.shape}")
    return np.where(array.astype(bool), 255, 0).astype(np.uint8)


def in_box(attribution: np.ndarray, region: np.ndarray | None) -> float:
    """Share of the map's absolute mass inside the region (NaN without a region, or
    for a map without mass)."""
    if region is None or not region.any():
        return math.nan
    mass = np.abs(attribution.astype(np.float64))
    total = float(mass.sum())
    return float(mass[region].sum() / total) if total > 0 else math.nan


def pointing(attribution: np.ndarray, region: np.ndarray | None) -> bool | None:
    """Whether the map's largest absolute value lies inside the region (None without
    a region)."""
    if region is None or not region.any():
        return None
    flat = int(np.argmax(np.abs(attribution)))
    return bool(region.ravel()[flat])
