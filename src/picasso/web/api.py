"""The versioned JSON API. Routes are plain ``def`` functions, so FastAPI runs them in
its thread pool: model code never runs on the event loop."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections.abc import AsyncIterator
from pathlib import PurePath
from typing import Annotated, Any

from fastapi import APIRouter, File, HTTPException, Query, Request, UploadFile
from fastapi.responses import FileResponse, StreamingResponse
from pydantic import BaseModel, Field

from ..core.errors import InvalidImageError
from ..core.images import LoadedImage, decode_image_bytes, load_image
from ..jobs import Job
from ..jobs.store import FINISHED

router = APIRouter()
SHA256 = re.compile(r"^[0-9a-f]{64}$")
EVENT_INTERVAL = 0.25  # seconds between looks at a running job's row


class JobRequest(BaseModel):
    model: str = Field(description="A model name from /models.")
    image: str = Field(description="The sha256 returned by POST /images.")
    method: str = Field(description="A method name from /methods.")
    settings: dict[str, Any] = Field(default_factory=dict)
    target: int | list[int] | None = Field(None, description="Class index(es); default top-1.")
    top_k: int | None = Field(None, ge=1, description="Explain the k most probable classes.")
    faithfulness: bool = Field(False, description="Add deletion/insertion curves and AUCs.")


class PredictRequest(BaseModel):
    model: str
    image: str
    top_k: int = Field(5, ge=1, le=1000)


def _state(request: Request):
    return request.app.state


def _image_path(request: Request, sha256: str):
    if not SHA256.match(sha256):
        raise HTTPException(422, "image must be the sha256 returned by POST /api/v1/images")
    path = _state(request).runner.store.image_path(sha256)
    if not path.is_file():
        raise HTTPException(404, f"no uploaded image {sha256}; upload it with POST /images")
    return path


def job_json(request: Request, job: Job) -> dict[str, Any]:
    body = {
        "id": job.id,
        "status": job.status,
        "model": job.model,
        "method": job.method,
        "progress": {"done": job.done, "total": job.total},
        "error": job.error,
        "request": job.request,
        "created": job.created,
        "started": job.started,
        "finished": job.finished,
    }
    if job.status == "done":
        body["result"] = {
            kind: str(request.url_for("job_result", job_id=job.id, kind=kind))
            for kind in _state(request).runner.store.result_files(job)
        }
    return body


@router.get("/models", summary="Models this server explains")
def list_models(request: Request) -> list[dict[str, Any]]:
    return [
        {
            **model.info.summary(),
            "description": model.info.description,
            "labels": list(model.info.labels),
            "capabilities": sorted(model.capabilities),
        }
        for model in _state(request).models.values()
    ]


@router.get("/methods", summary="Visualization methods with their settings schemas")
def list_methods(request: Request) -> list[dict[str, Any]]:
    return [
        {
            "name": name,
            "description": cls.description,
            "reference": cls.reference,
            "requires": sorted(cls.requires),
            "signed": cls.signed,
            "settings": cls.Settings.model_json_schema(),
        }
        for name, cls in sorted(_state(request).registry.items())
    ]


def display_name(filename: str | None) -> str:
    """A client's file name reduced to a short label (never used as a path)."""
    base = re.split(r"[\\/]", filename or "")[-1]
    cleaned = re.sub(r"[^\w.() -]+", "_", base).strip(" ._")
    return cleaned[:80] or "upload"


def store_upload(request: Request, file: UploadFile) -> LoadedImage:
    """Check an uploaded file (byte limit, decodes as an image within the pixel limit)
    and keep it under its sha256. The client's file name is only ever a label: the
    returned image is named by it, without its suffix."""
    settings = _state(request).settings
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
    _state(request).runner.store.save_image(sha256, data)
    return LoadedImage(image, PurePath(label).stem or label, sha256)


@router.post("/images", status_code=201, summary="Upload an image (checked by decoding)")
def upload_image(request: Request, file: Annotated[UploadFile, File()]) -> dict[str, Any]:
    stored = store_upload(request, file)
    width, height = stored.image.size
    return {"sha256": stored.sha256, "name": stored.name, "width": width, "height": height}


@router.post("/jobs", status_code=201, summary="Start a visualization job")
def create_job(request: Request, body: JobRequest) -> dict[str, Any]:
    path = _image_path(request, body.image)
    job = _state(request).runner.submit(
        body.model,
        path,
        body.method,
        body.settings,
        target=body.target,
        top_k=body.top_k,
        faithfulness=body.faithfulness,
    )
    return job_json(request, job)


