"""Server-rendered pages (Jinja2, autoescaped) over the same runner and store as the
API. Page routes that touch files or the database are plain ``def`` (FastAPI runs them
in its thread pool); model code only ever runs in the job workers."""

from __future__ import annotations

import datetime as dt
import inspect
import json
import secrets
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any

import jinja2
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from .._version import __version__
from ..core.errors import PicassoError, SettingsError
from ..core.images import LoadedImage, load_image
from ..core.model import Model
from ..demo import IMAGES_DIR
from ..jobs import Job
from ..jobs.store import FINISHED
from ..plugins import MethodRegistry
from .api import found, store_upload
from .app import COOKIE, MAX_FILES
from .forms import form_fields, settings_from_form

router = APIRouter(include_in_schema=False)
TEMPLATES = Path(__file__).parent / "templates"


def make_templates(registry: MethodRegistry) -> Jinja2Templates:
    """The app's templates, plus ``method/<name>.html`` for every method that ships its
    own result template (read from next to the file that defines the method)."""

    def method_template(name: str) -> tuple[str, str, Any] | None:
        if not name.startswith("method/") or not name.endswith(".html"):
            return None
        cls = registry.get(name.removeprefix("method/").removesuffix(".html"))
        if cls is None or not cls.template:
            return None
        path = Path(inspect.getfile(cls)).parent / cls.template
        if not path.is_file():
            return None
        mtime = path.stat().st_mtime
        return path.read_text(encoding="utf-8"), str(path), lambda: path.stat().st_mtime == mtime

    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader(
            [jinja2.FileSystemLoader(TEMPLATES), jinja2.FunctionLoader(method_template)]
        ),
        autoescape=True,  # every template, plugins' included
        undefined=jinja2.ChainableUndefined,
    )
    env.filters["when"] = lambda t: dt.datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M:%S")
    env.globals["version"] = __version__
    return Jinja2Templates(env=env)


# -- helpers ---------------------------------------------------------------------------
def _state(request: Request):
    return request.app.state


def sample_names() -> list[str]:
    return sorted(p.stem for p in IMAGES_DIR.glob("*.png"))


def _checkpoint(model: Model) -> dict[str, str] | None:
    if not model.info.path:
        return None
    path = Path(model.info.path)
    try:
        mtime = dt.datetime.fromtimestamp(path.stat().st_mtime).strftime("%Y-%m-%d %H:%M")
    except OSError:
        mtime = "unknown"
    return {"path": str(path), "name": path.name, "mtime": mtime}


def render(
    request: Request, template: str, status: int = 200, model: str | None = None, **context
) -> HTMLResponse:
    state = _state(request)
    models = state.models
    current = models.get(model) if model else None
    if current is None and models and model is None:
        current = next(iter(models.values()))
    context.update(
        models=list(models),
        current=current,
        checkpoint=_checkpoint(current) if current else None,
    )
    return state.templates.TemplateResponse(request, template, context, status_code=status)


def error_page(request: Request, status: int, message: str) -> HTMLResponse:
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "Error"
    return render(request, "error.html", status, error=message, code=status, reason=reason)


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
                "unavailable": cls.unavailable(model) or "",
            }
        )
    return rows


def index_page(
    request: Request,
    model: str | None,
    form: FormState | None = None,
    status: int = 200,
    error: str = "",
    field_errors: dict[str, str] | None = None,
    compare_mode: bool = False,
) -> HTMLResponse:
    state = _state(request)
    if model is not None and model not in state.models:
        return error_page(
            request, 404, f"unknown model {model!r}; available: {', '.join(state.models)}"
        )
    name = model or next(iter(state.models))
    form = form or FormState()
    if form.method not in state.registry:
        form.method = "occlusion" if "occlusion" in state.registry else min(state.registry)
    return render(
        request,
        "index.html",
        status,
        model=name,
        methods=_method_rows(state.registry, state.models[name]),
        samples=sample_names(),
        form=form,
        error=error,
        field_errors=field_errors or {},
        compare_mode=compare_mode,
        limits={
            "bytes": f"{state.settings.max_upload_bytes / 2**20:.3g} MiB",
            "pixels": f"{state.settings.max_pixels / 1e6:g} megapixels",
        },
    )


