"""Server-rendered pages (Jinja2, autoescaped) over the same runner and store as the
API. Page routes that touch files or the database are plain ``def`` (FastAPI runs them
in its thread pool); model code only ever runs in the job workers."""

from __future__ import annotations

import difflib
import functools
import hashlib
import io
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile

from ..core.errors import InvalidImageError, PicassoError, SettingsError, TargetError, quoted
from ..core.images import LoadedImage, load_image
from ..core.model import Model
from ..demo import IMAGES_DIR
from ..hiding import Marks
from ..jobs import Job, JobStore
from ..jobs.store import FINISHED
from ..plugins import MethodRegistry
from ..requests import AuditRequest, Checked, ExplainRequest
from .forms import form_fields, settings_from_form
from .security import COOKIE, token_matches
from .settings import MAX_FILES
from .state import Services, ServicesDep, get_services, job_or_404
from .templating import error_page, render
from .uploads import store_dataset, store_upload

router = APIRouter(include_in_schema=False)
SHA256 = re.compile(r"^[0-9a-f]{64}$")


def sample_names(model: Model | None = None) -> list[str]:
    """The bundled samples; for a model, those that fit it (grey samples for grey
    models, colour samples for colour ones: no 8-bit digits offered to ImageNet)."""
    samples = _bundled_samples()
    if model is None:
        return list(samples)
    grey = model.info.preprocessing.grayscale
    return [name for name, is_grey in samples.items() if is_grey == grey]


@functools.cache
def _bundled_samples() -> dict[str, bool]:
    """Each bundled sample's name and whether it is grey (package data: read once)."""
    from PIL import Image

    samples = {}
    for path in sorted(IMAGES_DIR.glob("*.png")):
        with Image.open(path) as image:
            samples[path.stem] = image.mode in ("L", "LA", "I;16", "1")
    return samples


@dataclass
class FormState:
    """What the run form shows (its last submission, when re-shown with errors)."""

    method: str = "occlusion"
    settings: dict[str, str] = field(default_factory=dict)
    samples: list[str] = field(default_factory=list)
    target_mode: str = "top1"
    top_k: str = "2"
    target: str = "0"
    faithfulness: bool = False
    compare: str = ""
    dataset: str = "demo:tanks-dataset"  # the audit form's
    also: list[str] = field(default_factory=list)  # more methods on the same images
    again: str = ""  # the sha256 of a stored image to run again
    again_name: str = ""
    batch_size: str = "32"
    region: str = ""  # segmentation models: "x0,y0,x1,y1" in model-input pixels


def _method_rows(registry: MethodRegistry, model: Model) -> list[dict[str, Any]]:
    rows = []
    for name, cls in sorted(registry.items()):
        rows.append(
            {
                "name": name,
                "description": cls.description,
                "reference": cls.reference,
                "cost": cls.cost,
                "fields": form_fields(cls, model),
                "maps": cls.produces_map,
                "unavailable": cls.unavailable(model) or "",
            }
        )
    return rows


def unknown_model_page(request: Request, model: str | None) -> HTMLResponse | None:
    """The 404 page for a model name this server does not serve (None: it does, or no
    name was given)."""
    models = get_services(request).models
    if model is None or model in models:
        return None
    message = f"unknown model {quoted(model)}; available: {', '.join(models)}"
    return error_page(request, 404, message)


def index_page(
    request: Request,
    model: str | None,
    form: FormState | None = None,
    status: int = 200,
    error: str = "",
    field_errors: dict[str, str] | None = None,
    compare_mode: bool = False,
) -> HTMLResponse:
    if missing := unknown_model_page(request, model):
        return missing
    services = get_services(request)
    name = model or next(iter(services.models))
    form = form or FormState()
    if form.method not in services.registry:
        form.method = "occlusion" if "occlusion" in services.registry else min(services.registry)
    return render(
        request,
        "index.html",
        status,
        model=name,
        methods=_method_rows(services.registry, services.models[name]),
        samples=sample_names(services.models[name]),
        form=form,
        error=error,
        field_errors=field_errors or {},
        compare_mode=compare_mode,
        limits={
            "bytes": f"{services.settings.max_upload_bytes / 2**20:.3g} MiB",
            "pixels": f"{services.settings.max_pixels / 1e6:g} megapixels",
        },
    )


