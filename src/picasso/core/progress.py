"""Progress reporting and cancellation, one object for both.

Methods call ``progress(done, total)`` after each batch of model calls. The call
forwards the numbers to whoever listens (a CLI bar, a job row) and raises
:class:`~picasso.core.errors.Cancelled` once cancellation was requested, so a method
honours cancellation simply by reporting progress.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from .errors import Cancelled

ProgressCallback = Callable[[int, int], None]


class Progress:
    """Progress sink with a thread-safe cancel flag."""

    def __init__(self, callback: ProgressCallback | None = None) -> None:
        self._callback = callback
        self._cancel = threading.Event()
        self.done = 0
        self.total = 0

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
