"""What an audit runs over: a folder (class sub-folders give labels), a CSV/Parquet
manifest, a sequence of images, or the bundled ``demo:tanks-dataset``; with labels,
object boxes or masks aligned to the images.

Problems with the dataset as a whole (a missing folder, a label the model does not
have, boxes not aligned with the images) are errors before anything runs. Problems
with one image (not an image, a box outside it) become that row's error.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import PicassoError
from ..core.model import Model

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".bmp", ".tif", ".tiff", ".webp", ".ppm"}
MANIFEST_SUFFIXES = {".csv", ".parquet"}
BOX_COLUMNS = ("x0", "y0", "x1", "y1")
DEMO_DATASET = "demo:tanks-dataset"
DEMO_SCENES = 120  # tanks and forests, weather independent of the class (seeded)

Box = tuple[float, float, float, float]  # (x0, y0, x1, y1) in the image's own pixels


class DatasetError(PicassoError):
    """The dataset as a whole cannot be audited (named, with what to do)."""


@dataclass(frozen=True)
class Item:
    """One image of the dataset, with what is known about it."""

    source: Any  # a path, PIL image, (H, W, 3) array or bytes: anything explain() takes
    name: str  # how the table and the report name it
    label: int | None = None  # the true class, when known
    box: Box | None = None  # the object's box
    mask: Any = None  # the object's mask: a boolean array or an image file

    @property
    def key(self) -> str:
        """What identifies the item across runs (for resuming)."""
        return self.name


def resolve(
    images: Any,
    model: Model,
    labels: Sequence[Any] | bool | None = None,
    boxes: Sequence[Box | None] | None = None,
    masks: Sequence[Any] | None = None,
) -> list[Item]:
    """The dataset as items. ``labels``, ``boxes`` and ``masks``, when given, are
    aligned with the images (a folder's images in sorted order)."""
    if isinstance(images, Sequence) and images and all(isinstance(i, Item) for i in images):
        items = list(images)  # already resolved (e.g. by the CLI, with boxes by name)
    elif isinstance(images, (str, Path)) and str(images) == DEMO_DATASET:
        items = demo_items()
    elif isinstance(images, (str, Path)):
        path = Path(images).expanduser()
        if not path.exists():
            raise DatasetError(f"{path}: no such folder or manifest")
        if path.is_dir():
            items = folder_items(path, model)
        elif path.suffix.lower() in MANIFEST_SUFFIXES:
            items = manifest_items(path, model)
        else:
            raise DatasetError(
                f"{path}: give a folder of images, a CSV/Parquet manifest or {DEMO_DATASET}"
            )
    elif isinstance(images, (Sequence, np.ndarray)):
        items = [Item(source, _name(source, i)) for i, source in enumerate(images)]
    else:
        raise DatasetError(f"cannot audit {type(images).__name__}: give a folder or a list")
    if not items:
        raise DatasetError(f"{images}: no images found")
    names = _unique_names(items)
    items = [_replace(item, name=name) for item, name in zip(items, names, strict=True)]
    if isinstance(labels, bool):
        if not labels:  # the labels of class folders or a manifest are not wanted
            items = [_replace(item, label=None) for item in items]
    elif labels is not None:
        _aligned(labels, items, "labels")
        items = [
            _replace(item, label=label_index(model, value))
            for item, value in zip(items, labels, strict=True)
        ]
    if boxes is not None:
        _aligned(boxes, items, "boxes")
        items = [
            _replace(item, box=_box(b, item.name)) for item, b in zip(items, boxes, strict=True)
        ]
    if masks is not None:
        _aligned(masks, items, "masks")
        items = [_replace(item, mask=m) for item, m in zip(items, masks, strict=True)]
    return items


def label_index(model: Model, value: Any) -> int | None:
    """A label given as a class index or name, as the model's class index."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    labels = model.info.labels
    if isinstance(value, (bool, np.bool_)):
        raise DatasetError(f"label {value!r} is neither a class index nor a class name")
    if isinstance(value, (int, np.integer)):
        if labels and not 0 <= int(value) < len(labels):
            raise DatasetError(f"label {value} does not exist (model has {len(labels)} classes)")
        return int(value)
    text = str(value)
    if text in labels:
        return labels.index(text)
    if text.isdigit() and (not labels or int(text) < len(labels)):
        return int(text)
    known = ", ".join(labels[:10]) + (" ..." if len(labels) > 10 else "")
    raise DatasetError(f"label {text!r} is not a class of model {model.info.name!r} ({known})")


def folder_items(root: Path, model: Model) -> list[Item]:
    """Images below ``root``, recursively, in sorted order. When every image lies in a
    sub-folder named after one of the model's classes, those names are the labels."""
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    folders = {p.relative_to(root).parts[0] for p in files if len(p.relative_to(root).parts) > 1}
    known = set(model.info.labels)
    top_level = any(len(p.relative_to(root).parts) == 1 for p in files)
    labelled = bool(folders) and not top_level and folders <= known
    if folders and folders & known and not folders <= known:
        unknown = ", ".join(sorted(folders - known))
        raise DatasetError(
            f"{root}: sub-folders {unknown} are not classes of model {model.info.name!r}; "
            "name class folders after the model's labels"
        )
    return [
        Item(
            p,
            p.relative_to(root).as_posix(),
            model.info.labels.index(p.relative_to(root).parts[0]) if labelled else None,
        )
        for p in files
    ]


def manifest_items(path: Path, model: Model) -> list[Item]:
    """Rows of a CSV or Parquet manifest: ``image`` (a path relative to the manifest),
    optional ``label``, box columns ``x0, y0, x1, y1`` and ``mask`` (a path)."""
    import pandas as pd

    try:
        table = pd.read_parquet(path) if path.suffix.lower() == ".parquet" else pd.read_csv(path)
    except Exception as exc:
        raise DatasetError(f"{path}: not a readable manifest ({exc})") from None
    if "image" not in table.columns:
        raise DatasetError(f"{path}: the manifest needs an 'image' column")
    has_boxes = [c for c in BOX_COLUMNS if c in table.columns]
    if has_boxes and len(has_boxes) != 4:
        raise DatasetError(f"{path}: box columns are x0, y0, x1, y1 (found {has_boxes})")
    items = []
    for row in table.to_dict("records"):
        source = path.parent / str(row["image"])
        box = None
        if has_boxes and not any(_missing(row[c]) for c in BOX_COLUMNS):
            box = _box(tuple(float(row[c]) for c in BOX_COLUMNS), str(row["image"]))
        mask = None if _missing(row.get("mask")) else path.parent / str(row["mask"])
        label = None if _missing(row.get("label")) else label_index(model, row["label"])
        items.append(Item(source, str(row["image"]), label, box, mask))
    return items


def demo_items(count: int = DEMO_SCENES, seed: int = 7) -> list[Item]:
    """The bundled tank world at dataset scale: half tanks (with their boxes), half
    forests, the weather independent of the class."""
    from ..demo.tanks import make_dataset

    scenes = make_dataset(count, seed=seed, bias=0.5)
    return [
        Item(s.image, f"{'tank' if s.label else 'forest'}-{i:03d}-{s.weather}.png", s.label, s.box)
        for i, s in enumerate(scenes)
    ]


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _box(value: Any, name: str) -> Box | None:
    if value is None:
        return None
    try:
        x0, y0, x1, y1 = (float(v) for v in value)
    except (TypeError, ValueError):
        raise DatasetError(f"{name}: a box is (x0, y0, x1, y1), got {value!r}") from None
    if not (x0 < x1 and y0 < y1) or any(math.isnan(v) for v in (x0, y0, x1, y1)):
        raise DatasetError(f"{name}: box {value!r} is empty (needs x0 < x1 and y0 < y1)")
    return x0, y0, x1, y1


def _aligned(values: Sequence[Any], items: list[Item], what: str) -> None:
    if len(values) != len(items):
        raise DatasetError(f"{len(values)} {what} for {len(items)} images; give one per image")


def _name(source: Any, index: int) -> str:
    if isinstance(source, (str, Path)):
        return Path(source).name
    return f"image-{index:05d}"


def _unique_names(items: list[Item]) -> list[str]:
    seen: dict[str, int] = {}
    names = []
    for item in items:
        count = seen.get(item.name, 0)
        seen[item.name] = count + 1
        names.append(item.name if count == 0 else f"{item.name}#{count}")
    return names


def _replace(item: Item, **changes: Any) -> Item:
    from dataclasses import replace

    return replace(item, **changes)
