"""The local worker pool: submit a request, get a job id; progress, cancellation, a
time limit and a result cache keyed by (model fingerprint, image sha256, method,
settings, targets)."""

from __future__ import annotations

import functools
import hashlib
import io
import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..audits.dataset import DEMO_DATASET
from ..core.errors import (
    BusyError,
    Cancelled,
    JobError,
    ModelLoadError,
    PicassoError,
    SettingsError,
    quoted,
)
from ..core.images import DEFAULT_MAX_PIXELS, LoadedImage, load_image
from ..core.model import GRADIENTS, LAYERS, Model
from ..core.progress import Progress
from ..plugins import MethodRegistry
from ..render import full_size_overlay, preview_png, save_layers
from ..requests import AnyRequest, AuditRequest, Checked, ExplainRequest, R, SanityRequest, check
from ..sanity import sanity_check
from ..service import explain
from .store import FINISHED, ImageRef, Job, JobStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Budget:
    """What one job may cost on this server, checked before it is queued. A batch size
    never changes results, so one that would take too much memory is lowered; more
    model passes than allowed are refused, naming the setting that asks for them."""

    passes: int = 200_000  # model passes per job
    forward_pixels: int = 4_000_000  # model-input pixels per forward-only call
    # ... per forward + backward call: about 16 images of 224 x 224 (EfficientNet-Lite0
    # holds ~85 MB per such image for its backward pass)
    gradient_pixels: int = 800_000
    queued: int = 64  # jobs waiting at once; more get "busy, retry later"


@dataclass
class Preview:
    """A running job's partial maps: the image they are drawn over, and how many."""

    image: np.ndarray
    count: int = 0


