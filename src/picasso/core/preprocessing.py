"""Declarative preprocessing: from PIL images to a float32 NCHW batch.

The default follows the common recipe: convert to RGB, resize to the model's input
size (bilinear), scale to [0, 1], subtract ``mean``, divide by ``std``, channels-first.
Methods always see NCHW batches; a channels-last network is its adapter's business.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from PIL import Image

ResizePolicy = Literal["stretch", "center-crop"]
Interpolation = Literal["bilinear", "bicubic", "nearest"]
RESAMPLING = {
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "nearest": Image.Resampling.NEAREST,
}


@dataclass(frozen=True)
class Preprocessing:
    """How an image becomes network input.

    Attributes:
        input_size: (height, width) the network takes.
        resize: ``"stretch"`` resizes straight to ``input_size``; ``"center-crop"``
            resizes the shorter side to fit, then crops the centre.
        mean, std: per-channel, applied after scaling pixels to [0, 1].
        channel_order: ``"RGB"`` or ``"BGR"``.
        grayscale: feed one channel (luminance) instead of three.
        interpolation: the resampling filter of the resize (PIL's).
        shorter_side: with ``"center-crop"``, first resize the shorter side to this
            many pixels (the longer one in proportion, truncated), as Hugging Face's
            ``shortest_edge`` and timm's ``crop_pct`` do; None: just enough to cover
            the input size.
        crop_rounding: where an odd margin puts the extra pixel of a centre crop:
            ``"floor"`` (Hugging Face, PIL) or ``"round"`` (half to even, as
            torchvision's ``CenterCrop`` and so timm).
    """

    input_size: tuple[int, int]
    resize: ResizePolicy = "stretch"
    mean: tuple[float, ...] = (0.0, 0.0, 0.0)
    std: tuple[float, ...] = (1.0, 1.0, 1.0)
    channel_order: Literal["RGB", "BGR"] = "RGB"
    grayscale: bool = False
    interpolation: Interpolation = "bilinear"
    shorter_side: int | None = None
    crop_rounding: Literal["floor", "round"] = "floor"

    @property
    def channels(self) -> int:
        return 1 if self.grayscale else 3

    def fit(self, image: Image.Image) -> Image.Image:
        """Resize (and crop) an RGB image to the input size: what the map aligns with."""
        height, width = self.input_size
        method = RESAMPLING[self.interpolation]
        if self.resize == "center-crop":
            new_w, new_h = self._resized(image.size)
            image = image.resize((new_w, new_h), method)
            left, top = self._offsets(new_w, new_h)
            return image.crop((left, top, left + width, top + height))
        return image.resize((width, height), method)

    def _resized(self, size: tuple[int, int]) -> tuple[int, int]:
        """The (width, height) an image of ``size`` is resized to before the crop."""
        width, height = size
        in_h, in_w = self.input_size
        if self.shorter_side is not None:
            short = self.shorter_side
            if width <= height:
                new_w, new_h = short, int(short * height / width)
            else:
                new_w, new_h = int(short * width / height), short
            return max(in_w, new_w), max(in_h, new_h)
        scale = max(in_h / height, in_w / width)
        return max(in_w, round(width * scale)), max(in_h, round(height * scale))

    def _offsets(self, new_w: int, new_h: int) -> tuple[int, int]:
        in_h, in_w = self.input_size
        if self.crop_rounding == "round":
            return round((new_w - in_w) / 2), round((new_h - in_h) / 2)
        return (new_w - in_w) // 2, (new_h - in_h) // 2

    def region(self, size: tuple[int, int]) -> tuple[float, float, float, float]:
        """The box ``(x0, y0, x1, y1)`` of an image of ``size`` (width, height) that the
        fitted image (and so a map) covers: all of it when stretched, the centre when
        cropped."""
        width, height = size
        if self.resize != "center-crop":
            return 0.0, 0.0, float(width), float(height)
        in_h, in_w = self.input_size
        new_w, new_h = self._resized(size)
        sx, sy = new_w / width, new_h / height
        left, top = self._offsets(new_w, new_h)
        return left / sx, top / sy, (left + in_w) / sx, (top + in_h) / sy

    def __call__(self, images: Sequence[Image.Image]) -> np.ndarray:
        arrays = []
        for image in images:
            fitted = self.fit(image.convert("RGB"))
            if self.grayscale:
                arr = np.asarray(fitted.convert("L"), dtype=np.float32)[:, :, None]
            else:
                arr = np.asarray(fitted, dtype=np.float32)
                if self.channel_order == "BGR":
                    arr = arr[:, :, ::-1]
            scaled = arr / np.float32(255.0)
            scaled = (scaled - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)
            arrays.append(scaled.transpose(2, 0, 1))
        return np.ascontiguousarray(np.stack(arrays), dtype=np.float32)
