"""``picasso explain``: maps for images, written as PNG overlays, ``.npy`` and JSON."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import click
from pydantic import ValidationError

from ..core.errors import PicassoError
from ..hiding import Hide, Marks
from ..plugins import MethodRegistry
from ..render import PERCENTILE, Display
from .common import ProgressBar, expand_images, fail, method_option, model_option
from .settings_options import add_setting_options, given_settings


def explain_command(registry: MethodRegistry) -> click.Command:
    @click.command("explain")
    @click.argument("images", nargs=-1, required=True)
    @model_option("demo:tanks-biased")
    @method_option(registry, "occlusion")
    @click.option(
        "--target",
        "targets",
        type=int,
        multiple=True,
        help="Class index to explain (repeatable); detectors: detection index, 0 being "
        "the most confident. Default: the top-1 class (detection).",
    )
    @click.option(
        "--top-k",
        type=click.IntRange(min=1),
        default=None,
        help="Explain the k most probable classes (detectors: detections).",
    )
    @click.option(
        "--out",
        "-o",
        type=click.Path(file_okay=False, path_type=Path),
        default=Path("picasso-out"),
        show_default=True,
        help="Output folder.",
    )
    @click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
    @click.option(
        "--threads",
        type=click.IntRange(1, 1024),
        default=None,
        help="CPU threads per model call [default: the framework's, one per core]; on a "
        "busy machine, fewer than its cores avoids oversubscription.",
    )
    @click.option(
        "--percentile",
        type=click.FloatRange(50, 100),
        default=PERCENTILE,
        show_default=True,
        help="The colour scale ends at this percentile of the map's magnitudes (100: its "
        "largest value); extreme pixels no longer wash out the rest.",
    )
    @click.option("--colormap", default=None, help="A matplotlib colormap for the overlay.")
    @click.option(
        "--sign",
        type=click.Choice(["auto", "both", "positive", "negative", "absolute"]),
        default="auto",
        show_default=True,
        help="Which values to draw (auto: both signs for signed maps).",
    )
    @click.option(
        "--faithfulness",
        is_flag=True,
        help="Also compute deletion/insertion curves and areas (in the JSON).",
    )
    @click.option(
        "--hide",
        "hide_boxes",
        multiple=True,
        metavar="X0,Y0,X1,Y1",
        help="Hide this box (model-input pixels, x1/y1 exclusive) from the model first "
        "(repeatable); e.g. with --method class-probabilities: what if it could not see it?",
    )
    @click.option(
        "--hide-mask",
        type=click.Path(dir_okay=False, exists=True, path_type=Path),
        default=None,
        help="Hide the white pixels of this PNG (the model's input size or the image's).",
    )
    @click.option(
        "--hide-fill",
        default="0",
        show_default=True,
        help="What hidden pixels become: a number in the model's input space, mean or blur.",
    )
    @click.option("--hide-invert", is_flag=True, help="Hide everything except the marked pixels.")
    @click.option(
        "--region",
        "region_boxes",
        multiple=True,
        metavar="X0,Y0,X1,Y1",
        help="Segmentation models: sum the class's logits over this box (model-input "
        "pixels; repeatable). Default: the pixels the model assigns to the class.",
    )
    @click.option(
        "--region-mask",
        type=click.Path(dir_okay=False, exists=True, path_type=Path),
        default=None,
        help="Segmentation models: the region as a PNG (white = in the region).",
    )
    def explain_cmd(
        images: tuple[str, ...],
        model_ref: str,
        method: str,
        targets: tuple[int, ...],
        top_k: int | None,
        out: Path,
        quiet: bool,
        threads: int | None,
        percentile: float,
        colormap: str | None,
        sign: str,
        faithfulness: bool,
        hide_boxes: tuple[str, ...],
        hide_mask: Path | None,
        hide_fill: str,
        hide_invert: bool,
        region_boxes: tuple[str, ...],
        region_mask: Path | None,
        **raw_settings: Any,
    ) -> None:
        """Explain IMAGES (files, folders or demo:PATTERN, e.g. demo:tank-*).

        Writes <stem>.<method>.png (overlay), .npy (maps: targets x H x W) and .json
        (summary) per image into --out.
        """
        from ..core.threads import set_threads
        from ..models import load_model
        from ..requests import ExplainRequest, check

        set_threads(threads)
        from ..service import explain_many, shares_batches

        if targets and top_k is not None:
            fail("give either --target or --top-k, not both", code=2)
        try:
            request = ExplainRequest(
                method=method,
                settings=given_settings(raw_settings),
                target=list(targets) if targets else None,
                top_k=top_k,
                faithfulness=faithfulness,
                hide=_hide(hide_boxes, hide_mask, hide_fill, hide_invert),
                region=_marks("--region", region_boxes, region_mask),
            )
            display = Display(percentile=percentile, colormap=colormap, sign=sign)  # type: ignore[arg-type]
            paths = expand_images(images)
            model = load_model(model_ref)
            checked = check(request, model, registry)
        except PicassoError as exc:
            fail(str(exc))
        failures = 0
        shared = len(paths) > 1 and shares_batches(checked)
        bar = ProgressBar(f"{len(paths)} images", quiet)  # images share model calls
        results = (
            explain_many(model, paths, checked, progress=bar)
            if shared
            else ((i, _one(model, path, checked, quiet)) for i, path in enumerate(paths))
        )
        try:
            for index, result in results:
                path = paths[index]
                if isinstance(result, PicassoError):
                    click.echo(f"error: {result}", err=True)
                    failures += 1
                    continue
                written = result.save(out, stem=path.stem, display=display)
                best = result.targets[0] if result.targets else None
                kind = "score" if "detections" in result.extras else "p"
                what = f"{best.label} ({kind}={best.probability:.3f})" if best else ""
                click.echo(f"{path}: {what} -> {written['png']}")
        finally:
            bar.close()
        if failures:
            fail(f"{failures} of {len(paths)} image(s) failed")

    add_setting_options(explain_cmd, registry)
    return explain_cmd


def _boxes(option: str, boxes: tuple[str, ...]) -> list[tuple[int, int, int, int]]:
    parsed = []
    for box in boxes:
        try:
            x0, y0, x1, y1 = (int(v) for v in box.split(","))
        except ValueError:
            fail(f"{option} {box!r}: expected four whole numbers X0,Y0,X1,Y1", code=2)
        parsed.append((x0, y0, x1, y1))
    return parsed


def _marks_fields(option: str, boxes: tuple[str, ...], mask: Path | None) -> dict[str, Any]:
    if boxes and mask is not None:
        fail(f"give either {option} boxes or {option}-mask, not both", code=2)
    png = base64.b64encode(mask.read_bytes()).decode("ascii") if mask is not None else None
    return {"boxes": _boxes(option, boxes) or None, "png": png}


def _validated(option: str, cls: type[Marks], fields: dict[str, Any]) -> Any:
    try:
        return cls.model_validate(fields)
    except ValidationError as exc:
        problems = "; ".join(e["msg"] for e in exc.errors())
        fail(f"{option}: {problems}", code=2)


def _marks(option: str, boxes: tuple[str, ...], mask: Path | None) -> Marks | None:
    """--region / --region-mask as :class:`Marks` (None when not given)."""
    if not boxes and mask is None:
        return None
    return _validated(option, Marks, _marks_fields(option, boxes, mask))


def _hide(boxes: tuple[str, ...], mask: Path | None, fill: str, invert: bool) -> Hide | None:
    """The --hide* options as a :class:`Hide` (None when nothing is hidden)."""
    if not boxes and mask is None:
        return None
    value: float | str = fill
    if fill not in ("mean", "blur"):
        try:
            value = float(fill)
        except ValueError:
            fail(f"--hide-fill {fill!r}: a number, mean or blur", code=2)
    fields = {**_marks_fields("--hide", boxes, mask), "fill": value, "invert": invert}
    return _validated("--hide", Hide, fields)


def _one(model: Any, path: Path, checked: Any, quiet: bool) -> Any:
    """One image with its own progress bar; its error is returned, not raised."""
    from ..service import explain

    bar = ProgressBar(path.name, quiet)
    try:
        return explain(model, path, checked, progress=bar)
    except PicassoError as exc:
        return exc
    finally:
        bar.close()