# -- job views -------------------------------------------------------------------------
CURVE_W, CURVE_H = 240, 120


def _polyline(xs: list[float], ys: list[float]) -> str:
    return " ".join(
        f"{x * CURVE_W:.1f},{(1 - min(max(y, 0.0), 1.0)) * CURVE_H:.1f}"
        for x, y in zip(xs, ys, strict=True)
    )


def _numbers(extras: dict[str, Any]) -> dict[str, Any]:
    """Small extras worth showing next to the map (scalars, short numeric lists)."""
    shown = {}
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


def job_view(request: Request, job: Job) -> dict[str, Any]:
    """Everything the job templates need, computed once here."""
    state = _state(request)
    store = state.runner.store
    sanity = job.request.get("kind") == "sanity"
    method = state.registry.get(job.method)
    view: dict[str, Any] = {
        "title": f"{'Sanity check of ' if sanity else ''}{job.method} on {job.model}",
        "finished": job.status in FINISHED,
        "seconds": (job.finished - job.started) if job.finished and job.started else None,
        "method": method,
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
    extras = result.get("extras", {})
    view.update(
        template=f"method/{job.method}.html"
        if method and method.template
        else "result_generic.html",
        classes=extras.get("classes") or result.get("top", []),
        numbers=_numbers(extras),
        curves=[
            {
                "label": target["label"],
                "width": CURVE_W,
                "height": CURVE_H,
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
        can_sanity=state.runner.sanity_problem(job) is None,
    )
    return view


def _sanity_summary(store: Any, job: Job) -> dict[str, Any] | None:
    """The latest sanity check of this result, for the line next to the map."""
    check = store.sanity_of(job.id)
    if check is None:
        return None
    summary: dict[str, Any] = {"job": check}
    path = store.result_files(check)["json"]
    if check.status == "done" and path.is_file():
        summary.update(json.loads(path.read_text(encoding="utf-8")))
    return summary


def _job(request: Request, job_id: str) -> Job:
    return found(_state(request).runner.get(job_id), job_id)


# -- routes ----------------------------------------------------------------------------
@router.get("/", response_class=HTMLResponse)
def index(request: Request, model: str | None = None) -> HTMLResponse:
    return index_page(request, model)


@router.get("/compare", response_class=HTMLResponse)
def compare(request: Request, pairs: str = "", model: str | None = None) -> HTMLResponse:
    if not pairs:
        if len(_state(request).models) < 2:
            return error_page(request, 409, "comparing needs two models; this server has one")
        return index_page(request, model, compare_mode=True)
    shown = []
    for pair in pairs.split(",")[:MAX_FILES]:
        ids = pair.split(":")
        if len(ids) != 2:
            raise HTTPException(422, "pairs must look like <job id>:<job id>,...")
        jobs = [_job(request, i) for i in ids]
        shown.append([{"job": j, "view": job_view(request, j)} for j in jobs])
    return render(request, "compare.html", model=shown[0][0]["job"].model, pairs=shown)


@router.get("/history", response_class=HTMLResponse)
def history(request: Request, jobs: str = "") -> HTMLResponse:
    store = _state(request).runner.store
    if jobs:
        listed = [store.get(i) for i in jobs.split(",")[:MAX_FILES]]
        listed = [j for j in listed if j is not None]
    else:
        listed = store.list(200)
    return render(request, "history.html", jobs=listed, only=bool(jobs))


@router.get("/jobs/{job_id}", response_class=HTMLResponse)
def job_page(request: Request, job_id: str) -> HTMLResponse:
    job = _job(request, job_id)
    return render(request, "job.html", model=job.model, job=job, view=job_view(request, job))


@router.post("/jobs/{job_id}/cancel")
def cancel_page(request: Request, job_id: str) -> RedirectResponse:
    _job(request, job_id)
    _state(request).runner.cancel(job_id)
    return RedirectResponse(f"/jobs/{job_id}", status_code=303)


@router.post("/jobs/{job_id}/sanity")
def sanity_page(request: Request, job_id: str) -> RedirectResponse:
    _job(request, job_id)
    job = _state(request).runner.submit_sanity(job_id)
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
        return await run_in_threadpool(_run, request, form)
    finally:
        await form.close()


def _run(request: Request, form: Any) -> Response:
    state = _state(request)
    model = str(form.get("model") or "")
    if model not in state.models:
        return error_page(request, 404, f"unknown model {model!r}")
    method_name = str(form.get("method") or "")
    shown = FormState(
        method=method_name,
        samples=[s for s in form.getlist("samples") if isinstance(s, str)],
        target_mode=str(form.get("target_mode") or "top1"),
        top_k=str(form.get("top_k") or "2"),
        target=str(form.get("target") or "0"),
        faithfulness=form.get("faithfulness") == "true",
        compare=str(form.get("compare") or ""),
    )
    errors: dict[str, str] = {}

    def again(status: int, message: str) -> HTMLResponse:
        return index_page(request, model, shown, status, message, errors, bool(shown.compare))

    method = state.registry.get(method_name)
    if method is None:
        return again(422, "choose a visualization")
    settings = settings_from_form(method, form)
    shown.settings = {f"{method_name}.{k}": v for k, v in settings.items()}
    try:
        method.parse_settings(settings)
        for name in (model, shown.compare) if shown.compare else (model,):
            if name not in state.models:
                errors["compare"] = f"unknown model {name!r}"
                return again(404, errors["compare"])
            method.check_capabilities(state.models[name])
    except SettingsError as exc:
        errors.update(exc.fields)
        return again(422, str(exc))
    except PicassoError as exc:
        return again(409, str(exc))
    target, top_k = None, None
    try:
        if shown.target_mode == "topk":
            top_k = int(shown.top_k)
        elif shown.target_mode == "class":
            target = int(shown.target)
    except ValueError:
        errors["target"] = "the number of classes and the class must be whole numbers"
        return again(422, errors["target"])

    images: list[LoadedImage] = []
    for upload in form.getlist("files"):
        if not isinstance(upload, UploadFile) or not upload.filename:
            continue  # an empty file input
        try:
            images.append(store_upload(request, upload))
        except HTTPException as exc:
            errors["images"] = exc.detail
            return again(exc.status_code, exc.detail)
    for name in shown.samples:
        if name not in sample_names():
            errors["images"] = f"no sample image {name!r}"
            return again(404, errors["images"])
        images.append(load_image(IMAGES_DIR / f"{name}.png"))
    if not images:
        errors["images"] = "choose at least one image (upload one or tick a sample)"
        return again(422, errors["images"])

    jobs: list[list[Job]] = []
    try:
        for image in images:
            jobs.append(
                [
                    state.runner.submit(
                        name,
                        image,
                        method_name,
                        settings,
                        target=target,
                        top_k=top_k,
                        faithfulness=shown.faithfulness,
                    )
                    for name in ((model, shown.compare) if shown.compare else (model,))
                ]
            )
    except PicassoError as exc:  # e.g. a class index or top-k the model does not have
        errors["target"] = str(exc)
        return again(422, str(exc))
    if shown.compare:
        pairs = ",".join(f"{a.id}:{b.id}" for a, b in jobs)
        return RedirectResponse(f"/compare?pairs={pairs}", status_code=303)
    if len(jobs) == 1:
        return RedirectResponse(f"/jobs/{jobs[0][0].id}", status_code=303)
    return RedirectResponse(f"/history?jobs={','.join(j[0].id for j in jobs)}", status_code=303)


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request) -> HTMLResponse:
    return render(request, "login.html")


@router.post("/login")
async def login(request: Request) -> Response:
    form = await request.form(max_files=0, max_fields=5)
    token = _state(request).settings.api_token
    given = str(form.get("token") or "")
    if token is None:
        return RedirectResponse("/", status_code=303)
    if not secrets.compare_digest(given, token):
        return render(request, "login.html", 401, error="wrong token")
    response = RedirectResponse("/", status_code=303)
    response.set_cookie(COOKIE, token, httponly=True, samesite="strict")
    return response
