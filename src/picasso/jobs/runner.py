"""The local worker pool: submit a request, get a job id; progress, cancellation, a
time limit and a result cache keyed by (model fingerprint, image sha256, method,
settings, targets)."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from ..core.errors import Cancelled, JobError, ModelLoadError, PicassoError
from ..core.images import DEFAULT_MAX_PIXELS, LoadedImage, load_image
from ..core.model import RANDOMIZE, Model
from ..core.progress import Progress
from ..plugins import MethodRegistry
from ..service import explain, get_method, resolve_targets
from .store import FINISHED, Job, JobStore

log = logging.getLogger(__name__)


class JobRunner:
    """Runs visualizations as jobs on ``workers`` threads.

    Args:
        store: where rows and files live.
        models: the models jobs may use, by name (never loaded from a request).
        registry: the methods jobs may use.
        workers: jobs running at once; more wait in the queue.
        time_limit: seconds a job may run before it is cancelled.
    """

    def __init__(
        self,
        store: JobStore,
        models: Mapping[str, Model],
        registry: MethodRegistry,
        workers: int = 2,
        time_limit: float = 600.0,
        max_pixels: int = DEFAULT_MAX_PIXELS,
    ) -> None:
        self.store = store
        self.models = dict(models)
        self.registry = registry
        self.time_limit = time_limit
        self.max_pixels = max_pixels
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="picasso-job")
        self._progress: dict[str, Progress] = {}
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
    def submit(
        self,
        model: str,
        image: Any,
        method: str,
        settings: dict[str, Any] | None = None,
        target: int | Sequence[int] | None = None,
        top_k: int | None = None,
        faithfulness: bool = False,
    ) -> Job:
        """Validate a request and queue it (or return the finished job that already
        answered it). Bad requests raise a :class:`PicassoError` before anything is
        queued. ``faithfulness`` adds deletion/insertion curves to the result."""
        if model not in self.models:
            raise ModelLoadError(
                f"unknown model {model!r}; available: {', '.join(sorted(self.models))}"
            )
        chosen = self.models[model]
        method_cls = get_method(method, self.registry)
        parsed = method_cls.parse_settings(settings)
        method_cls.check_capabilities(chosen)
        if chosen.info.labels:  # class count known: refuse impossible targets now
            resolve_targets(np.zeros(len(chosen.info.labels)), target, top_k)
        loaded = image if isinstance(image, LoadedImage) else load_image(image, self.max_pixels)
        request = {
            "image": loaded.sha256,
            "image_name": loaded.name,
            "settings": parsed.model_dump(mode="json"),
            "target": list(target) if isinstance(target, (list, tuple)) else target,
            "top_k": top_k,
            "faithfulness": bool(faithfulness),
        }
        if not self.store.image_path(loaded.sha256).exists():
            encoded = io.BytesIO()
            loaded.image.save(encoded, format="PNG")
            self.store.save_image(loaded.sha256, encoded.getvalue())
        return self._queue(model, method_cls.name, request)

    def sanity_problem(self, job: Job) -> str | None:
        """Why ``job`` cannot be sanity-checked, or None when it can."""
        if job.status != "done" or job.request.get("kind", "explain") != "explain":
            return f"job {job.id} is not a finished visualization"
        if job.model not in self.models:
            return f"model {job.model!r} of job {job.id} is not served any more"
        method_cls = self.registry.get(job.method)
        if method_cls is None:
            return f"method {job.method!r} of job {job.id} is not registered any more"
        if not method_cls.produces_map:
            return f"{job.method} produces no map to check"
        if RANDOMIZE not in self.models[job.model].capabilities:
            return f"model {job.model!r} cannot be randomised, so it cannot be sanity-checked"
        return None

    def submit_sanity(self, job_id: str) -> Job:
        """Queue the sanity check (cascading randomisation) of a finished job's map."""
        of = self.store.get(job_id)
        if of is None:
            raise JobError(f"no job {job_id}")
        problem = self.sanity_problem(of)
        if problem is not None:
            raise JobError(problem)
        request = {
            "kind": "sanity",
            "of": job_id,
            "image": of.request["image"],
            "image_name": of.request["image_name"],
            "settings": of.request["settings"],
            # the map of the class the visualization explained first
            "target": self._first_target(of),
            "top_k": None,
        }
        return self._queue(of.model, of.method, request)

    def _first_target(self, job: Job) -> int:
        summary = self.store.result_files(job)["json"]
        return json.loads(summary.read_text(encoding="utf-8"))["targets"][0]["index"]

    def _queue(self, model: str, method: str, request: dict[str, Any]) -> Job:
        key = cache_key(self.models[model], method, request)
        cached = self.store.cached(key)
        if cached is not None and self.store.result_files(cached)["json"].is_file():
            return cached  # (a result deleted from disk is computed again)
        job = self.store.insert(uuid.uuid4().hex, key, model, method, request)
        progress = Progress(lambda done, total, _id=job.id: self._report(_id, done, total))
        with self._lock:
            self._progress[job.id] = progress
        self._pool.submit(self._run, job, progress)
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
            if job is None or job.status in FINISHED:
                return job
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} still {job.status} after {timeout} s")
            time.sleep(0.02)

    # -- work --------------------------------------------------------------------------
    def _report(self, job_id: str, done: int, total: int) -> None:
        self.store.update(job_id, done=done, total=total)

    def _run(self, job: Job, progress: Progress) -> None:
        current = self.store.get(job.id)
        if current is None or current.status != "queued" or progress.cancelled:
            self._forget(job.id)
            return
        self.store.update(job.id, status="running", started=time.time())
        timer = threading.Timer(self.time_limit, progress.cancel)
        timer.daemon = True
        timer.start()
        started = time.monotonic()
        try:
            request = job.request
            image = load_image(self.store.image_path(request["image"]), self.max_pixels)
            image = LoadedImage(image.image, request["image_name"], request["image"])
            if request.get("kind") == "sanity":
                self._sanity(job, image, progress)
            else:
                self._explain(job, image, progress)
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
            over_time = time.monotonic() - started >= self.time_limit
            reason = (
                f"stopped at the time limit of {self.time_limit:g} s"
                if over_time
                else ("cancelled")
            )
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
            self._forget(job.id)

    def _explain(self, job: Job, image: LoadedImage, progress: Progress) -> None:
        from ..render import save_layers

        request = job.request
        exp = explain(
            self.models[job.model],
            image,
            job.method,
            target=request["target"],
            top_k=request["top_k"],
            settings=request["settings"],
            progress=progress,
            registry=self.registry,
            faithfulness=request.get("faithfulness", False),
        )
        directory = self.store.result_dir(job.id)
        exp.save(directory, stem="result")
        save_layers(exp, directory)

    def _sanity(self, job: Job, image: LoadedImage, progress: Progress) -> None:
        from ..sanity import sanity_check

        request = job.request
        result = sanity_check(
            self.models[job.model],
            image.image,
            job.method,
            target=request["target"],
            settings=request["settings"],
            registry=self.registry,
            progress=progress,
        )
        path = self.store.result_files(job)["json"]
        path.parent.mkdir(parents=True, exist_ok=True)
        body = {**result.summary(), "of": request["of"], "model": job.model}
        path.write_text(json.dumps(body, indent=2) + "\n", encoding="utf-8")

    def _forget(self, job_id: str) -> None:
        with self._lock:
            self._progress.pop(job_id, None)


def cache_key(model: Model, method: str, request: dict[str, Any]) -> str:
    """(model fingerprint, image sha256, method, settings, targets) as one hash."""
    payload = json.dumps(
        {
            "model": model.info.fingerprint,
            "method": method,
            "image": request["image"],
            "settings": request["settings"],
            "target": request["target"],
            "top_k": request["top_k"],
            "kind": request.get("kind", "explain"),
            "faithfulness": request.get("faithfulness", False),
        },
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()
