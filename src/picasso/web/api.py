"""The versioned JSON API. Routes are plain ``def`` functions, so FastAPI runs them in
its thread pool: model code never runs on the event loop."""

from __future__ import annotations

import asyncio
import io
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from fastapi import APIRouter, File, HTTPException, Query, Request, UploadFile
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from ..catalog import method_entry, model_entry
from ..core.errors import quoted
from ..hiding import Hide
from ..jobs import Job
from ..jobs.store import FINISHED
from ..render import PERCENTILE, Display, Sign, colorbar_png, colored, rgba_png
from ..requests import AuditRequest, ExplainRequest
from .errors import documented
from .state import Services, ServicesDep, job_or_404, stopping
from .uploads import store_dataset, store_upload

# Every operation may meet the guard: a host name it does not answer to, a missing
# token; every POST also a cross-site origin or a body over the limit.
router = APIRouter(responses=documented(400, 401))
POSTED = (403, 413, 422)
SHA256 = re.compile(r"^[0-9a-f]{64}$")
JobId = Annotated[str, PathParam(pattern=r"^[0-9a-f]{32}$", description="A job id.")]
LAYER_NAMES = r"^(input|colorbar|stages|overlay|segmentation|labels|map-\d{1,4})\.png$"
LayerName = Annotated[str, PathParam(pattern=LAYER_NAMES)]
ResultKind = Literal["json", "png", "npy", "html", "parquet", "csv"]
Sha256 = Annotated[
    str, Field(pattern=r"^[0-9a-f]{64}$", description="The sha256 returned by POST /images.")
]
EVENT_INTERVAL = 0.25  # seconds between looks at a running job's row


class JobRequest(ExplainRequest):
    """A visualization job: an explain request on a served model and an uploaded image."""

    model: str = Field(max_length=200, description="A model name from /models.")
    image: Sha256

    def explain_request(self) -> ExplainRequest:
        return ExplainRequest(**self.model_dump(exclude={"model", "image"}))


class AuditJobRequest(AuditRequest):
    """A dataset audit: an audit request on a served model and a dataset reference from
    GET /datasets (demo:tanks-dataset, upload:<sha256>, folder:<name>)."""

    model: str = Field(max_length=200, description="A model name from /models.")

    def audit_request(self) -> AuditRequest:
        return AuditRequest(**self.model_dump(exclude={"model"}))


class PredictRequest(BaseModel):
    """Class probabilities of an uploaded image, optionally with part of it hidden."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(max_length=200, description="A model name from /models.")
    image: Sha256
    top_k: int = Field(
        5, ge=1, le=1000, description="Return the k most probable classes, before and after."
    )
    hide: Hide | None = Field(None, description="Pixels to hide and their fill (optional).")
    target: int | None = Field(
        None, ge=0, description="Also report this class on its own, with its drop."
    )


def _image_path(services: Services, sha256: str) -> Path:
    if not SHA256.match(sha256):
        raise HTTPException(422, "image must be the sha256 returned by POST /api/v1/images")
    path = services.store.image_path(sha256)
    if not path.is_file():
        raise HTTPException(404, f"no uploaded image {sha256}; upload it with POST /images")
    return path


def job_json(request: Request, services: Services, job: Job) -> dict[str, Any]:
    body = {
        "id": job.id,
        "status": job.status,
        "model": job.model,
        "method": job.method,
        "progress": {"done": job.done, "total": job.total},
        "error": job.error,
        "request": job.request_json(),
        "created": job.created,
        "started": job.started,
        "finished": job.finished,
    }
    previews = services.runner.previews(job.id) if job.status == "running" else 0
    if previews:  # the map so far, drawn while the job runs (changes with the count)
        url = request.url_for("job_preview", job_id=job.id)
        body["preview"] = f"{url}?n={previews}"
    if job.status == "done":
        body["result"] = {
            kind: str(request.url_for("job_result", job_id=job.id, kind=kind))
            for kind in services.store.result_files(job)
        }
    return body


@router.get("/models", summary="Models this server explains")
def list_models(services: ServicesDep) -> list[dict[str, Any]]:
    return [model_entry(model) for model in services.models.values()]


@router.get("/methods", summary="Visualization methods with their settings schemas")
def list_methods(services: ServicesDep) -> list[dict[str, Any]]:
    return [method_entry(cls) for _, cls in sorted(services.registry.items())]


@router.post(
    "/images",
    status_code=201,
    summary="Upload an image (checked by decoding)",
    responses=documented(*POSTED),
)
def upload_image(services: ServicesDep, file: Annotated[UploadFile, File()]) -> dict[str, Any]:
    stored = store_upload(services, file)
    width, height = stored.image.size
    return {"sha256": stored.sha256, "name": stored.name, "width": width, "height": height}


@router.post(
    "/jobs",
    status_code=201,
    summary="Start a visualization job",
    responses=documented(*POSTED, 404, 409, 429),
)
def create_job(request: Request, services: ServicesDep, body: JobRequest) -> dict[str, Any]:
    path = _image_path(services, body.image)
    job = services.runner.submit(body.model, path, body.explain_request())
    return job_json(request, services, job)


@router.get("/datasets", summary="Datasets this server can audit")
def list_datasets(services: ServicesDep) -> list[str]:
    return services.runner.datasets()


@router.post(
    "/datasets",
    status_code=201,
    summary="Upload a zip of images to audit",
    responses=documented(*POSTED),
)
def upload_dataset(services: ServicesDep, file: Annotated[UploadFile, File()]) -> dict[str, Any]:
    """The zip's images keep their folders (class sub-folders give labels)."""
    reference, count = store_dataset(services, file)
    return {"dataset": reference, "images": count}


