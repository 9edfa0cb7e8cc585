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
    """

    input_size: tuple[int, int]
    resize: ResizePolicy = "stretch"
    mean: tuple[float, ...] = (0.0, 0.0, 0.0)
    std: tuple[float, ...] = (1.0, 1.0, 1.0)
    channel_order: Literal["RGB", "BGR"] = "RGB"
    grayscale: bool = False

    @property
    def channels(self) -> int:
        return 1 if self.grayscale else 3

    def fit(self, image: Image.Image) -> Image.Image:
        """Resize (and crop) an RGB image to the input size: what the map aligns with."""
        height, width = self.input_size
        if self.resize == "center-crop":
            scale = max(height / image.height, width / image.width)
            new_w = max(width, round(image.width * scale))
            new_h = max(height, round(image.height * scale))
            image = image.resize((new_w, new_h), Image.Resampling.BILINEAR)
            left, top = (new_w - width) // 2, (new_h - height) // 2
            return image.crop((left, top, left + width, top + height))
        return image.resize((width, height), Image.Resampling.BILINEAR)

    def region(self, size: tuple[int, int]) -> tuple[float, float, float, float]:
        """The box ``(x0, y0, x1, y1)`` of an image of ``size`` (width, height) that the
        fitted image (and so a map) covers: all of it when stretched, the centre when
        cropped."""
        width, height = size
        if self.resize != "center-crop":
            return 0.0, 0.0, float(width), float(height)
        in_h, in_w = self.input_size
        scale = max(in_h / height, in_w / width)
        new_w, new_h = max(in_w, round(width * scale)), max(in_h, round(height * scale))
        left, top = (new_w - in_w) // 2, (new_h - in_h) // 2
        return left / scale, top / scale, (left + in_w) / scale, (top + in_h) / scale

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