# -- job views -------------------------------------------------------------------------
CURVE_W, CURVE_H = 240, 120
MAX_TABS = 10  # classes shown as tabs on a results page; the others as links
MAX_METHODS = 8  # visualizations in one run


CURVE_LEFT, CURVE_TOP = 34, 6  # room for the axes' tick labels


def _polyline(xs: list[float], ys: list[float]) -> str:
    return " ".join(
        f"{CURVE_LEFT + x * CURVE_W:.1f},{CURVE_TOP + (1 - min(max(y, 0.0), 1.0)) * CURVE_H:.1f}"
        for x, y in zip(xs, ys, strict=True)
    )


def _ticks() -> dict[str, list[dict[str, Any]]]:
    """Tick positions and labels of the curves' axes (share of pixels, probability)."""
    return {
        "x": [{"at": CURVE_LEFT + f * CURVE_W, "label": f"{f:.0%}"} for f in (0.0, 0.5, 1.0)],
        "y": [{"at": CURVE_TOP + (1 - p) * CURVE_H, "label": f"{p:g}"} for p in (0.0, 0.5, 1.0)],
    }


def _numbers(extras: dict[str, Any]) -> dict[str, Any]:
    """Small extras worth showing next to the map (scalars, short numeric lists)."""
    shown: dict[str, Any] = {}
    for key, value in extras.items():
        if key in ("faithfulness", "classes"):
            continue
        if isinstance(value, float):
            shown[key] = f"{value:.4g}"
        elif isinstance(value, (int, str)) and not str(value).startswith("array["):
            shown[key] = value
        elif (
            isinstance(value, list)
            and 0 < len(value) <= 10
            and all(isinstance(v, (int, float)) for v in value)
        ):
            shown[key] = ", ".join(f"{v:.4g}" for v in value)
    return shown


def _hidden(job: Job, extras: dict[str, Any]) -> dict[str, str]:
    """What a result made on the explore page hid, in words."""
    hide = getattr(job.request, "hide", None)
    if hide is None or "hidden" not in extras:
        return {}
    how = "everything but the marked pixels" if hide.invert else "the marked pixels"
    share = 100 * float(extras["hidden"])
    return {"hidden": f"{share:.1f} % of the input ({how}), filled with {hide.fill}"}


def template_job(job: Job) -> dict[str, Any]:
    """A job as templates (plugins' included) see it: its row, with ``request`` as the
    API shows it (the request's fields, ``image`` and ``image_name``)."""
    return {
        **{f.name: getattr(job, f.name) for f in fields(job)},
        "request": job.request_json(),
        "is_sanity": job.is_sanity,
        "kind": job.kind,
    }


def job_view(services: Services, job: Job) -> dict[str, Any]:
    """Everything the job templates need, computed once here."""
    store = services.store
    sanity = job.is_sanity
    method = services.registry.get(job.method)
    title = {"sanity": "Sanity check of ", "audit": "Audit with "}.get(job.kind, "")
    served = services.models.get(job.model)
    view: dict[str, Any] = {
        "title": f"{title}{job.method} on {job.model}",
        "finished": job.status in FINISHED,
        "seconds": (job.finished - job.started) if job.finished and job.started else None,
        "method": method,
        "max_tabs": MAX_TABS,
        # the explore page serves classifiers the server still has
        "explorable": served is not None and served.info.task == "classification",
    }
    if job.status != "done":
        return view
    files = store.result_files(job)
    if not files["json"].is_file():
        view["error"] = f"the result files of job {job.id} are missing from the data folder"
        return view
    result = json.loads(files["json"].read_text(encoding="utf-8"))
    base = f"/api/v1/jobs/{job.id}/"
    view.update(
        result=result,
        downloads={kind: f"{base}result.{kind}" for kind in files},
        urls={"npy": f"{base}result.npy", "layers": f"{base}layers/"},
    )
    if sanity:
        view["template"] = "result_sanity.html"
        return view
    if job.kind == "audit":
        from ..audits import load_audit
        from ..audits.report import report_body

        audit = load_audit(store.result_dir(job.id))
        view.update(
            template="result_audit.html",
            report=report_body(audit, link=lambda row: f"/audits/{job.id}/images/{row}"),
        )
        return view
    extras = result.get("extras", {})
    view.update(
        template=f"method/{job.method}.html"
        if method and method.template
        else "result_generic.html",
        classes=extras.get("classes") or result.get("top", []),
        numbers=_numbers(extras) | _hidden(job, extras),
        curves=[
            {
                "label": target["label"],
                "width": CURVE_LEFT + CURVE_W + 14,
                "height": CURVE_TOP + CURVE_H + 20,
                "left": CURVE_LEFT,
                "top": CURVE_TOP,
                "plot_width": CURVE_W,
                "plot_height": CURVE_H,
                "ticks": _ticks(),
                "deletion": _polyline(curve["fractions"], curve["deletion"]),
                "insertion": _polyline(curve["fractions"], curve["insertion"]),
                "deletion_auc": curve["deletion_auc"],
                "insertion_auc": curve["insertion_auc"],
            }
            for target, curve in zip(
                result["targets"], extras.get("faithfulness", []), strict=False
            )
        ],
        sanity=_sanity_summary(store, job),
        sanity_problem=services.runner.sanity_problem(job),
        segments=_segments(extras),
        detections=_detections(extras, result.get("targets", [])),
    )
    return view


