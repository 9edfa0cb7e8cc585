"""Running an audit: images in batches through the method's batch path, results written
as they are computed, so an interrupted audit continues where it stopped.

The output folder holds ``audit.json`` (what is audited: model fingerprint, method,
settings, the images' keys), ``maps.npy`` (one float32 map per image, memory-mapped,
NaN until computed) and ``rows.jsonl`` (one line per finished image). A batch's maps
are flushed to disk before its rows are appended, so a row on disk always has its map;
after a crash (even ``kill -9``) only the unfinished batch is computed again.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import PicassoError
from ..core.images import load_image
from ..core.model import Model
from ..core.progress import Progress
from ..requests import AuditRequest, Checked
from .dataset import Item
from .metrics import in_box, object_region, pointing

CONFIG = "audit.json"
MAPS = "maps.npy"
ROWS = "rows.jsonl"

Record = dict[str, Any]


class AuditFolderError(PicassoError):
    """The output folder holds a different audit."""


def process(
    model: Model,
    checked: Checked[AuditRequest],
    chunk: list[tuple[int, Item]],
    progress: Progress | None = None,
) -> list[tuple[int, Record, np.ndarray | None]]:
    """Explain one chunk of images: (row, record, map) per image; an image that cannot
    be read (or whose box or mask does not fit it) gets a record with its error and no
    map. The same function runs in the local engine and in every Ray worker."""
    progress = progress or Progress()
    done: list[tuple[int, Record, np.ndarray | None]] = []
    ready = []
    for row, item in chunk:
        try:
            loaded = load_image(item.source)
            region = object_region(loaded.image.size, item.box, item.mask, model.info.preprocessing)
        except PicassoError as exc:
            done.append((row, _record(model, item, error=str(exc)), None))
            continue
        ready.append((row, item, loaded.image, region))
    if ready:
        batch = model.preprocess([image for _, _, image, _ in ready])
        inner = Progress(lambda _done, _total: progress.check())
        output = checked.method().explain_batch(
            model, batch, [item.label for _, item, _, _ in ready], checked.settings, inner
        )
        probabilities, targets = output.probabilities, output.targets
        predicted = probabilities.argmax(axis=1)
        for i, (row, item, _, region) in enumerate(ready):
            attribution = np.asarray(output.maps[i], np.float32)
            record = _record(
                model,
                item,
                predicted=int(predicted[i]),
                probability=float(probabilities[i, predicted[i]]),
                target=targets[i],
                target_probability=float(probabilities[i, targets[i]]),
                in_box=in_box(attribution, region),
                pointing=pointing(attribution, region),
                box_share=float(region.mean()) if region is not None else math.nan,
                extras=output.extras[i],
            )
            done.append((row, record, attribution))
    return sorted(done, key=lambda x: x[0])


def _record(
    model: Model,
    item: Item,
    predicted: int | None = None,
    probability: float = math.nan,
    target: int | None = None,
    target_probability: float = math.nan,
    in_box: float = math.nan,
    pointing: bool | None = None,
    box_share: float = math.nan,
    extras: dict[str, Any] | None = None,
    error: str | None = None,
) -> Record:
    label = model.info.label
    record: Record = {
        "image": item.name,
        "label": label(item.label) if item.label is not None else None,
        "predicted": label(predicted) if predicted is not None else None,
        "probability": probability,
        "correct": (predicted == item.label)
        if item.label is not None and predicted is not None
        else None,
        "target": label(target) if target is not None else None,
        "target_probability": target_probability,
        "in_box": in_box,
        "pointing": pointing,
        "box_share": box_share,
        "label_index": item.label,
        "predicted_index": predicted,
        "target_index": target,
        "error": error,
    }
    for key, value in (extras or {}).items():  # the method's numbers, where scalar
        if isinstance(value, (bool, int, float, str)) and key not in record:
            record[key] = value
    return record


class AuditFolder:
    """The output folder of one audit: its configuration, maps and finished rows."""

    def __init__(self, folder: Path, config: dict[str, Any], shape: tuple[int, int]) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        config_path = folder / CONFIG
        count = len(config["items"])
        if config_path.is_file():
            existing = json.loads(config_path.read_text(encoding="utf-8"))
            if existing != config:
                different = [k for k in config if existing.get(k) != config[k]]
                raise AuditFolderError(
                    f"{folder} holds another audit (its {', '.join(different)} differ); "
                    "choose another folder or delete it"
                )
        if not (folder / MAPS).is_file():
            maps = np.lib.format.open_memmap(
                folder / MAPS, mode="w+", dtype=np.float32, shape=(count, *shape)
            )
            maps[:] = np.nan
            maps.flush()
            del maps
        config_path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        self.maps = np.load(folder / MAPS, mmap_mode="r+")
        self.records = self._read_rows()

    def _read_rows(self) -> dict[int, Record]:
        records: dict[int, Record] = {}
        path = self.folder / ROWS
        if not path.is_file():
            return records
        with path.open(encoding="utf-8") as lines:
            for line in lines:
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:  # a line cut by a crash: its row runs again
                    continue
                records[int(record.pop("row"))] = record
        return records

    def write(self, results: list[tuple[int, Record, np.ndarray | None]]) -> None:
        for row, _, attribution in results:
            if attribution is not None:
                self.maps[row] = attribution
        self.maps.flush()  # maps first: a row on disk always has its map
        with (self.folder / ROWS).open("a", encoding="utf-8") as out:
            for row, record, _ in results:
                out.write(json.dumps({"row": row, **_jsonable(record)}) + "\n")
                self.records[row] = record
            out.flush()
            os.fsync(out.fileno())


def _jsonable(record: Record) -> Record:
    return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in record.items()}


def chunks(pending: list[tuple[int, Item]], size: int) -> Iterator[list[tuple[int, Item]]]:
    for start in range(0, len(pending), size):
        yield pending[start : start + size]


def run_local(
    model: Model,
    checked: Checked[AuditRequest],
    folder: AuditFolder,
    pending: list[tuple[int, Item]],
    batch_size: int,
    report: Callable[[int], None],
    progress: Progress,
) -> None:
    """Explain the pending images here, batch by batch, writing each batch at once."""
    for chunk in chunks(pending, batch_size):
        progress.check()
        folder.write(process(model, checked, chunk, progress))
        report(len(chunk))
