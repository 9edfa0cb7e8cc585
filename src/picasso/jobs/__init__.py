"""Jobs: long visualizations run by a bounded local worker pool, with progress,
cancellation, a time limit, a result cache, and rows in SQLite that survive a restart.

The web app and any other front end submit work here; nothing in this package knows
about HTTP.
"""

from .runner import Budget, JobRunner
from .store import Job, JobStore

__all__ = ["Budget", "Job", "JobRunner", "JobStore"]