#: Boxes drawn on a detection result: the explained ones, those scoring at least
#: SHOWN_SCORE, and at least SHOWN_MIN, at most SHOWN_MAX in all.
SHOWN_SCORE, SHOWN_MIN, SHOWN_MAX = 0.5, 5, 20


def _detections(extras: dict[str, Any], targets: list[dict[str, Any]]) -> list[dict] | None:
    """A detection result's boxes to draw and pick, most confident first."""
    found = extras.get("detections")
    if not found:
        return None
    explained = {t["index"] for t in targets}
    shown = [
        {**d, "explained": d["index"] in explained}
        for rank, d in enumerate(found)
        if d["index"] in explained
        or (rank < SHOWN_MAX and (d["score"] >= SHOWN_SCORE or rank < SHOWN_MIN))
    ]
    return shown


def _segments(extras: dict[str, Any]) -> list[dict[str, Any]] | None:
    """A segmentation result's classes with their colours in ``segmentation.png``."""
    from ..render import segment_colours

    segments = extras.get("segments")
    if not segments:
        return None
    colours = segment_colours(max(s["index"] for s in segments) + 1)
    return [{**s, "colour": "#{:02x}{:02x}{:02x}".format(*colours[s["index"]])} for s in segments]


def _sanity_summary(store: JobStore, job: Job) -> dict[str, Any] | None:
    """The latest sanity check of this result, for the line next to the map."""
    check = store.sanity_of(job.id)
    if check is None:
        return None
    summary: dict[str, Any] = {"job": check}
    path = store.result_files(check)["json"]
    if check.status == "done" and path.is_file():
        summary.update(json.loads(path.read_text(encoding="utf-8")))
    return summary


# -- routes ----------------------------------------------------------------------------
@router.get("/", response_class=HTMLResponse)
def index(
    request: Request,
    services: ServicesDep,
    model: str | None = None,
    again: str | None = None,
    target: int | None = None,
    region: str = "",
) -> HTMLResponse:
    """The run form; ``again=<job id>`` fills it with that job's image, method, settings
    and classes, to run again with edited settings (``target`` and ``region``, from a
    segmentation result's picker, replace the class and the region)."""
    if again is None:
        return index_page(request, model)
    job = job_or_404(services, again)
    explained = job.request
    if not isinstance(explained, ExplainRequest):
        raise HTTPException(404, f"job {again[:80]} is not a visualization")
    old_region = explained.region.boxes if explained.region and explained.region.boxes else ()
    form = FormState(
        method=job.method,
        settings={f"{job.method}.{k}": str(v) for k, v in explained.settings.items()},
        target_mode="topk" if explained.top_k else ("class" if explained.targets else "top1"),
        top_k=str(explained.top_k or 2),
        target=str((explained.targets or [0])[0]),
        faithfulness=explained.faithfulness,
        again=job.image.sha256,
        again_name=job.image.name,
        region=region[:200] or ",".join(str(v) for v in (old_region[0] if old_region else ())),
    )
    if target is not None:
        form.target_mode, form.target = "class", str(target)
    return index_page(request, job.model, form)


