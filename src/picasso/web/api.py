"""The versioned JSON API. Routes are plain ``def`` functions, so FastAPI runs them in
its thread pool: model code never runs on the event loop."""

from __future__ import annotations

import hashlib
import re
from typing import Annotated, Any

from fastapi import APIRouter, File, HTTPException, Request, UploadFile
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field

from ..core.errors import InvalidImageError
from ..core.images import decode_image_bytes, load_image
from ..jobs import Job

router = APIRouter()
SHA256 = re.compile(r"^[0-9a-f]{64}$")


class JobRequest(BaseModel):
    model: str = Field(description="A model name from /models.")
    image: str = Field(description="The sha256 returned by POST /images.")
    method: str = Field(description="A method name from /methods.")
    settings: dict[str, Any] = Field(default_factory=dict)
    target: int | list[int] | None = Field(None, description="Class index(es); default top-1.")
    top_k: int | None = Field(None, ge=1, description="Explain the k most probable classes.")


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
        base = str(request.url_for("job_result", job_id=job.id, kind="json"))[: -len("json")]
        body["result"] = {kind: base + kind for kind in ("json", "png", "npy")}
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


@router.post("/images", status_code=201, summary="Upload an image (checked by decoding)")
def upload_image(request: Request, file: Annotated[UploadFile, File()]) -> dict[str, Any]:
    settings = _state(request).settings
    data = file.file.read(settings.max_upload_bytes + 1)
    if len(data) > settings.max_upload_bytes:
        raise HTTPException(413, f"image is larger than {settings.max_upload_bytes:,} bytes")
    try:
        image = decode_image_bytes(data, name="upload", max_pixels=settings.max_pixels)
    except InvalidImageError as exc:
        raise HTTPException(422, str(exc)) from None
    sha256 = hashlib.sha256(data).hexdigest()
    _state(request).runner.store.save_image(sha256, data)
    return {"sha256": sha256, "width": image.width, "height": image.height}


@router.post("/jobs", status_code=201, summary="Start a visualization job")
def create_job(request: Request, body: JobRequest) -> dict[str, Any]:
    path = _image_path(request, body.image)
    job = _state(request).runner.submit(
        body.model, path, body.method, body.settings, target=body.target, top_k=body.top_k
    )
    return job_json(request, job)


@router.get("/jobs", summary="Recent jobs, newest first")
def list_jobs(request: Request, limit: int = 50) -> list[dict[str, Any]]:
    return [job_json(request, job) for job in _state(request).runner.store.list(limit)]


def _found(job: Job | None, job_id: str) -> Job:
    if job is None:
        raise HTTPException(404, f"no job {job_id}")
    return job


@router.get("/jobs/{job_id}", summary="A job's status and progress")
def get_job(request: Request, job_id: str) -> dict[str, Any]:
    return job_json(request, _found(_state(request).runner.get(job_id), job_id))


@router.post("/jobs/{job_id}/cancel", summary="Cancel a queued or running job")
def cancel_job(request: Request, job_id: str) -> dict[str, Any]:
    return job_json(request, _found(_state(request).runner.cancel(job_id), job_id))


@router.get("/jobs/{job_id}/result.{kind}", name="job_result", summary="A finished job's file")
def job_result(request: Request, job_id: str, kind: str) -> FileResponse:
    if kind not in ("json", "png", "npy"):
        raise HTTPException(404, "results are .json, .png or .npy")
    job = _found(_state(request).runner.get(job_id), job_id)
    if job.status != "done":
        raise HTTPException(409, f"job {job_id} is {job.status}, no result")
    path = _state(request).runner.store.result_dir(job_id) / f"result.{job.method}.{kind}"
    media = {"json": "application/json", "png": "image/png", "npy": "application/octet-stream"}
    return FileResponse(
        path,
        media_type=media[kind],
        filename=f"{job.request.get('image_name', 'image')}.{job.method}.{kind}",
    )


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