@router.post(
    "/audits",
    status_code=201,
    summary="Start a dataset audit (a job)",
    responses=documented(*POSTED, 404, 409, 429),
)
def create_audit(request: Request, services: ServicesDep, body: AuditJobRequest) -> dict[str, Any]:
    job = services.runner.submit_audit(body.model, body.audit_request())
    return job_json(request, services, job)


@router.get("/jobs", summary="Recent jobs, newest first", responses=documented(422))
def list_jobs(
    request: Request, services: ServicesDep, limit: Annotated[int, Query(ge=1, le=1000)] = 50
) -> list[dict[str, Any]]:
    return [job_json(request, services, job) for job in services.store.list(limit)]


@router.get("/jobs/{job_id}", summary="A job's status and progress", responses=documented(404, 422))
def get_job(request: Request, services: ServicesDep, job_id: JobId) -> dict[str, Any]:
    return job_json(request, services, job_or_404(services, job_id))


@router.post(
    "/jobs/{job_id}/cancel",
    summary="Cancel a queued or running job",
    responses=documented(*POSTED, 404),
)
def cancel_job(request: Request, services: ServicesDep, job_id: JobId) -> dict[str, Any]:
    return job_json(request, services, job_or_404(services, job_id, cancel=True))


@router.post(
    "/jobs/{job_id}/sanity",
    status_code=201,
    summary="Sanity-check a job's map",
    responses=documented(*POSTED, 404, 409, 429),
)
def sanity_job(request: Request, services: ServicesDep, job_id: JobId) -> dict[str, Any]:
    """Start the cascading-randomisation check of a finished job (a job of its own)."""
    job_or_404(services, job_id)
    return job_json(request, services, services.runner.submit_sanity(job_id))


@router.get(
    "/jobs/{job_id}/events",
    summary="Progress as server-sent events",
    responses={**documented(404, 422), 200: {"content": {"text/event-stream": {}}}},
    response_class=StreamingResponse,
)
async def job_events(request: Request, services: ServicesDep, job_id: JobId) -> StreamingResponse:
    """One ``data:`` line of job JSON whenever progress or status changes, until the job
    is finished. Reading the row runs in a thread: the event loop never blocks."""
    store = services.store
    first = await asyncio.to_thread(job_or_404, services, job_id)
    server_stopping = stopping(request)

    async def stream() -> AsyncIterator[str]:
        job, last = first, None
        while True:
            seen = (job.status, job.done, job.total, services.runner.previews(job.id))
            if seen != last:
                yield f"data: {json.dumps(job_json(request, services, job))}\n\n"
                last = seen
            if job.status in FINISHED or server_stopping() or await request.is_disconnected():
                return
            await asyncio.sleep(EVENT_INTERVAL)
            latest: Job | None = await asyncio.to_thread(store.get, job_id)
            job = latest or job

    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)


@router.get(
    "/jobs/{job_id}/preview.png",
    name="job_preview",
    summary="A running job's map so far",
    responses={**documented(404, 422), 200: {"content": {"image/png": {}}}},
    response_class=Response,
)
def job_preview(services: ServicesDep, job_id: JobId) -> Response:
    """The partial map of a running visualization over its image (occlusion: coarse
    first, refined as windows come in; RISE: the running average). Announced by
    ``preview`` in the job's JSON and progress events while the job runs; the last one
    drawn stays (the result itself replaces it on the page)."""
    job = job_or_404(services, job_id)
    path = services.store.result_dir(job.id) / "preview.png"
    try:
        # read whole: the worker replaces the file while jobs run (a streamed file
        # could change size under the response)
        data = path.read_bytes()
    except FileNotFoundError:
        message = f"job {job_id} has drawn no map to preview ({job.status})"
        raise HTTPException(404, message) from None
    return Response(data, media_type="image/png", headers={"Cache-Control": "no-store"})