@router.get("/compare", response_class=HTMLResponse)
def compare(
    request: Request,
    services: ServicesDep,
    pairs: str = "",
    model: str | None = None,
    shared: bool = True,
) -> HTMLResponse:
    if not pairs:
        if len(services.models) < 2:
            return error_page(request, 409, "comparing needs two models; this server has one")
        return index_page(request, model, compare_mode=True)
    shown = []
    for pair in pairs.split(",")[:MAX_FILES]:
        ids = pair.split(":")
        if len(ids) != 2:
            raise HTTPException(422, "pairs must look like <job id>:<job id>,...")
        jobs = [job_or_404(services, i) for i in ids]
        views = [job_view(services, j) for j in jobs]
        if shared:
            share_scale(views)
        shown.append(
            [{"job": template_job(j), "view": v} for j, v in zip(jobs, views, strict=True)]
        )
    return render(
        request,
        "compare.html",
        model=shown[0][0]["job"]["model"],
        pairs=shown,
        shared=shared,
        pairs_query=pairs,
    )


def share_scale(views: list[dict[str, Any]]) -> None:
    """One colour scale per class for the maps of the same method on two models, so they
    can be compared by eye: the wider of their limits."""
    results: list[dict[str, Any]] = [v.get("result") or {} for v in views]
    if not all(r.get("maps") for r in results) or len({r["method"] for r in results}) > 1:
        return
    for k in range(min(len(r["maps"]) for r in results)):
        low = min(r["maps"][k]["limits"][0] for r in results)
        high = max(r["maps"][k]["limits"][1] for r in results)
        if results[0]["signed"]:
            high = max(high, -low)
            low = -high
        for view, result in zip(views, results, strict=True):
            view.setdefault("scale", {})[k] = {"low": low, "high": high}
            result["maps"][k]["limits"] = [low, high]


@router.get("/grid", response_class=HTMLResponse)
def grid(request: Request, services: ServicesDep, jobs: str = "") -> HTMLResponse:
    """Several images x several visualizations: a row per image, a column per method."""
    rows = []
    for row in jobs.split(",")[:MAX_FILES]:
        ids = row.split(".")[:MAX_METHODS]
        rows.append([template_job(job_or_404(services, i)) for i in ids])
    if not rows or not rows[0]:
        raise HTTPException(422, "jobs must look like <id>.<id>,<id>.<id>")
    methods = [cell["method"] for cell in rows[0]]
    return render(
        request,
        "grid.html",
        model=rows[0][0]["model"],
        rows=rows,
        methods=methods,
        finished=FINISHED,
    )


@router.get("/history", response_class=HTMLResponse)
def history(
    request: Request, services: ServicesDep, jobs: str = "", model: str | None = None
) -> HTMLResponse:
    store = services.store
    if jobs:
        found = [store.get(i) for i in jobs.split(",")[:MAX_FILES]]
        listed = [j for j in found if j is not None]
    else:
        listed = store.list(200)
    shown = [template_job(j) for j in listed]
    model = model if model in services.models else None
    return render(request, "history.html", model=model, jobs=shown, only=bool(jobs))


@router.get("/jobs/{job_id}", response_class=HTMLResponse)
def job_page(request: Request, services: ServicesDep, job_id: str) -> HTMLResponse:
    job = job_or_404(services, job_id)
    view = job_view(services, job)
    return render(request, "job.html", model=job.model, job=template_job(job), view=view)


@router.post("/jobs/{job_id}/cancel")
def cancel_page(services: ServicesDep, job_id: str) -> RedirectResponse:
    job_or_404(services, job_id, cancel=True)
    return RedirectResponse(f"/jobs/{job_id}", status_code=303)


@router.post("/jobs/{job_id}/sanity")
def sanity_page(services: ServicesDep, job_id: str) -> RedirectResponse:
    job_or_404(services, job_id)
    job = services.runner.submit_sanity(job_id)
    return RedirectResponse(f"/jobs/{job.id}", status_code=303)


@router.get("/samples/{name}.png")
def sample(name: str) -> FileResponse:
    if name not in sample_names():  # a fixed list: the name is never a path
        raise HTTPException(404, f"no sample image {name!r}")
    return FileResponse(IMAGES_DIR / f"{name}.png", media_type="image/png")


@router.post("/run")
async def run(request: Request) -> Response:
    """The run form: images (uploads and samples) x one method, on one model or two."""
    form = await request.form(max_files=MAX_FILES, max_fields=1000)
    try:
        return await run_in_threadpool(RunForm(request, form).submit)
    finally:
        await form.close()


