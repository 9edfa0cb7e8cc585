"""How many CPU threads one piece of work may use.

Frameworks default to one thread per core *per call*. A server running two jobs at
once on two cores then runs four threads on two cores. :func:`set_threads` fixes the
count: PyTorch's intra-op threads of the calling thread (and of threads started later),
and ONNX Runtime sessions created afterwards. The job runner gives each running job
:func:`per_job` of the jobs running at the moment; the CLI takes ``--threads``.
"""

from __future__ import annotations

import os
import sys

_threads: int | None = None


def cores() -> int:
    """The CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def per_job(jobs: int) -> int:
    """Threads per job when ``jobs`` jobs share this machine's cores."""
    return max(1, cores() // max(1, jobs))


def set_threads(count: int | None) -> None:
    """Use ``count`` threads per framework call (None: the frameworks' defaults)."""
    global _threads
    _threads = count
    if count is not None and "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(count)


def threads() -> int | None:
    """The count set by :func:`set_threads`, or None."""
    return _threads
