"""``picasso audit``: explain a whole dataset, find where the evidence lies, write a
table, the maps and a report. Resumable: run the same command again after an
interruption and it continues where it stopped."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import click

from ..core.errors import PicassoError
from ..plugins import MethodRegistry
from .common import ProgressBar, fail, method_option, model_option
from .settings_options import add_setting_options, given_settings


def audit_command(registry: MethodRegistry) -> click.Command:
    @click.command("audit")
    @click.argument("data")
    @model_option("demo:tanks-biased")
    @method_option(registry, "grad-cam")
    @click.option(
        "--labels-from",
        type=click.Choice(["auto", "folders", "manifest", "none"]),
        default="auto",
        show_default=True,
        help="Where true labels come from: class sub-folders, the manifest's label "
        "column, or nowhere (explain the predicted class).",
    )
    @click.option(
        "--boxes",
        "boxes_csv",
        type=click.Path(dir_okay=False, exists=True, path_type=Path),
        default=None,
        help="CSV with image, x0, y0, x1, y1 (the object's box in the image's pixels); "
        "image as named in the table (a path relative to DATA).",
    )
    @click.option(
        "--object-masks",
        "masks_dir",
        type=click.Path(file_okay=False, exists=True, path_type=Path),
        default=None,
        help="Folder of object masks, each at its image's relative path (.png).",
    )
    @click.option(
        "--out",
        "-o",
        type=click.Path(file_okay=False, path_type=Path),
        default=Path("picasso-audit"),
        show_default=True,
        help="Output folder (an interrupted audit resumes from it).",
    )
    @click.option(
        "--images-per-step",
        type=click.IntRange(1, 4096),
        default=32,
        show_default=True,
        help="Images loaded and explained per step.",
    )
    @click.option(
        "--engine", type=click.Choice(["local", "ray"]), default="local", show_default=True
    )
    @click.option("--workers", type=click.IntRange(1, 1024), default=1, help="Ray actors.")
    @click.option("--gpus-per-worker", type=click.FloatRange(0, 16), default=0.0)
    @click.option("--ray-address", default=None, help="An existing Ray cluster.")
    @click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
    def audit_cmd(
        data: str,
        model_ref: str,
        method: str,
        labels_from: str,
        boxes_csv: Path | None,
        masks_dir: Path | None,
        out: Path,
        images_per_step: int,
        engine: str,
        workers: int,
        gpus_per_worker: float,
        ray_address: str | None,
        quiet: bool,
        **raw_settings: Any,
    ) -> None:
        """Audit DATA: a folder (class sub-folders give labels), a CSV/Parquet
        manifest, or demo:tanks-dataset (120 generated tank and forest scenes with
        boxes). Writes audit.parquet, classes.csv, maps.npy, summary.json and
        report.html into --out."""
        from ..audits import resolve, run_audit
        from ..models import load_model
        from ..requests import AuditRequest, check

        try:
            request = AuditRequest(
                method=method,
                settings=given_settings(raw_settings),
                dataset=data,
                batch_size=images_per_step,
                engine=engine,
                workers=workers,
                gpus_per_worker=gpus_per_worker,
                ray_address=ray_address,
            )
            model = load_model(model_ref)
            checked = check(request, model, registry)
            items = resolve(data, model, labels=False if labels_from == "none" else None)
            if labels_from in ("folders", "manifest") and all(i.label is None for i in items):
                raise PicassoError(f"{data}: no labels found in its {labels_from}")
            items = _with_boxes_and_masks(items, boxes_csv, masks_dir)
        except PicassoError as exc:
            fail(str(exc))
        bar = ProgressBar(f"auditing {len(items)} images", quiet)
        try:
            audit = run_audit(model, items, checked, out=out, progress=bar, model_ref=model_ref)
        except KeyboardInterrupt:
            bar.close()
            fail(f"interrupted; run the same command again to continue ({out})", code=130)
        except PicassoError as exc:
            bar.close()
            fail(str(exc))
        bar.close()
        click.echo(audit.classes.to_string(index=False))
        for strategy in audit.flagged:
            click.echo(f"flagged: {strategy.description.replace('*', '')}")
        if not audit.flagged:
            click.echo("no strategy flagged")
        click.echo(f"-> {out / 'report.html'}")

    add_setting_options(audit_cmd, registry)
    return audit_cmd


def _with_boxes_and_masks(
    items: list[Any], boxes_csv: Path | None, masks_dir: Path | None
) -> list[Any]:
    """Boxes from a CSV and masks from a folder, matched to the items by name."""
    from ..audits.dataset import DatasetError

    if boxes_csv is not None:
        import pandas as pd

        table = pd.read_csv(boxes_csv)
        missing = {"image", "x0", "y0", "x1", "y1"} - set(table.columns)
        if missing:
            raise DatasetError(f"{boxes_csv}: missing columns {', '.join(sorted(missing))}")
        names = {item.name for item in items}
        unknown = sorted(set(table["image"].astype(str)) - names)
        if unknown:
            raise DatasetError(f"{boxes_csv}: no image {unknown[0]!r} in the dataset")
        boxes = {
            str(r["image"]): (r["x0"], r["y0"], r["x1"], r["y1"]) for r in table.to_dict("records")
        }
        items = [replace(item, box=boxes.get(item.name, item.box)) for item in items]
    if masks_dir is not None:
        items = [
            replace(item, mask=(masks_dir / item.name).with_suffix(".png"))
            if (masks_dir / item.name).with_suffix(".png").is_file()
            else item
            for item in items
        ]
    return items
