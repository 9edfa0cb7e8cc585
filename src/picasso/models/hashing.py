"""Content hashes of model files (results record them, caches key on them)."""

from __future__ import annotations

import hashlib
from pathlib import Path


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def path_sha256(path: Path) -> str:
    """A file's hash, or for a folder (a SavedModel) the hash of its files' relative
    names and hashes, in order."""
    if not path.is_dir():
        return file_sha256(path)
    h = hashlib.sha256()
    for item in sorted(p for p in path.rglob("*") if p.is_file()):
        h.update(item.relative_to(path).as_posix().encode())
        h.update(file_sha256(item).encode())
    return h.hexdigest()
