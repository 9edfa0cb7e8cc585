"""Progress reporting and cancellation, one object for both.

Methods call ``progress(done, total)`` after each batch of model calls. The call
forwards the numbers to whoever listens (a CLI bar, a job row) and raises
:class:`~picasso.core.errors.Cancelled` once cancellation was requested, so a method
honours cancellation simply by reporting progress.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import numpy as np

from .errors import Cancelled

ProgressCallback = Callable[[int, int], None]
#: Receives partial maps (targets, H, W) while a method works (coarse first).
PreviewCallback = Callable[[np.ndarray], None]


class Progress:
    """Progress sink with a thread-safe cancel flag."""

    def __init__(
        self,
        callback: ProgressCallback | None = None,
        preview: PreviewCallback | None = None,
        preview_interval: float = 0.5,
    ) -> None:
        self._callback = callback
        self._cancel = threading.Event()
        self.done = 0
        self.total = 0
        self._preview = preview
        self._interval = preview_interval
        self._last_preview = float("-inf")

    @property
    def listening(self) -> bool:
        """Whether anyone listens for partial maps at all."""
        return self._preview is not None

    @property
    def wants_preview(self) -> bool:
        """Whether someone listens for partial maps now (at most one per interval):
        methods that can show one ask before they compute it."""
        ready = time.monotonic() - self._last_preview >= self._interval
        return self._preview is not None and ready

    def preview(self, maps: np.ndarray, force: bool = False) -> None:
        """Hand partial maps (targets, H, W) to the listener, throttled to one per
        ``preview_interval`` seconds unless ``force`` (a method's coarse pass done)."""
        if self._preview is None or not (force or self.wants_preview):
            return
        self._last_preview = time.monotonic()
        self._preview(np.asarray(maps, dtype=np.float32))

    def cancel(self) -> None:
        """Ask the running work to stop at its next progress report."""
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def check(self) -> None:
        """Raise :class:`Cancelled` if cancellation was requested."""
        if self._cancel.is_set():
            raise Cancelled()

    def __call__(self, done: int, total: int) -> None:
        self.done, self.total = done, total
        if self._callback is not None:
            self._callback(done, total)
        self.check()