class FormProblem(Exception):
    """A problem with the run form, shown next to ``field`` with ``status``."""

    def __init__(self, status: int, message: str, fields: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.fields = status, message, dict(fields or {})


@contextmanager
def form_problems() -> Iterator[None]:
    """Errors of checking a request, as problems shown on the form."""
    try:
        yield
    except SettingsError as exc:
        raise FormProblem(422, str(exc), exc.fields) from None
    except TargetError as exc:
        raise FormProblem(422, str(exc), {"target": str(exc)}) from None
    except InvalidImageError as exc:  # a region or mask that does not fit the image
        raise FormProblem(422, str(exc), {"region": str(exc)}) from None
    except PicassoError as exc:
        raise FormProblem(409, str(exc)) from None


class RunForm:
    """One submission of the run form: read, checked as requests, then queued."""

    def __init__(self, request: Request, form: FormData) -> None:
        self.request = request
        self.form = form
        self.services = get_services(request)
        self.model = str(form.get("model") or "")
        self.shown = FormState(
            method=str(form.get("method") or ""),
            samples=[s for s in form.getlist("samples") if isinstance(s, str)],
            target_mode=str(form.get("target_mode") or "top1"),
            top_k=str(form.get("top_k") or "2"),
            target=str(form.get("target") or "0"),
            faithfulness=form.get("faithfulness") == "true",
            compare=str(form.get("compare") or ""),
            again=str(form.get("again") or ""),
            again_name=str(form.get("again_name") or ""),
            also=[a for a in form.getlist("also") if isinstance(a, str)][:MAX_METHODS],
            region=str(form.get("region") or "").strip()[:200],
        )

    def submit(self) -> Response:
        if missing := unknown_model_page(self.request, self.model):
            return missing
        try:
            checked = self.checked_requests()
            also = self.also_requests(checked)
            images = self.images()
        except FormProblem as problem:
            return index_page(
                self.request,
                self.model,
                self.shown,
                problem.status,
                problem.message,
                problem.fields,
                bool(self.shown.compare),
            )
        if also:  # several visualizations: a grid of images x methods
            rows = [
                [self.services.runner.submit(self.model, image, check) for check in also]
                for image in images
            ]
            grid = ",".join(".".join(job.id for job in row) for row in rows)
            return RedirectResponse(f"/grid?jobs={grid}", status_code=303)
        jobs = [
            [self.services.runner.submit(name, image, check) for name, check in checked.items()]
            for image in images
        ]
        if self.shown.compare:
            pairs = ",".join(f"{a.id}:{b.id}" for a, b in jobs)
            return RedirectResponse(f"/compare?pairs={pairs}", status_code=303)
        if len(jobs) == 1:
            return RedirectResponse(f"/jobs/{jobs[0][0].id}", status_code=303)
        ids = ",".join(j[0].id for j in jobs)
        return RedirectResponse(f"/history?jobs={ids}", status_code=303)

    def checked_requests(self) -> dict[str, Checked[ExplainRequest]]:
        """The form as one request, checked for the model (and the compared one)."""
        shown = self.shown
        method = self.services.registry.get(shown.method)
        if method is None:
            raise FormProblem(422, "choose a visualization")
        settings = settings_from_form(method, self.form)
        shown.settings = {f"{shown.method}.{k}": v for k, v in settings.items()}
        names = (self.model, shown.compare) if shown.compare else (self.model,)
        if shown.compare and shown.compare not in self.services.models:
            message = f"unknown model {quoted(shown.compare)}"
            raise FormProblem(404, message, {"compare": message})
        try:
            target = self.class_index(shown.target) if shown.target_mode == "class" else None
        except ValueError as error:
            message = str(error)
            raise FormProblem(422, message, {"target": message}) from None
        try:
            top_k = int(shown.top_k) if shown.target_mode == "topk" else None
        except ValueError:
            message = "the number of classes must be a whole number"
            raise FormProblem(422, message, {"target": message}) from None
        region = self.region()
        with form_problems():
            request = ExplainRequest(
                method=shown.method,
                settings=settings,
                target=target,
                top_k=top_k,
                faithfulness=shown.faithfulness,
                region=region,
            )
            return {name: self.services.runner.check(name, request) for name in names}

    def region(self) -> Marks | None:
        """The region field ("x0,y0,x1,y1", model-input pixels), for segmentation."""
        text = self.shown.region
        if not text:
            return None
        try:
            x0, y0, x1, y1 = (int(v) for v in text.replace(" ", "").split(","))
            return Marks(boxes=((x0, y0, x1, y1),))
        except ValueError as error:
            detail = str(error).splitlines()[-1] if "box" in str(error) else ""
            message = "the region must be four whole numbers x0,y0,x1,y1 " + (
                f"({detail})" if detail else "(model-input pixels, x1 and y1 exclusive)"
            )
            raise FormProblem(422, message, {"region": message}) from None

    def also_requests(
        self, checked: dict[str, Checked[ExplainRequest]]
    ) -> list[Checked[ExplainRequest]]:
        """The main request and one per "also" method (same classes, each with its own
        settings), when more than one visualization was chosen; else []."""
        main = checked[self.model]
        names = list(dict.fromkeys([main.request.method, *self.shown.also]))
        if len(names) < 2 or self.shown.compare:
            return []
        found = [main]
        for name in names[1:]:
            method = self.services.registry.get(name)
            if method is None:
                raise FormProblem(422, f"unknown visualization {quoted(name)}")
            settings = settings_from_form(method, self.form)
            self.shown.settings.update({f"{name}.{k}": v for k, v in settings.items()})
            request = main.request.model_copy(update={"method": name, "settings": settings})
            with form_problems():
                found.append(self.services.runner.check(self.model, request))
        return found

    def class_index(self, given: str) -> int:
        """A class given by index or by name (the form's search field sends the name;
        case does not matter)."""
        text = given.strip()
        if text.isdigit():
            return int(text)
        labels = self.services.models[self.model].info.labels
        lowered = [label.lower() for label in labels]
        if text.lower() in lowered:
            return lowered.index(text.lower())
        close = difflib.get_close_matches(text.lower(), lowered, n=3, cutoff=0.6)
        hint = f"; did you mean {', '.join(quoted(labels[lowered.index(c)]) for c in close)}?"
        raise ValueError(
            f"{quoted(text)} is neither a class index nor a class name of this model"
            + (hint if close else "")
        )

    def images(self) -> list[LoadedImage]:
        """Uploads (checked and stored), images stored before (``again``: a run again
        with edited settings) and ticked samples, at least one."""
        images: list[LoadedImage] = []
        for sha in self.form.getlist("again"):
            path = self.services.store.image_path(str(sha))
            if not (isinstance(sha, str) and len(sha) == 64 and path.is_file()):
                raise FormProblem(404, "that image is no longer stored", {"images": "gone"})
            loaded = load_image(path)
            images.append(
                LoadedImage(loaded.image, str(self.form.get("again_name") or "image"), sha)
            )
        for upload in self.form.getlist("files"):
            if not isinstance(upload, UploadFile) or not upload.filename:
                continue  # an empty file input
            try:
                images.append(store_upload(self.services, upload))
            except HTTPException as exc:
                raise FormProblem(exc.status_code, exc.detail, {"images": exc.detail}) from None
        for name in self.shown.samples:
            if name not in sample_names():
                message = f"no sample image {name!r}"
                raise FormProblem(404, message, {"images": message})
            images.append(load_image(IMAGES_DIR / f"{name}.png"))
        if not images:
            message = "choose at least one image (upload one or tick a sample)"
            raise FormProblem(422, message, {"images": message})
        return images


DATASET_LABELS = {"demo:tanks-dataset": "the demo tank world: 120 scenes with boxes"}


def audit_page(
    request: Request,
    model: str | None,
    form: FormState | None = None,
    status: int = 200,
    error: str = "",
    field_errors: dict[str, str] | None = None,
) -> HTMLResponse:
    if missing := unknown_model_page(request, model):
        return missing
    services = get_services(request)
    name = model or next(iter(services.models))
    form = form or FormState(method="grad-cam")
    rows = [r for r in _method_rows(services.registry, services.models[name]) if r["maps"]]
    if form.method not in [r["name"] for r in rows if not r["unavailable"]]:
        usable = [r["name"] for r in rows if not r["unavailable"]]
        form.method = "saliency" if "saliency" in usable else (usable or [""])[0]
    datasets = [
        {"reference": d, "label": DATASET_LABELS.get(d, d)} for d in services.runner.datasets()
    ]
    settings = services.settings
    return render(
        request,
        "audit.html",
        status,
        model=name,
        methods=rows,
        datasets=datasets,
        form=form,
        error=error,
        field_errors=field_errors or {},
        limits={
            "dataset": f"{settings.max_dataset_bytes / 2**20:.3g} MiB",
            "files": f"{settings.max_dataset_files:,}",
        },
    )


@router.get("/audit", response_class=HTMLResponse)
def audit_form(request: Request, model: str | None = None) -> HTMLResponse:
    return audit_page(request, model)


@router.post("/audit")
async def audit(request: Request) -> Response:
    """The audit form: a dataset (demo, a server folder or a zip) x one method."""
    form = await request.form(max_files=1, max_fields=1000)
    try:
        return await run_in_threadpool(_submit_audit, request, form)
    finally:
        await form.close()


def _submit_audit(request: Request, form: FormData) -> Response:
    services = get_services(request)
    model = str(form.get("model") or "")
    if missing := unknown_model_page(request, model):
        return missing
    shown = FormState(
        method=str(form.get("method") or ""),
        dataset=str(form.get("dataset") or ""),
        batch_size=str(form.get("batch_size") or "32"),
    )

    def again(status: int, message: str, fields: dict[str, str]) -> HTMLResponse:
        return audit_page(request, model, shown, status, message, fields)

    method = services.registry.get(shown.method)
    if method is None:
        return again(422, "choose a visualization", {})
    settings = settings_from_form(method, form)
    shown.settings = {f"{shown.method}.{k}": v for k, v in settings.items()}
    dataset = shown.dataset
    if dataset == "zip":
        upload = form.get("zip")
        if not isinstance(upload, UploadFile) or not upload.filename:
            return again(422, "choose a zip file", {"dataset": "choose a zip file"})
        try:
            dataset, _count = store_dataset(services, upload)
        except HTTPException as exc:
            return again(exc.status_code, exc.detail, {"dataset": exc.detail})
    try:
        size = int(shown.batch_size)
        checked = services.runner.check(
            model,
            AuditRequest(method=shown.method, settings=settings, dataset=dataset, batch_size=size),
        )
        job = services.runner.submit_audit(model, checked)
    except ValueError:
        message = "images per step must be a whole number between 1 and 4096"
        return again(422, message, {"batch_size": message})
    except SettingsError as exc:
        return again(422, str(exc), exc.fields)
    except PicassoError as exc:
        return again(409 if "dataset" not in str(exc) else 404, str(exc), {"dataset": str(exc)})
    return RedirectResponse(f"/jobs/{job.id}", status_code=303)


@router.get("/audits/{job_id}/images/{row}")
def audit_image(services: ServicesDep, job_id: str, row: int) -> RedirectResponse:
    """Drill down: the regular results page of one audited image (the same method,
    settings and target; computed once, then served from the cache)."""
    from ..audits import resolve

    job = job_or_404(services, job_id)
    request = job.request
    if not isinstance(request, AuditRequest) or job.status != "done":
        raise HTTPException(404, f"job {job_id} is not a finished audit")
    model = services.runner.model(job.model)
    items = resolve(services.runner.dataset_path(request.dataset), model)
    if not 0 <= row < len(items):
        raise HTTPException(404, f"audit {job_id} has no image {row}")
    import pandas as pd

    table = pd.read_parquet(services.store.result_dir(job.id) / "audit.parquet")
    name = table["target"].iloc[row]
    labels = model.info.labels
    target = labels.index(name) if name in labels else None
    if target is None and isinstance(name, str) and name.startswith("class "):
        target = int(name.removeprefix("class "))  # a model without label names
    explain_request = ExplainRequest(
        method=request.method, settings=request.settings, target=target
    )
    image = load_image(items[row].source)
    image = LoadedImage(image.image, items[row].name.rsplit("/", 1)[-1], image.sha256)
    explained = services.runner.submit(job.model, image, explain_request)
    return RedirectResponse(f"/jobs/{explained.id}", status_code=303)


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request) -> HTMLResponse:
    return render(request, "login.html")


