"""What the running app holds (models, methods, the job runner, templates) and the
FastAPI dependencies that hand it to routes. Built in the lifespan, never at import."""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.templating import Jinja2Templates

from ..core.model import Model
from ..jobs import Job, JobRunner, JobStore
from ..plugins import MethodRegistry
from ..service import Probe
from .settings import WebSettings


class Probes:
    """The last few images made ready for the explore page's predictions (one
    :class:`~picasso.service.Probe` per model and image), so that a brush stroke costs
    one forward pass, not a decode and a resize too."""

    def __init__(self, size: int = 16) -> None:
        self.size = size
        self._probes: OrderedDict[tuple[str, str], Probe] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, model: Model, path: Path, max_pixels: int) -> Probe:
        key = (model.info.name, path.name)
        with self._lock:
            if key in self._probes:
                self._probes.move_to_end(key)
                return self._probes[key]
        probe = Probe(model, path, max_pixels)  # outside the lock: other images go on
        with self._lock:
            self._probes[key] = probe
            while len(self._probes) > self.size:
                self._probes.popitem(last=False)
        return probe


@dataclass(frozen=True)
class Services:
    """The app's shared state, one per app (``app.state.services``)."""

    settings: WebSettings
    models: dict[str, Model]
    registry: MethodRegistry
    runner: JobRunner
    templates: Jinja2Templates
    probes: Probes = field(default_factory=Probes)

    @property
    def store(self) -> JobStore:
        return self.runner.store


def start(settings: WebSettings) -> tuple[dict[str, Model], MethodRegistry, JobRunner]:
    """Load the models and methods and open the job store (blocking work)."""
    from ..core.threads import set_threads
    from ..models import load_model
    from ..plugins import discover

    # A fixed count when asked; otherwise the runner shares the cores among the jobs
    # running at each moment (all of them for one job).
    set_threads(settings.threads)
    models = {}
    for ref in settings.models:
        model = load_model(ref)
        model.prepare()  # lazy set-up that is unsafe under concurrency, done now
        models[model.info.name] = model
    registry = discover(settings.plugin_dirs)
    runner = JobRunner(
        JobStore(settings.data_dir),
        models,
        registry,
        workers=settings.workers,
        time_limit=settings.time_limit,
        data_root=settings.data_root,
        audit_time_limit=settings.audit_time_limit,
        budget=settings.budget,
        max_pixels=settings.max_pixels,
        share_cores=settings.threads is None,
    )
    return models, registry, runner


def make_lifespan(
    settings: WebSettings,
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """Load everything when the app starts; stop the jobs, then close the store."""
    from .templating import make_templates

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Loading models is blocking work: keep it off the event loop.
        models, registry, runner = await asyncio.to_thread(start, settings)
        app.state.services = Services(settings, models, registry, runner, make_templates(registry))
        try:
            yield
        finally:
            # Running jobs stop at their next batch and record it; only then may the
            # database close (a worker must never write to a closed store).
            await asyncio.to_thread(runner.shutdown, True)
            runner.store.close()

    return lifespan


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def stopping(request: Request) -> Callable[[], bool]:
    """Whether the server is stopping (``picasso serve`` sets ``app.state.stopping``), so
    that open progress streams end at once."""
    return getattr(request.app.state, "stopping", lambda: False)


ServicesDep = Annotated[Services, Depends(get_services)]


def job_or_404(services: Services, job_id: str, cancel: bool = False) -> Job:
    """A job by id (cancelled first, when asked), or a 404 naming it."""
    job = services.runner.cancel(job_id) if cancel else services.runner.get(job_id)
    if job is None:
        raise HTTPException(404, f"no job {job_id[:80]}")
    return job
