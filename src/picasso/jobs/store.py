"""SQLite job rows (stdlib ``sqlite3``, WAL) and content-addressed files in a data
folder: ``images/<sha256>`` for inputs, ``results/<job id>/`` for outputs."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..requests import REQUEST, AnyRequest, SanityRequest

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    cache_key TEXT NOT NULL,
    status TEXT NOT NULL,          -- queued, running, done, failed, cancelled, interrupted
    model TEXT NOT NULL,
    method TEXT NOT NULL,
    request TEXT NOT NULL,         -- JSON: the request (with its kind), image sha256 and name
    done INTEGER NOT NULL DEFAULT 0,
    total INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    created REAL NOT NULL,
    started REAL,
    finished REAL
);
CREATE INDEX IF NOT EXISTS jobs_cache ON jobs (cache_key, status);
"""

FINISHED = frozenset({"done", "failed", "cancelled", "interrupted"})


@dataclass(frozen=True)
class ImageRef:
    """An image kept in the store: its sha256 (the file name) and a display name."""

    sha256: str
    name: str


@dataclass(frozen=True)
class Job:
    id: str
    cache_key: str
    status: str
    model: str
    method: str
    request: AnyRequest
    image: ImageRef
    done: int
    total: int
    error: str | None
    created: float
    started: float | None
    finished: float | None

    @property
    def is_sanity(self) -> bool:
        return isinstance(self.request, SanityRequest)

    @property
    def kind(self) -> str:
        """explain, sanity or audit."""
        return self.request.kind

    def request_json(self) -> dict[str, Any]:
        """The request as stored and as the API shows it: its fields and the image."""
        return request_json(self.request, self.image)


def request_json(request: AnyRequest, image: ImageRef) -> dict[str, Any]:
    return {**request.model_dump(mode="json"), "image": image.sha256, "image_name": image.name}


class JobStore:
    """Job rows and files under one data folder. Safe to share between threads."""

    def __init__(self, data_dir: str | Path) -> None:
        self.data_dir = Path(data_dir)
        (self.data_dir / "images").mkdir(parents=True, exist_ok=True)
        (self.data_dir / "results").mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(
            self.data_dir / "jobs.sqlite3", check_same_thread=False, isolation_level=None
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- files -------------------------------------------------------------------------
    def image_path(self, sha256: str) -> Path:
        return self.data_dir / "images" / sha256

    def save_image(self, sha256: str, data: bytes) -> Path:
        path = self.image_path(sha256)
        if not path.exists():
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(data)
            tmp.replace(path)  # never a half-written image under its hash
        return path

    def result_dir(self, job_id: str) -> Path:
        return self.data_dir / "results" / job_id

    def result_files(self, job: Job) -> dict[str, Path]:
        """A job's downloadable files by kind (a sanity check has only JSON)."""
        directory = self.result_dir(job.id)
        if job.is_sanity:
            return {"json": directory / "sanity.json"}
        if job.kind == "audit":
            return {
                "json": directory / "summary.json",
                "html": directory / "report.html",
                "parquet": directory / "audit.parquet",
                "csv": directory / "classes.csv",
                "npy": directory / "maps.npy",
            }
        return {kind: directory / f"result.{job.method}.{kind}" for kind in ("json", "png", "npy")}

    # -- rows --------------------------------------------------------------------------
    def _execute(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    def insert(
        self,
        job_id: str,
        cache_key: str,
        model: str,
        request: AnyRequest,
        image: ImageRef,
    ) -> Job:
        body = json.dumps(request_json(request, image), sort_keys=True)
        self._execute(
            "INSERT INTO jobs (id, cache_key, status, model, method, request, created) "
            "VALUES (?, ?, 'queued', ?, ?, ?, ?)",
            (job_id, cache_key, model, request.method, body, time.time()),
        )
        job = self.get(job_id)
        assert job is not None  # just inserted
        return job

    def get(self, job_id: str) -> Job | None:
        rows = self._execute("SELECT * FROM jobs WHERE id = ?", (job_id,))
        return _job(rows[0]) if rows else None

    def list(self, limit: int = 100) -> list[Job]:
        rows = self._execute("SELECT * FROM jobs ORDER BY created DESC LIMIT ?", (limit,))
        return [_job(r) for r in rows]

    def cached(self, cache_key: str) -> Job | None:
        rows = self._execute(
            "SELECT * FROM jobs WHERE cache_key = ? AND status = 'done' "
            "ORDER BY finished DESC LIMIT 1",
            (cache_key,),
        )
        return _job(rows[0]) if rows else None

    def active(self, cache_key: str) -> Job | None:
        """A queued or running job of the same request, to attach to."""
        rows = self._execute(
            "SELECT * FROM jobs WHERE cache_key = ? AND status IN ('queued', 'running') "
            "ORDER BY created LIMIT 1",
            (cache_key,),
        )
        return _job(rows[0]) if rows else None

    def count(self, status: str) -> int:
        rows = self._execute("SELECT COUNT(*) FROM jobs WHERE status = ?", (status,))
        return int(rows[0][0])

    def sanity_of(self, job_id: str) -> Job | None:
        """The newest sanity-check job of ``job_id``, if any was started."""
        rows = self._execute(
            "SELECT * FROM jobs WHERE request LIKE ? ORDER BY created DESC LIMIT 1",
            (f'%"of": "{job_id}"%',),  # request JSON is written with sorted keys
        )
        return _job(rows[0]) if rows else None

    def update(self, job_id: str, **fields: Any) -> None:
        names = ", ".join(f"{name} = ?" for name in fields)
        self._execute(f"UPDATE jobs SET {names} WHERE id = ?", (*fields.values(), job_id))

    def mark_interrupted(self) -> int:
        """After a restart: work that was queued or running will not finish."""
        rows = self._execute(
            "UPDATE jobs SET status = 'interrupted', finished = ?, "
            "error = 'the server stopped before this job finished' "
            "WHERE status IN ('queued', 'running') RETURNING id",
            (time.time(),),
        )
        return len(rows)


def _job(row: tuple[Any, ...]) -> Job:
    """A row in column order (see SCHEMA); the request column holds JSON."""
    body = json.loads(row[5])
    image = ImageRef(body.pop("image"), body.pop("image_name", "image"))
    body.setdefault("kind", "explain")  # rows written before requests had a kind
    body.setdefault("method", row[4])
    if body["kind"] == "sanity":
        body.pop("top_k", None)
    job_id, cache_key, status, model, method = row[:5]
    done, total, error, created, started, finished = row[6:]
    return Job(
        job_id,
        cache_key,
        status,
        model,
        method,
        REQUEST.validate_python(body),
        image,
        done,
        total,
        error,
        created,
        started,
        finished,
    )
