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


def store_dataset(services: Services, file: UploadFile) -> tuple[str, int]:
    """Unpack an uploaded zip of images into the data folder, checked as it goes: the
    zip and what it unpacks to within ``max_dataset_bytes``, at most
    ``max_dataset_files`` images, names that stay inside the folder, only image
    suffixes kept (each image is decoded, and refused or not, by the audit itself).
    Returns the dataset reference (``upload:<sha256>``) and the number of images."""
    import io
    import shutil
    import zipfile

    from ..audits.dataset import IMAGE_SUFFIXES

    settings = services.settings
    limit = settings.max_dataset_bytes
    data = file.file.read(limit + 1)
    label = display_name(file.filename)
    if len(data) > limit:
        raise HTTPException(413, f"{label}: the zip is larger than {limit:,} bytes")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        entries = [e for e in archive.infolist() if not e.is_dir()]
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise HTTPException(422, f"{label}: not a readable zip file ({exc})") from None
    images = [e for e in entries if PurePath(e.filename).suffix.lower() in IMAGE_SUFFIXES]
    if not images:
        raise HTTPException(422, f"{label}: the zip holds no images")
    if len(images) > settings.max_dataset_files:
        raise HTTPException(
            422, f"{label}: {len(images):,} images, more than {settings.max_dataset_files:,}"
        )
    sha256 = hashlib.sha256(data).hexdigest()
    target = services.store.data_dir / "datasets" / sha256
    if target.is_dir():
        return f"upload:{sha256}", len(images)
    partial = target.with_name(f"{sha256}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    written = 0
    try:
        for entry in images:
            parts = [p for p in PurePath(entry.filename.replace("\\", "/")).parts if p]
            if entry.filename.startswith("/") or any(p in ("..", ".") for p in parts):
                raise HTTPException(422, f"{label}: unsafe path {entry.filename!r} in the zip")
            clean = [re.sub(r"[^\w.() -]+", "_", p).strip(" ") or "_" for p in parts]
            path = partial.joinpath(*clean)
            path.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(entry) as source:  # sizes in the header are not trusted
                content = source.read(limit - written + 1)
            written += len(content)
            if written > limit:
                raise HTTPException(413, f"{label}: unpacks to more than {limit:,} bytes")
            path.write_bytes(content)
        partial.rename(target)
    except (zipfile.BadZipFile, OSError, EOFError, RuntimeError, NotImplementedError) as exc:
        raise HTTPException(422, f"{label}: the zip is damaged ({exc})") from None
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return f"upload:{sha256}", len(images)