MEDIA = {
    "json": "application/json",
    "png": "image/png",
    "npy": "application/octet-stream",
    "html": "text/html",
    "parquet": "application/vnd.apache.parquet",
    "csv": "text/csv",
}


@router.get(
    "/jobs/{job_id}/result.{kind}",
    name="job_result",
    summary="A finished job's file",
    responses={**documented(404, 409, 422), 200: {"content": {m: {} for m in MEDIA.values()}}},
    response_class=FileResponse,
)
def job_result(services: ServicesDep, job_id: JobId, kind: ResultKind) -> FileResponse:
    job = job_or_404(services, job_id)
    if job.status != "done":
        raise HTTPException(409, f"job {job_id} is {job.status}, no result")
    files = services.store.result_files(job)
    if kind not in files:
        raise HTTPException(404, f"this job's results are: {', '.join(files)}")
    stem = "audit" if job.kind == "audit" else job.image.name
    suffix = "sanity" if job.is_sanity else job.method
    return FileResponse(files[kind], media_type=MEDIA[kind], filename=f"{stem}.{suffix}.{kind}")


LAYER = re.compile(LAYER_NAMES)


@router.get(
    "/jobs/{job_id}/layers/{name}",
    name="job_layer",
    summary="Pieces of the overlay",
    responses={**documented(404, 422), 200: {"content": {"image/png": {}}}},
    response_class=FileResponse,
)
def job_layer(
    services: ServicesDep,
    job_id: JobId,
    name: LayerName,
    percentile: Annotated[float | None, Query(ge=50, le=100)] = None,
    sign: Annotated[Sign | None, Query()] = None,
    colormap: Annotated[str | None, Query(max_length=40, pattern=r"^[A-Za-z0-9_.-]+$")] = None,
    low: Annotated[float | None, Query(allow_inf_nan=False)] = None,
    high: Annotated[float | None, Query(allow_inf_nan=False)] = None,
) -> Response:
    """``input.png`` (the image as the model saw it), ``map-<k>.png`` (target k's map,
    coloured, its alpha following the magnitude) and ``colorbar.png``: the results page
    stacks them itself. ``percentile``, ``sign`` and ``colormap`` draw a map or the colour
    bar again from the raw maps (the limits drawn are in ``X-Picasso-Limits``)."""
    job = job_or_404(services, job_id)
    path = services.store.result_dir(job.id) / name
    if not LAYER.match(name) or not path.is_file():
        raise HTTPException(404, f"job {job_id} has no layer {quoted(name)}")
    plain = (percentile, sign, colormap, high) == (None, None, None, None)
    fixed = ("input.png", "stages.png", "overlay.png", "segmentation.png", "labels.png")
    if plain or job.kind != "explain" or name in fixed:
        return FileResponse(path, media_type="image/png")
    display = Display(
        percentile=percentile if percentile is not None else PERCENTILE,
        colormap=colormap,
        sign=sign or "auto",
        low=low,
        high=high,
    )
    files = services.store.result_files(job)
    summary = json.loads(files["json"].read_text(encoding="utf-8"))
    maps = np.load(files["npy"], mmap_mode="r")
    index = int(name.removeprefix("map-").removesuffix(".png")) if name.startswith("map-") else 0
    values = np.asarray(maps[min(index, len(maps) - 1)])
    rgba, limits, cmap, diverging = colored(values, summary["signed"], display)
    image = colorbar_png(cmap) if name == "colorbar.png" else rgba_png(rgba)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    headers = {"X-Picasso-Limits": f"{limits[0]:.6g},{limits[1]:.6g},{int(diverging)}"}
    return Response(buffer.getvalue(), media_type="image/png", headers=headers)


@router.post(
    "/predict",
    summary="Class probabilities, synchronously",
    responses=documented(*POSTED, 404, 409),
)
def predict(services: ServicesDep, body: PredictRequest) -> dict[str, Any]:
    """The classes most probable before or after hiding (``top_k`` of each), each with
    ``probability``, ``original`` (without hiding) and ``change``; ``hidden`` is the
    share of the model's input hidden. With ``target``, that class on its own, with
    ``drop`` = original - probability: hiding one occlusion window (same fill, score
    "probability") gives the value occlusion measured there. A mask is checked like an
    upload (base64 PNG of at most 2 MB, at the model's input size or the image's);
    boxes must lie in the image. One forward pass: meant to be called at every brush
    stroke."""
    model = services.runner.model(body.model)
    probe = services.probes.get(
        model, _image_path(services, body.image), services.settings.max_pixels
    )
    return {"model": body.model, **probe.predict(body.hide, body.top_k, body.target)}