@router.post("/login")
async def login(request: Request) -> Response:
    form = await request.form(max_files=0, max_fields=5)
    token = get_services(request).settings.api_token
    given = str(form.get("token") or "")
    if token is None:
        return RedirectResponse("/", status_code=303)
    if not token_matches(given, token):
        return render(request, "login.html", 401, error="wrong token")
    response = RedirectResponse("/", status_code=303)
    response.set_cookie(COOKIE, token, httponly=True, samesite="strict")
    return response


# -- explore ---------------------------------------------------------------------------
def _overlays(services: Services, model: str, sha256: str) -> list[dict[str, Any]]:
    """Finished maps of this image by this model (newest first), to paint over."""
    found = []
    for job in services.store.list(500):
        method = services.registry.get(job.method)
        if (
            job.kind == "explain"
            and job.status == "done"
            and job.model == model
            and job.image.sha256 == sha256
            and method is not None
            and method.produces_map
            and not getattr(job.request, "hide", None)
        ):
            found.append({"id": job.id, "label": f"{job.method} ({job.id[:8]})"})
    return found


@router.get("/explore", response_class=HTMLResponse)
def explore(
    request: Request,
    services: ServicesDep,
    model: str | None = None,
    image: str = "",
    sample: str = "",
    job: str = "",
    overlay: str = "",
) -> Response:
    """Paint over an image and watch the model's probabilities change. Without an
    image: pick a sample or upload one; ``job=<id>`` opens a result's image with its
    map beneath the paint."""
    if job:
        of = job_or_404(services, job)
        if of.kind != "explain":
            raise HTTPException(404, f"job {job[:80]} is not a visualization")
        return RedirectResponse(
            f"/explore?model={quote(of.model)}&image={of.image.sha256}&overlay={of.id}",
            status_code=303,
        )
    if missing := unknown_model_page(request, model):
        return missing
    name = model or next(iter(services.models))
    current = services.models[name]
    if current.info.task != "classification":
        message = (
            f"model {name!r} is a {current.info.task} model; the explore page serves "
            "classifiers (explain a segmentation model's image with a region instead)"
        )
        return error_page(request, 409, message)
    if sample:
        if sample not in sample_names():
            raise HTTPException(404, f"no sample image {quoted(sample)}")
        data = (IMAGES_DIR / f"{sample}.png").read_bytes()
        sha256 = hashlib.sha256(data).hexdigest()
        services.store.save_image(sha256, data)
        return RedirectResponse(f"/explore?model={quote(name)}&image={sha256}", status_code=303)
    if not image:
        return render(request, "explore_start.html", model=name, samples=sample_names(current))
    if not SHA256.match(image) or not services.store.image_path(image).is_file():
        raise HTTPException(404, f"no uploaded image {quoted(image)}")
    height, width = current.info.input_size
    return render(
        request,
        "explore.html",
        model=name,
        image=image,
        width=width,
        height=height,
        labels=[current.info.label(i) for i in range(len(current.info.labels))],
        overlays=_overlays(services, name, image),
        overlay=overlay,
        switch={"action": "/explore", "keep": {"image": image}},
    )