@router.get("/jobs", summary="Recent jobs, newest first")
def list_jobs(
    request: Request, limit: Annotated[int, Query(ge=1, le=1000)] = 50
) -> list[dict[str, Any]]:
    return [job_json(request, job) for job in _state(request).runner.store.list(limit)]


def found(job: Job | None, job_id: str) -> Job:
    if job is None:
        raise HTTPException(404, f"no job {job_id}")
    return job


@router.get("/jobs/{job_id}", summary="A job's status and progress")
def get_job(request: Request, job_id: str) -> dict[str, Any]:
    return job_json(request, found(_state(request).runner.get(job_id), job_id))


@router.post("/jobs/{job_id}/cancel", summary="Cancel a queued or running job")
def cancel_job(request: Request, job_id: str) -> dict[str, Any]:
    return job_json(request, found(_state(request).runner.cancel(job_id), job_id))


@router.post("/jobs/{job_id}/sanity", status_code=201, summary="Sanity-check a job's map")
def sanity_job(request: Request, job_id: str) -> dict[str, Any]:
    """Start the cascading-randomisation check of a finished job (a job of its own)."""
    found(_state(request).runner.get(job_id), job_id)
    return job_json(request, _state(request).runner.submit_sanity(job_id))


@router.get("/jobs/{job_id}/events", summary="Progress as server-sent events")
async def job_events(request: Request, job_id: str) -> StreamingResponse:
    """One ``data:`` line of job JSON whenever progress or status changes, until the job
    is finished. Reading the row runs in a thread: the event loop never blocks."""
    store = _state(request).runner.store
    first = found(await asyncio.to_thread(store.get, job_id), job_id)
    # `picasso serve` says when the server is stopping, so that streams end at once.
    stopping = getattr(_state(request), "stopping", lambda: False)

    async def stream() -> AsyncIterator[str]:
        job, last = first, None
        while True:
            seen = (job.status, job.done, job.total)
            if seen != last:
                yield f"data: {json.dumps(job_json(request, job))}\n\n"
                last = seen
            if job.status in FINISHED or stopping() or await request.is_disconnected():
                return
            await asyncio.sleep(EVENT_INTERVAL)
            job = await asyncio.to_thread(store.get, job_id) or job

    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)


MEDIA = {"json": "application/json", "png": "image/png", "npy": "application/octet-stream"}


@router.get("/jobs/{job_id}/result.{kind}", name="job_result", summary="A finished job's file")
def job_result(request: Request, job_id: str, kind: str) -> FileResponse:
    job = found(_state(request).runner.get(job_id), job_id)
    if job.status != "done":
        raise HTTPException(409, f"job {job_id} is {job.status}, no result")
    files = _state(request).runner.store.result_files(job)
    if kind not in files:
        raise HTTPException(404, f"this job's results are: {', '.join(files)}")
    stem = job.request.get("image_name", "image")
    suffix = "sanity" if job.request.get("kind") == "sanity" else job.method
    return FileResponse(files[kind], media_type=MEDIA[kind], filename=f"{stem}.{suffix}.{kind}")


LAYER = re.compile(r"^(input|colorbar|map-\d{1,4})\.png$")


@router.get("/jobs/{job_id}/layers/{name}", name="job_layer", summary="Pieces of the overlay")
def job_layer(request: Request, job_id: str, name: str) -> FileResponse:
    """``input.png`` (the image as the model saw it), ``map-<k>.png`` (target k's map,
    colored) and ``colorbar.png``: the results page stacks them itself."""
    job = found(_state(request).runner.get(job_id), job_id)
    path = _state(request).runner.store.result_dir(job.id) / name
    if not LAYER.match(name) or not path.is_file():
        raise HTTPException(404, f"job {job_id} has no layer {name!r}")
    return FileResponse(path, media_type="image/png")


@router.post("/predict", summary="Class probabilities, synchronously")
def predict(request: Request, body: PredictRequest) -> dict[str, Any]:
    from ..service import explain

    state = _state(request)
    if body.model not in state.models:
        raise HTTPException(
            404, f"unknown model {body.model!r}; available: {', '.join(sorted(state.models))}"
        )
    image = load_image(_image_path(request, body.image), state.settings.max_pixels)
    exp = explain(
        state.models[body.model],
        image,
        "class-probabilities",
        settings={"classes": body.top_k},
        registry=state.registry,
    )
    return {"model": body.model, "classes": exp.extras["classes"]}
