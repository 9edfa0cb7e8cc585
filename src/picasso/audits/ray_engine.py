"""The audit on Ray: Ray Data ``map_batches`` over the pending images with a pool of
actors, one model per actor (GPUs as actor resources). Each actor runs the same
:func:`~picasso.audits.engine.process` as the local engine, so the table and the maps
are the same; the driver writes results as they arrive, so resuming works as locally.

A local Ray is started on demand; ``ray_address`` joins an existing cluster (the
workers then need Picasso, the model file or package, and the images at the same
paths, or images given as arrays).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..core.errors import MissingDependencyError, PicassoError
from ..core.model import Model
from ..core.progress import Progress
from ..requests import AuditRequest, Checked
from .dataset import Item
from .engine import AuditFolder, Record


def _ray() -> Any:
    try:
        import ray
        import ray.data
    except ImportError:
        raise MissingDependencyError("ray", "ray", 'An audit with engine="ray"') from None
    return ray


class AuditActor:
    """One Ray actor: loads the model once, then explains batches of rows."""

    def __init__(
        self,
        model: Model | str,
        request: AuditRequest,
        plugin_dirs: list[str] | None,
        items: list[Item],
    ) -> None:
        from ..models import load_model
        from ..plugins import discover
        from ..requests import check

        self.model = load_model(model) if isinstance(model, str) else model
        self.checked = check(request, self.model, discover(plugin_dirs))
        self.items = items

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, Any]:
        import json

        from .engine import _jsonable, process

        rows = [int(r) for r in batch["row"]]
        results = process(self.model, self.checked, [(r, self.items[r]) for r in rows])
        height, width = self.model.info.input_size
        maps = np.full((len(results), height, width), np.nan, np.float32)
        for i, (_, _, attribution) in enumerate(results):
            if attribution is not None:
                maps[i] = attribution
        return {
            "row": np.array([r for r, _, _ in results], np.int64),
            "record": np.array([json.dumps(_jsonable(rec)) for _, rec, _ in results], object),
            "map": maps,
            "has_map": np.array([a is not None for _, _, a in results]),
        }


def run_ray(
    model: Model,
    model_ref: str | None,
    checked: Checked[AuditRequest],
    folder: AuditFolder,
    items: list[Item],
    pending: list[tuple[int, Item]],
    report: Callable[[int], None],
    progress: Progress,
    plugin_dirs: list[str] | None = None,
) -> None:
    """Explain the pending images on Ray, writing each returned batch at once."""
    import json

    ray = _ray()
    request = checked.request
    if not ray.is_initialized():
        ray.init(
            address=request.ray_address,
            ignore_reinit_error=True,
            include_dashboard=False,
            log_to_driver=False,
            configure_logging=False,
        )
    if not pending:
        return
    try:
        dataset = ray.data.from_items([{"row": row} for row, _ in pending])
        results = dataset.map_batches(
            AuditActor,
            fn_constructor_args=(model_ref or model, request, plugin_dirs, items),
            batch_size=request.batch_size,
            compute=ray.data.ActorPoolStrategy(size=request.workers),
            num_gpus=request.gpus_per_worker or None,
            batch_format="numpy",
        )
        for batch in results.iter_batches(batch_size=None, batch_format="numpy"):
            progress.check()
            written: list[tuple[int, Record, np.ndarray | None]] = [
                (int(row), json.loads(record), attribution if has else None)
                for row, record, attribution, has in zip(
                    batch["row"], batch["record"], batch["map"], batch["has_map"], strict=True
                )
            ]
            folder.write(written)
            report(len(written))
    except PicassoError:
        raise
    except Exception as exc:  # Ray wraps worker errors; say what failed in one line
        cause = getattr(exc, "cause", None) or exc
        if isinstance(cause, PicassoError):
            raise cause from None
        detail = " ".join(str(cause).split())[:400]
        raise PicassoError(f"the audit failed on Ray: {type(cause).__name__}: {detail}") from None