@router.get("/explore/input.png")
def explore_input(services: ServicesDep, model: str, image: str) -> Response:
    """The image as ``model`` sees it (resized and cropped to its input size)."""
    if model not in services.models:
        raise HTTPException(404, f"unknown model {quoted(model)}")
    if not SHA256.match(image) or not services.store.image_path(image).is_file():
        raise HTTPException(404, f"no uploaded image {quoted(image)}")
    current = services.models[model]
    probe = services.probes.get(
        current, services.store.image_path(image), services.settings.max_pixels
    )
    buffer = io.BytesIO()
    current.fit_image(probe.image.image).save(buffer, format="PNG")
    return Response(
        buffer.getvalue(), media_type="image/png", headers={"Cache-Control": "max-age=3600"}
    )


@router.post("/explore")
async def explore_upload(request: Request) -> Response:
    """The explore start page's upload: keep the image, then open it."""
    form = await request.form(max_files=1, max_fields=10)
    try:
        model = str(form.get("model") or "")
        if missing := unknown_model_page(request, model or None):
            return missing
        file = form.get("file")
        if not isinstance(file, UploadFile) or not file.filename:
            return error_page(request, 422, "choose an image file to explore")
        stored = await run_in_threadpool(store_upload, get_services(request), file)
    finally:
        await form.close()
    target = f"/explore?model={quote(model)}&image={stored.sha256}"
    return RedirectResponse(target, status_code=303)