class JobRunner:
    """Runs visualizations as jobs on ``workers`` threads.

    Args:
        store: where rows and files live.
        models: the models jobs may use, by name (never loaded from a request).
        registry: the methods jobs may use.
        workers: jobs running at once; more wait in the queue.
        time_limit: seconds a job may run before it is cancelled.
        data_root: a folder whose sub-folders audits may use as datasets.
        audit_time_limit: the time limit of dataset audits.
        share_cores: keep the frameworks' threads at cores / jobs running at the moment
            (the server does, unless told a fixed count).
    """

    def __init__(
        self,
        store: JobStore,
        models: Mapping[str, Model],
        registry: MethodRegistry,
        workers: int = 2,
        time_limit: float = 600.0,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        data_root: Path | None = None,
        audit_time_limit: float = 6 * 3600.0,
        budget: Budget | None = None,
        share_cores: bool = False,
    ) -> None:
        self.store = store
        self.data_root = data_root.resolve() if data_root is not None else None
        self.audit_time_limit = audit_time_limit
        self.budget = budget or Budget()
        self.models = dict(models)
        self.registry = registry
        self.time_limit = time_limit
        self.max_pixels = max_pixels
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="picasso-job")
        self._progress: dict[str, Progress] = {}
        self._previews: dict[str, Preview] = {}  # running jobs' partial maps
        # share_cores: each framework call gets cores / jobs running now (one job: all)
        self._share_cores = share_cores
        self._running = 0
        self._lock = threading.Lock()
        self._stopping = False
        interrupted = store.mark_interrupted()
        if interrupted:
            log.info("%d job(s) from before the restart marked interrupted", interrupted)

    def shutdown(self, wait: bool = True) -> None:
        """Stop: running jobs end at their next batch, recorded as interrupted."""
        self._stopping = True
        with self._lock:
            for progress in self._progress.values():
                progress.cancel()
        self._pool.shutdown(wait=wait, cancel_futures=True)

    # -- requests ----------------------------------------------------------------------
    def model(self, name: str) -> Model:
        """A served model by name, or a :class:`ModelLoadError` listing the others."""
        if name not in self.models:
            raise ModelLoadError(
                f"unknown model {quoted(name)}; available: {', '.join(sorted(self.models))}"
            )
        return self.models[name]

    def check(self, model: str, request: R) -> Checked[R]:
        """Validate ``request`` for served model ``model`` (see :func:`check`), within
        this server's :class:`Budget` (a batch size may be lowered)."""
        served = self.model(model)
        return self._within_budget(served, check(request, served, self.registry))

    def _within_budget(self, model: Model, checked: Checked[R]) -> Checked[R]:
        request, method = checked.request, checked.method
        if isinstance(request, ExplainRequest):
            targets = len(request.targets or []) or request.top_k or 1
        elif isinstance(request, SanityRequest):
            targets = request.stages + 1
        else:
            targets = 1  # per image; an audit's length is bounded by its time limit
        cost = method.estimate(checked.settings, model.info.input_size, targets)
        passes = cost.passes
        if isinstance(request, ExplainRequest) and request.faithfulness:
            passes += 42 * targets  # deletion and insertion curves, 21 points each
        if passes > self.budget.passes:
            setting = cost.driver or "target"
            message = (
                f"asks for {passes:,} model passes, more than this server allows for one "
                f"job ({self.budget.passes:,}); lower {setting}"
            )
            raise SettingsError(f"{method.name}: {message}", {setting: message})
        height, width = model.info.input_size
        gradients = bool(set(method.requires) & {GRADIENTS, LAYERS})
        pixels = self.budget.gradient_pixels if gradients else self.budget.forward_pixels
        largest = max(1, pixels // (height * width))
        if checked.settings.batch_size <= largest and not (
            isinstance(request, AuditRequest) and request.batch_size > largest
        ):
            return checked
        settings = {**request.settings, "batch_size": min(checked.settings.batch_size, largest)}
        update: dict[str, Any] = {"settings": settings}
        if isinstance(request, AuditRequest):
            update["batch_size"] = min(request.batch_size, largest)
        log.info("%s: batch_size lowered to %d (memory budget)", method.name, largest)
        clamped = request.model_copy(update=update)
        return Checked(clamped, method, method.parse_settings(settings))

    def submit(self, model: str, image: Any, request: R | Checked[R]) -> Job:
        """Queue a request on ``image`` (a path, bytes, PIL image or array, or an
        already checked :class:`LoadedImage`), or return the finished job that already
        answered it. Bad requests raise a :class:`PicassoError` before anything is
        queued."""
        checked = request if isinstance(request, Checked) else self.check(model, request)
        loaded = image if isinstance(image, LoadedImage) else load_image(image, self.max_pixels)
        if not self.store.image_path(loaded.sha256).exists():
            encoded = io.BytesIO()
            loaded.image.save(encoded, format="PNG")
            self.store.save_image(loaded.sha256, encoded.getvalue())
        return self._queue(model, checked, ImageRef(loaded.sha256, loaded.name))

    def sanity_request(self, job: Job) -> SanityRequest:
        """The sanity check of a finished visualization job's map, or a
        :class:`JobError` saying why it has none. One rule for the page's button and
        the API."""
        request = job.request
        if job.status != "done" or not isinstance(request, ExplainRequest):
            raise JobError(f"job {job.id} is not a finished visualization")
        if job.model not in self.models:
            raise JobError(f"model {job.model!r} of job {job.id} is not served any more")
        if job.method not in self.registry:
            raise JobError(f"method {job.method!r} of job {job.id} is not registered any more")
        if request.hide is not None:
            raise JobError(
                "results with hidden pixels are not sanity-checked (check the whole image)"
            )
        return SanityRequest(method=request.method, settings=request.settings, of=job.id)

    def sanity_problem(self, job: Job) -> str | None:
        """Why ``job`` cannot be sanity-checked, or None when it can."""
        try:
            self.check(job.model, self.sanity_request(job))
        except PicassoError as exc:
            return str(exc)
        return None

    def submit_sanity(self, job_id: str) -> Job:
        """Queue the sanity check (cascading randomisation) of a finished job's map."""
        of = self.store.get(job_id)
        if of is None:
            raise JobError(f"no job {job_id[:80]}")
        # the map of the class the visualization explained first
        request = self.sanity_request(of).model_copy(update={"target": self._first_target(of)})
        return self._queue(of.model, self.check(of.model, request), of.image)

    # -- audits --------------------------------------------------------------------------
    def datasets(self) -> list[str]:
        """The datasets audits may use: the demo, uploads, and folders under the data
        root that the operator configured (never an arbitrary server path)."""
        found = [DEMO_DATASET]
        uploads = self.store.data_dir / "datasets"
        if uploads.is_dir():
            found += [f"upload:{p.name}" for p in sorted(uploads.iterdir()) if p.is_dir()]
        if self.data_root is not None and self.data_root.is_dir():
            found += [
                f"folder:{p.name}"
                for p in sorted(self.data_root.iterdir())
                if p.is_dir() and not p.name.startswith(".")
            ]
        return found

    def dataset_path(self, reference: str) -> str | Path:
        """What an audit reads for a dataset reference, or a :class:`JobError`."""
        kind, _, name = reference.partition(":")
        if reference == DEMO_DATASET:
            return reference
        if kind == "upload" and re.fullmatch(r"[0-9a-f]{64}", name):
            path = self.store.data_dir / "datasets" / name
            if path.is_dir():
                return path
            raise JobError(f"no uploaded dataset {name}; upload a zip with POST /datasets")
        if kind == "folder" and self.data_root is not None:
            path = (self.data_root / name).resolve()
            if path.parent == self.data_root and path.is_dir() and name and "/" not in name:
                return path
            raise JobError(f"no folder {name!r} under the server's data root")
        choices = ", ".join(self.datasets())
        raise JobError(f"unknown dataset {quoted(reference)}; available: {choices}")

    def submit_audit(self, model: str, request: AuditRequest | Checked[AuditRequest]) -> Job:
        """Queue a dataset audit (or return the finished one that already answered it)."""
        checked = request if isinstance(request, Checked) else self.check(model, request)
        if checked.request.engine != "local":
            raise JobError("this server runs audits locally (engine='local')")
        self.dataset_path(checked.request.dataset)  # refuse an unknown dataset now
        return self._queue(model, checked, ImageRef("", checked.request.dataset))

    def _audit(self, job: Job, checked: Checked[AuditRequest], progress: Progress) -> None:
        from ..audits import run_audit

        path = self.dataset_path(checked.request.dataset)
        run_audit(
            self.models[job.model],
            path,
            checked,
            out=self.store.result_dir(job.id),
            progress=progress,
        )

    def _first_target(self, job: Job) -> int:
        summary = self.store.result_files(job)["json"]
        return int(json.loads(summary.read_text(encoding="utf-8"))["targets"][0]["index"])

    def _queue(self, model: str, checked: Checked[Any], image: ImageRef) -> Job:
        key = cache_key(self.models[model], checked.request, image)
        cached = self.store.cached(key)
        if cached is not None and self.store.result_files(cached)["json"].is_file():
            return cached  # (a result deleted from disk is computed again)
        with self._lock:  # the same request twice at once: one job
            active = self.store.active(key)
            if active is not None:
                return active
            if self.store.count("queued") >= self.budget.queued:
                raise BusyError(
                    f"{self.budget.queued} jobs are waiting already; try again shortly",
                    retry_after=30,
                )
            job = self.store.insert(uuid.uuid4().hex, key, model, checked.request, image)
        preview = None
        if isinstance(checked.request, ExplainRequest) and checked.method.produces_map:
            preview = functools.partial(self._preview, job.id, checked.method.signed)
        progress = Progress(functools.partial(self._report, job.id), preview=preview)
        with self._lock:
            self._progress[job.id] = progress
        self._pool.submit(self._run, job, checked, progress)
        return job

    def get(self, job_id: str) -> Job | None:
        return self.store.get(job_id)

    def cancel(self, job_id: str) -> Job | None:
        """Ask a queued or running job to stop; finished jobs are left as they are."""
        with self._lock:
            progress = self._progress.get(job_id)
        if progress is not None:
            progress.cancel()
        job = self.store.get(job_id)
        if job is not None and job.status == "queued":
            self.store.update(
                job_id,
                status="cancelled",
                finished=time.time(),
                error="cancelled before it started",
            )
        return self.store.get(job_id)

    def wait(self, job_id: str, timeout: float = 60.0) -> Job:
        """Block until the job is finished (for scripts and tests)."""
        deadline = time.monotonic() + timeout
        while True:
            job = self.store.get(job_id)
            if job is None:
                raise JobError(f"no job {job_id[:80]}")
            if job.status in FINISHED:
                return job
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} still {job.status} after {timeout} s")
            time.sleep(0.02)

    # -- work --------------------------------------------------------------------------
    def _report(self, job_id: str, done: int, total: int) -> None:
        self.store.update(job_id, done=done, total=total)
        self._share()  # another job may have started or ended

    def _started_or_ended(self, change: int) -> None:
        with self._lock:
            self._running += change
        if change > 0:
            self._share()

    def _share(self) -> None:
        """In the calling job's thread, use cores / jobs running now (one job: every
        core; two: half each). Thread counts are per thread, so each job applies its
        share when it starts and at every progress report."""
        if not self._share_cores:
            return
        from ..core.threads import per_job, set_threads, threads

        with self._lock:
            running = self._running
        share = per_job(running)
        if threads() != share or _torch_threads() not in (None, share):
            set_threads(share)

    def previews(self, job_id: str) -> int:
        """How many partial maps a running job has drawn (``preview.png``)."""
        with self._lock:
            drawn = self._previews.get(job_id)
        return drawn.count if drawn else 0

    def _preview(self, job_id: str, signed: bool, maps: Any) -> None:
        """Draw a running job's partial map (first class) over its image, atomically."""
        if not len(maps) or not np.isfinite(maps[0]).all():
            return  # (a map that is not finite fails the job at its end, with the reason)
        with self._lock:
            drawn = self._previews.get(job_id)
        if drawn is None:  # the first: the image as the model sees it, once per job
            job = self.store.get(job_id)
            if job is None:
                return
            image = load_image(self.store.image_path(job.image.sha256), self.max_pixels)
            fitted = self.models[job.model].fit_image(image.image)
            drawn = Preview(np.asarray(fitted, dtype=np.uint8))
        directory = self.store.result_dir(job_id)
        directory.mkdir(parents=True, exist_ok=True)
        partial = directory / "preview.png.partial"
        preview_png(drawn.image, maps[0], signed).save(partial, format="PNG")
        partial.replace(directory / "preview.png")
        drawn.count += 1
        with self._lock:
            self._previews[job_id] = drawn

    def _run(self, job: Job, checked: Checked[Any], progress: Progress) -> None:
        current = self.store.get(job.id)
        if current is None or current.status != "queued" or progress.cancelled:
            self._forget(job.id)
            return
        self.store.update(job.id, status="running", started=time.time())
        self._started_or_ended(+1)
        limit = self.audit_time_limit if job.kind == "audit" else self.time_limit
        timer = threading.Timer(limit, progress.cancel)
        timer.daemon = True
        timer.start()
        started = time.monotonic()
        try:
            if isinstance(checked.request, AuditRequest):
                self._audit(job, checked, progress)
            else:
                image = load_image(self.store.image_path(job.image.sha256), self.max_pixels)
                image = LoadedImage(image.image, job.image.name, job.image.sha256)
                if isinstance(checked.request, SanityRequest):
                    self._sanity(job, checked, image, progress)
                else:
                    self._explain(job, checked, image, progress)
            self.store.update(job.id, status="done", finished=time.time())
        except Cancelled:
            if self._stopping:
                self.store.update(
                    job.id,
                    status="interrupted",
                    finished=time.time(),
                    error="the server stopped before this job finished",
                )
                return
            over_time = time.monotonic() - started >= limit
            reason = f"stopped at the time limit of {limit:g} s" if over_time else ("cancelled")
            self.store.update(job.id, status="cancelled", error=reason, finished=time.time())
        except PicassoError as exc:
            self.store.update(job.id, status="failed", error=str(exc), finished=time.time())
        except Exception as exc:  # a bug must not kill the worker; keep the reason
            log.exception("job %s failed", job.id)
            self.store.update(
                job.id,
                status="failed",
                finished=time.time(),
                error=f"internal error: {type(exc).__name__}: {exc}",
            )
        finally:
            timer.cancel()
            self._started_or_ended(-1)
            self._forget(job.id)

    def _explain(
        self,
        job: Job,
        checked: Checked[ExplainRequest],
        image: LoadedImage,
        progress: Progress,
    ) -> None:
        exp = explain(self.models[job.model], image, checked, progress)
        directory = self.store.result_dir(job.id)
        exp.save(directory, stem="result", check=progress.check)  # Cancel stops drawing too
        save_layers(exp, directory, progress.check)
        if len(exp.attributions):  # the first class's map over the image at its own size
            model = self.models[job.model]
            region = model.info.preprocessing.region(image.image.size)
            full_size_overlay(exp, image.image, region).save(directory / "overlay.png")

    def _sanity(
        self, job: Job, checked: Checked[SanityRequest], image: LoadedImage, progress: Progress
    ) -> None:
        result = sanity_check(self.models[job.model], image.image, checked, progress)
        directory = self.store.result_dir(job.id)
        written = result.save(directory, stem="stages")  # the maps after each stage
        written["png"].replace(directory / "stages.png")
        written["json"].unlink()
        body = {**result.summary(), "of": checked.request.of, "model": job.model}
        path = self.store.result_files(job)["json"]
        path.write_text(json.dumps(body, indent=2) + "\n", encoding="utf-8")

    def _forget(self, job_id: str) -> None:
        with self._lock:
            self._progress.pop(job_id, None)
            # preview.png stays: a page may still be fetching it as the job finishes
            self._previews.pop(job_id, None)


def _torch_threads() -> int | None:
    """The calling thread's PyTorch thread count, where PyTorch is loaded."""
    import sys

    torch = sys.modules.get("torch")
    return None if torch is None else int(torch.get_num_threads())


def cache_key(model: Model, request: AnyRequest, image: ImageRef) -> str:
    """(model fingerprint, image sha256, the whole checked request) as one hash."""
    payload = json.dumps(
        {
            "model": model.info.fingerprint,
            "image": image.sha256,
            "request": request.model_dump(mode="json"),
        },
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()
