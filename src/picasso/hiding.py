"""Hiding part of an image from the model: the "what if" behind the explore page and
``POST /api/v1/predict``.

A :class:`Hide` says which pixels to hide (boxes, or a mask PNG) and what replaces
them: the same fills as occlusion (a value in the model's input space, the image's
channel ``"mean"``, or a ``"blur"`` with sigma = ``blur_window`` / 2), so hiding one
occlusion window with the same fill gives exactly the score occlusion measured there.
``invert`` keeps the marked pixels and hides everything else ("is this region enough?").

Masks are untrusted input: a PNG is checked like an upload (size in bytes, format,
dimensions known before decoding: it must be the model's input size or the image's own
size), boxes must lie inside the image. Problems raise :class:`InvalidImageError`.
"""

from __future__ import annotations

import base64
import binascii
import io
import warnings
from typing import Annotated, Literal

import numpy as np
from PIL import Image, UnidentifiedImageError
from pydantic import BaseModel, ConfigDict, Field, model_validator

from .core.errors import InvalidImageError
from .core.model import Model
from .visualizations.imaging import baseline_fill

#: A mask PNG may take at most this many bytes (base64 adds a third on the wire).
MAX_MASK_BYTES = 2_000_000
#: At most this many boxes in one request.
MAX_BOXES = 1000

Box = tuple[int, int, int, int]


class Marks(BaseModel):
    """Marked pixels of an image: boxes or a mask PNG (a segmentation model's region,
    and the base of :class:`Hide`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    boxes: tuple[Box, ...] | None = Field(
        None,
        max_length=MAX_BOXES,
        description="Rectangles (x0, y0, x1, y1), in pixels of `space`; x1 and y1 are exclusive.",
    )
    png: str | None = Field(
        None,
        max_length=(MAX_MASK_BYTES * 4) // 3 + 4,
        description="A base64 PNG (a data: URL prefix is allowed) at the model's input size "
        "or the image's own size: white, opaque pixels are marked; black or "
        "transparent ones are not.",
    )
    space: Literal["input", "image"] = Field(
        "input",
        description="Whether boxes are in pixels of the model's input (the image as the "
        "model sees it) or of the uploaded image (then mapped through the model's "
        "resizing and cropping). A PNG's size says its space.",
    )
    invert: bool = Field(False, description="Mark everything except these pixels.")

    @model_validator(mode="after")
    def _one_kind_of_mask(self) -> Marks:
        if (self.boxes is None) == (self.png is None):
            raise ValueError("give exactly one of boxes or png")
        for box in self.boxes or ():
            x0, y0, x1, y1 = box
            if min(box) < 0 or x1 <= x0 or y1 <= y0:
                raise ValueError(
                    f"box {list(box)} must have 0 <= x0 < x1 and 0 <= y0 < y1 (x1, y1 exclusive)"
                )
        return self

    def mask(self, model: Model, image: Image.Image) -> np.ndarray:
        """The (H, W) boolean mask of marked pixels at the model's input size, for
        ``image`` (the uploaded image, before resizing)."""
        height, width = model.info.input_size
        if self.png is not None:
            marked = decode_mask(self.png, {(width, height), image.size})
            in_input = marked.shape == (height, width)
        else:
            space = (width, height) if self.space == "input" else image.size
            marked = boxes_mask(self.boxes or (), space)
            in_input = self.space == "input"
        if not in_input:
            fitted = model.fit_image(Image.fromarray(marked.astype(np.uint8) * 255, "L"))
            marked = np.asarray(fitted) >= 128
        return ~marked if self.invert else marked


class Hide(Marks):
    """Pixels to hide from the model, and what replaces them (``invert``: hide
    everything except the marked pixels)."""

    fill: Annotated[float, Field(allow_inf_nan=False)] | Literal["mean", "blur"] = Field(
        0.0,
        description="What replaces hidden pixels, as occlusion's baseline: a number in the "
        "model's input space (0 = the normalisation mean for standard preprocessing), "
        "'mean' (the image's channel means) or 'blur' (a blurred copy).",
    )
    blur_window: int = Field(
        16,
        ge=1,
        le=4096,
        description="For fill='blur': the Gaussian's sigma is half of this (as occlusion's "
        "blur with this window).",
    )

    def apply(self, batch: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """A copy of ``batch`` (N, C, H, W) with the ``mask``-ed pixels filled."""
        hidden = batch.copy()
        for i in range(len(batch)):
            fill = baseline_fill(batch[i], self.fill, self.blur_window)
            if isinstance(fill, float):
                hidden[i][:, mask] = fill
            else:
                hidden[i][:, mask] = fill[:, mask]
        return hidden


def boxes_mask(boxes: tuple[Box, ...] | list[Box], size: tuple[int, int]) -> np.ndarray:
    """The mask of ``boxes`` on an image of ``size`` (width, height); a box reaching
    outside it is an error (a box partly inside is clipped: a patch at the edge)."""
    width, height = size
    mask = np.zeros((height, width), bool)
    for x0, y0, x1, y1 in boxes:
        if x0 >= width or y0 >= height:
            raise InvalidImageError(
                f"mask: box {[x0, y0, x1, y1]} lies outside the {width}x{height} image"
            )
        mask[y0:y1, x0:x1] = True
    return mask


def decode_mask(data: str, sizes: set[tuple[int, int]]) -> np.ndarray:
    """A base64 PNG mask as a boolean array (white and opaque = hidden), refused unless
    its size is one of ``sizes`` (width, height), which is read before any decoding."""
    text = data.split(",", 1)[1] if data.startswith("data:") else data
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidImageError("mask: png is not valid base64") from None
    if len(raw) > MAX_MASK_BYTES:
        raise InvalidImageError(f"mask: the PNG is larger than {MAX_MASK_BYTES:,} bytes")
    allowed = " or ".join(f"{w}x{h}" for w, h in sorted(sizes))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            img = Image.open(io.BytesIO(raw))
            if img.format != "PNG":
                raise InvalidImageError(f"mask: must be a PNG, not {img.format or 'unknown'}")
            if img.size not in sizes:
                raise InvalidImageError(
                    f"mask: the PNG is {img.width}x{img.height}; it must be {allowed} "
                    "(the model's input size or the image's)"
                )
            img.load()
            rgba = np.asarray(img.convert("RGBA"))
    except InvalidImageError:
        raise
    except Image.DecompressionBombError:
        raise InvalidImageError(
            f"mask: the PNG has far too many pixels; it must be {allowed}"
        ) from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, MemoryError) as exc:
        raise InvalidImageError(f"mask: not a readable PNG ({type(exc).__name__})") from None
    luminance = rgba[..., :3].astype(np.uint16).sum(axis=2) / 3
    return (rgba[..., 3] >= 128) & (luminance >= 128)


def mask_png(mask: np.ndarray) -> str:
    """A boolean mask as the base64 PNG :class:`Hide` takes (white = hidden)."""
    buffer = io.BytesIO()
    Image.fromarray(mask.astype(np.uint8) * 255, "L").save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def shade(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``image`` (H, W, 3 uint8) with the hidden pixels drawn as grey stripes over a
    faded copy of themselves, so a result shows what the model did not see."""
    height, width = mask.shape
    stripes = ((np.arange(height)[:, None] + np.arange(width)[None, :]) // 3) % 2 == 0
    grey = np.where(stripes, 96.0, 160.0)[..., None]
    shaded = image.astype(np.float32)
    shaded[mask] = 0.3 * shaded[mask] + 0.7 * grey[mask]
    return shaded.round().astype(np.uint8)
