"""What the web app is configured with (:class:`WebSettings`) and its fixed limits."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..core.images import DEFAULT_MAX_PIXELS
from ..jobs.runner import Budget

DEFAULT_MODELS = (
    "demo:tanks-biased",
    "demo:tanks-fair",
    "demo:digits",
    "demo:tank-detector-biased",
    "demo:tank-detector-fair",
    "demo:tank-segmenter-biased",
    "demo:tank-segmenter-fair",
)
MAX_FILES = 32  # images in one submitted form


def default_models() -> tuple[str, ...]:
    """The demo models, plus ``demo:imagenet`` where its extra is installed."""
    from ..demo import imagenet

    return DEFAULT_MODELS + (("demo:imagenet",) if imagenet.available() else ())


@dataclass(frozen=True)
class WebSettings:
    """Everything the app is configured with (tests pass their own)."""

    models: tuple[str, ...] = DEFAULT_MODELS
    data_dir: Path = Path("picasso-data")
    workers: int = 2
    time_limit: float = 600.0
    max_upload_bytes: int = 20 * 1024 * 1024
    max_pixels: int = DEFAULT_MAX_PIXELS
    plugin_dirs: tuple[Path, ...] | None = None
    api_token: str | None = None  # required on every request when set
    # Host names answered (any port); None answers any. `picasso serve` on a loopback
    # address sets the loopback names (plus --allowed-host): DNS rebinding gets a 400.
    allowed_hosts: frozenset[str] | None = None
    data_root: Path | None = None  # its sub-folders are datasets audits may use
    audit_time_limit: float = 6 * 3600.0
    max_dataset_bytes: int = 200 * 1024 * 1024  # an uploaded zip, and what it unpacks to
    max_dataset_files: int = 20_000
    budget: Budget = field(default_factory=Budget)  # what one job may cost
    threads: int | None = None  # per job; None: the cores shared by the workers

    @property
    def max_request_bytes(self) -> int:
        """The largest request body accepted: a form full of images, plus room."""
        return self.max_upload_bytes * MAX_FILES + 1_000_000
