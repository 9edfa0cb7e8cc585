"""Untrusted images: formats by decoding, pixel limits, orientation and odd modes."""

from __future__ import annotations

import io
import zlib

import numpy as np
import pytest
from PIL import Image

from picasso.core.errors import InvalidImageError
from picasso.core.images import decode_image_bytes, load_image


def encode(img: Image.Image, fmt: str = "PNG", **kwargs) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kwargs)
    return buf.getvalue()


def test_path_bytes_pil_and_array_give_the_same_pixels(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, (12, 9, 3), dtype=np.uint8)
    path = tmp_path / "x.png"
    Image.fromarray(rgb).save(path)
    for source in (path, str(path), path.read_bytes(), Image.fromarray(rgb), rgb):
        loaded = load_image(source)
        assert np.array_equal(np.asarray(loaded.image), rgb)
    assert load_image(path).name == "x"


def test_format_is_decided_by_content_not_name(tmp_path):
    fake = tmp_path / "photo.png"
    fake.write_text("<html>not an image</html>")
    with pytest.raises(InvalidImageError, match="not a readable image"):
        load_image(fake)
    jpeg_named_png = tmp_path / "really-a-jpeg.png"
    jpeg_named_png.write_bytes(encode(Image.new("RGB", (4, 4), "red"), "JPEG"))
    assert load_image(jpeg_named_png).image.size == (4, 4)


def test_refused_formats_and_truncated_files():
    pdf_like = encode(Image.new("RGB", (4, 4)), "PDF")
    with pytest.raises(InvalidImageError):
        decode_image_bytes(pdf_like)
    full = encode(Image.new("RGB", (64, 64), "blue"), "JPEG")
    with pytest.raises(InvalidImageError, match=r"corrupt or truncated|not a readable"):
        decode_image_bytes(full[: len(full) // 3])
    with pytest.raises(InvalidImageError):
        decode_image_bytes(b"")


def test_decompression_bomb_is_refused_before_decoding():
    # A 20000 x 20000 PNG that compresses to a few hundred KB.
    width = height = 20000
    raw = b"".join(b"\x00" + b"\x00" * width for _ in range(height))
    import struct

    def chunk(kind, data):
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    png = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw, 9))
        + chunk(b"IEND", b"")
    )
    assert len(png) < 1_000_000
    with pytest.raises(InvalidImageError, match="more than the limit"):
        decode_image_bytes(png)
    with pytest.raises(InvalidImageError, match="more than the limit"):
        load_image(np.zeros((100, 100, 3), np.uint8), max_pixels=5000)


def test_exif_orientation_is_applied():
    img = Image.new("RGB", (30, 10), "white")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    data = encode(img, "JPEG", exif=exif.tobytes())
    assert decode_image_bytes(data).size == (10, 30)


@pytest.mark.parametrize(
    "img",
    [
        Image.new("RGBA", (5, 5), (255, 0, 0, 0)),  # fully transparent red -> white
        Image.new("LA", (5, 5), (0, 0)),
        Image.new("P", (5, 5), 3),
        Image.new("L", (5, 5), 77),
        Image.new("1", (5, 5), 1),
        Image.fromarray(np.full((5, 5), 65535, np.uint16)),
        Image.new("CMYK", (5, 5), (0, 0, 0, 0)),
    ],
)
def test_odd_modes_become_rgb(img):
    fmt = "TIFF" if img.mode in ("CMYK", "I;16") else "PNG"
    out = decode_image_bytes(encode(img, fmt))
    assert out.mode == "RGB" and out.size == (5, 5)
    if img.mode in ("RGBA", "LA"):
        assert np.asarray(out).min() == 255  # transparent pixels composite over white
    if img.mode == "I;16":
        assert np.asarray(out).min() == 255  # 16-bit white stays white


def test_bad_arrays_and_objects():
    with pytest.raises(InvalidImageError, match="uint8"):
        load_image(np.zeros((4, 4, 3), np.float32))
    with pytest.raises(InvalidImageError, match="shape"):
        load_image(np.zeros((4, 4, 5), np.uint8))
    with pytest.raises(InvalidImageError, match="cannot read an image"):
        load_image(42)
    with pytest.raises(InvalidImageError, match="no such file"):
        load_image("/nonexistent/cat.jpg")
