"""Uploaded images: untrusted bytes checked (size, decodes as an image within the pixel
limit) and kept under their sha256. A client's file name is only ever a label."""

from __future__ import annotations

import hashlib
import re
from pathlib import PurePath

from fastapi import HTTPException
from starlette.datastructures import UploadFile

from ..core.errors import InvalidImageError
from ..core.images import LoadedImage, decode_image_bytes
from .state import Services


def display_name(filename: str | None) -> str:
    """A client's file name reduced to a short label (never used as a path)."""
    base = re.split(r"[\\/]", filename or "")[-1]
    cleaned = re.sub(r"[^\w.() -]+", "_", base).strip(" ._")
    return cleaned[:80] or "upload"


def store_upload(services: Services, file: UploadFile) -> LoadedImage:
    """Check an uploaded file and keep it under its sha256; the returned image is
    named by the client's file name, without its suffix."""
    settings = services.settings
    data = file.file.read(settings.max_upload_bytes + 1)
    label = display_name(file.filename)
    if len(data) > settings.max_upload_bytes:
        raise HTTPException(
            413, f"{label}: image is larger than {settings.max_upload_bytes:,} bytes"
        )
    try:
        image = decode_image_bytes(data, name=label, max_pixels=settings.max_pixels)
    except InvalidImageError as exc:
        raise HTTPException(422, str(exc)) from None
    sha256 = hashlib.sha256(data).hexdigest()
    services.store.save_image(sha256, data)
    return LoadedImage(image, PurePath(label).stem or label, sha256)
