"""Turn what a user passes as an image into a checked RGB PIL image.

Accepts a file path, raw bytes, a PIL image or an (H, W, 3) / (H, W) uint8 array.
Files are untrusted: the pixel count is checked from the header before any pixel is
decoded (decompression bombs), the format is established by decoding, not by the
file name, and EXIF orientation, alpha, palettes, grayscale and 16-bit images are
normalised to 8-bit RGB.
"""

from __future__ import annotations

import hashlib
import io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import InvalidImageError

#: Largest image accepted, in pixels (width x height). 50 megapixels.
DEFAULT_MAX_PIXELS = 50_000_000
#: Largest decoded image accepted, in bytes (pixels x bands x bytes per band): a
#: 50-megapixel RGB image, and no 16-bit or float image of more than half that.
DEFAULT_MAX_DECODED_BYTES = 150_000_000
#: Formats accepted from files; anything else is refused even if PIL could open it.
ALLOWED_FORMATS = frozenset({"PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP", "PPM"})


@dataclass(frozen=True)
class LoadedImage:
    """An image ready for a model, with where it came from."""

    image: Image.Image  # RGB, 8-bit, orientation applied
    name: str  # a display name (file stem or "image")
    sha256: str  # hash of the original bytes or pixels


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        # Row blocks in float32: a 49-megapixel 16-bit image never becomes a float64 copy.
        arr = np.asarray(img)
        hi = 65535.0 if img.mode.startswith("I;16") or float(arr.max()) > 255 else 255.0
        out = np.empty(arr.shape, np.uint8)
        for start in range(0, arr.shape[0], 1024):
            block = arr[start : start + 1024].astype(np.float32) * np.float32(255.0 / hi)
            out[start : start + 1024] = np.clip(block, 0, 255).astype(np.uint8)
        del arr
        img = Image.fromarray(out, mode="L")
    if img.mode == "P":
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA"):
        # Composite transparent pixels over white rather than keeping whatever colour
        # they happen to store.
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    return img.convert("RGB")


#: Bytes per pixel of each mode as decoded.
_MODE_BYTES = {
    "1": 1,
    "L": 1,
    "P": 1,
    "LA": 2,
    "PA": 2,
    "RGB": 3,
    "YCbCr": 3,
    "LAB": 3,
    "HSV": 3,
    "RGBA": 4,
    "RGBX": 4,
    "CMYK": 4,
    "I;16": 2,
    "I;16B": 2,
    "I;16L": 2,
    "I;16N": 2,
    "I": 4,
    "F": 4,
}


def _check_decoded_bytes(img: Image.Image, name: str) -> None:
    """Refuse by what decoding would allocate, not only by pixels: 16-bit and float
    images take two to four times the bytes of an 8-bit one."""
    per_pixel = _MODE_BYTES.get(img.mode, 4)
    decoded = img.width * img.height * max(per_pixel, 3)  # the RGB result counts too
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        decoded += img.width * img.height * per_pixel
    if decoded > DEFAULT_MAX_DECODED_BYTES:
        raise InvalidImageError(
            f"{name}: a {img.width}x{img.height} {img.mode} image decodes to "
            f"{decoded / 1e6:.0f} MB, more than the limit of "
            f"{DEFAULT_MAX_DECODED_BYTES / 1e6:.0f} MB"
        )


def _check_pixels(width: int, height: int, max_pixels: int, name: str) -> None:
    if width <= 0 or height <= 0:
        raise InvalidImageError(f"{name}: image has no pixels")
    if width * height > max_pixels:
        raise InvalidImageError(
            f"{name}: image is {width}x{height} = {width * height:,} pixels, "
            f"more than the limit of {max_pixels:,}"
        )


def decode_image_bytes(
    data: bytes, name: str = "image", max_pixels: int = DEFAULT_MAX_PIXELS
) -> Image.Image:
    """Decode untrusted image bytes into an RGB image, or raise InvalidImageError."""
    try:
        with warnings.catch_warnings():
            # PIL's own bomb warning is superseded by the explicit checks below, and its
            # warnings about damaged metadata in untrusted files are noise here.
            warnings.simplefilter("ignore")
            img = Image.open(io.BytesIO(data))
            if img.format not in ALLOWED_FORMATS:
                raise InvalidImageError(
                    f"{name}: format {img.format or 'unknown'} is not accepted "
                    f"(use one of {', '.join(sorted(ALLOWED_FORMATS))})"
                )
            _check_pixels(img.width, img.height, max_pixels, name)
            _check_decoded_bytes(img, name)
            img.load()
            return _to_rgb(ImageOps.exif_transpose(img))
    except InvalidImageError:
        raise
    except Image.DecompressionBombError:
        raise InvalidImageError(
            f"{name}: image has far more pixels than allowed, more than the limit of {max_pixels:,}"
        ) from None
    except UnidentifiedImageError as exc:
        raise InvalidImageError(
            f"{name}: not a readable image ({exc.__class__.__name__})"
        ) from None
    except MemoryError:
        raise InvalidImageError(f"{name}: image is too large to decode") from None
    except Exception as exc:  # Pillow raises many kinds on malformed files: never a 500
        detail = " ".join(str(exc).split())[:200]
        raise InvalidImageError(
            f"{name}: image is corrupt or truncated ({type(exc).__name__}: {detail})"
        ) from None


def load_image(source: Any, max_pixels: int = DEFAULT_MAX_PIXELS) -> LoadedImage:
    """Load a path, bytes, PIL image or uint8 array as a checked RGB image."""
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise InvalidImageError(f"{path}: no such file")
        data = path.read_bytes()
        img = decode_image_bytes(data, name=str(path), max_pixels=max_pixels)
        return LoadedImage(img, path.stem, hashlib.sha256(data).hexdigest())
    if isinstance(source, (bytes, bytearray)):
        data = bytes(source)
        img = decode_image_bytes(data, max_pixels=max_pixels)
        return LoadedImage(img, "image", hashlib.sha256(data).hexdigest())
    if isinstance(source, Image.Image):
        _check_pixels(source.width, source.height, max_pixels, "image")
        img = _to_rgb(source)
        return LoadedImage(img, "image", hashlib.sha256(img.tobytes()).hexdigest())
    if isinstance(source, np.ndarray):
        arr = source
        if arr.dtype != np.uint8:
            raise InvalidImageError(f"image array must be uint8, got {arr.dtype}")
        if arr.ndim == 3 and arr.shape[2] == 1:
            arr = arr[:, :, 0]
        if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] in (3, 4))):
            raise InvalidImageError(
                f"image array must have shape (H, W), (H, W, 3) or (H, W, 4), got {arr.shape}"
            )
        _check_pixels(arr.shape[1], arr.shape[0], max_pixels, "image")
        img = _to_rgb(Image.fromarray(np.ascontiguousarray(arr)))
        return LoadedImage(img, "image", hashlib.sha256(img.tobytes()).hexdigest())
    raise InvalidImageError(
        f"cannot read an image from {type(source).__name__}; "
        "pass a file path, bytes, a PIL image or a uint8 array"
    )
