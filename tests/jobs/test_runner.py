"""Jobs: progress, cache, cancellation, time limit, failures and restarts."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

import picasso
from picasso.core.errors import ModelLoadError, SettingsError, TargetError, UnknownMethodError
from picasso.core.method import Method
from picasso.demo import demo_images
from picasso.jobs import JobRunner, JobStore
from picasso.plugins import MethodRegistry, discover
from picasso.requests import ExplainRequest


def explain(method, settings=None, **options):
    return ExplainRequest(method=method, settings=settings or {}, **options)


@pytest.fixture
def models():
    return {
        "fair": picasso.load_model("demo:tanks-fair"),
        "digits": picasso.load_model("demo:digits"),
    }


@pytest.fixture
def runner(tmp_path, models):
    runner = JobRunner(
        JobStore(tmp_path / "data"), models, discover(plugin_dirs=[]), workers=2, time_limit=30
    )
    yield runner
    runner.shutdown()


def test_a_job_runs_to_the_end_with_progress_and_files(runner):
    job = runner.submit(
        "fair",
        demo_images("tank-overcast")[0],
        explain("occlusion", {"window": 8, "stride": 4}, target=1),
    )
    assert job.status == "queued"
    done = runner.wait(job.id)
    assert done.status == "done" and done.done == done.total == 225
    folder = runner.store.result_dir(job.id)
    summary = json.loads((folder / "result.occlusion.json").read_text())
    assert summary["targets"][0]["label"] == "tank"
    assert np.load(folder / "result.occlusion.npy").shape == (1, 64, 64)
    direct = picasso.explain(
        runner.models["fair"],
        demo_images("tank-overcast")[0],
        method="occlusion",
        target=1,
        window=8,
        stride=4,
    )
    np.testing.assert_array_equal(np.load(folder / "result.occlusion.npy"), direct.attributions)


def test_the_same_request_twice_returns_the_cached_job(runner):
    image = demo_images("digit-3")[0]
    first = runner.wait(runner.submit("digits", image, explain("saliency")).id)
    started = time.monotonic()
    second = runner.submit(
        "digits", image.read_bytes(), explain("saliency")
    )  # same pixels as bytes
    assert time.monotonic() - started < 0.5
    assert second.id == first.id and second.status == "done"
    other = runner.submit("digits", image, explain("saliency", target=5))
    assert other.id != first.id


def test_cancel_stops_a_long_job(runner):
    job = runner.submit(
        "fair",
        demo_images("tank-sunny")[0],
        explain("occlusion", {"window": 2, "stride": 1, "batch_size": 4}),
    )  # 3,969 windows
    time.sleep(0.3)
    runner.cancel(job.id)
    finished = runner.wait(job.id)
    assert finished.status == "cancelled" and finished.error == "cancelled"
    assert finished.done < finished.total


def test_time_limit(tmp_path, models):
    runner = JobRunner(JobStore(tmp_path / "d"), models, discover(plugin_dirs=[]), time_limit=0.3)
    try:
        job = runner.submit(
            "fair",
            demo_images("tank-sunny")[0],
            explain("occlusion", {"window": 2, "stride": 1, "batch_size": 4}),
        )
        finished = runner.wait(job.id)
        assert finished.status == "cancelled" and "time limit of 0.3 s" in finished.error
    finally:
        runner.shutdown()


def test_bad_requests_are_refused_before_queueing(runner, tmp_path):
    image = demo_images("digit-3")[0]
    with pytest.raises(ModelLoadError, match="unknown model 'nope'; available: digits, fair"):
        runner.submit("nope", image, explain("saliency"))
    with pytest.raises(UnknownMethodError):
        runner.submit("digits", image, explain("magic"))
    with pytest.raises(SettingsError, match="window"):
        runner.submit("digits", image, explain("occlusion", {"window": 0}))
    bogus = tmp_path / "x.png"
    bogus.write_text("not an image")
    with pytest.raises(picasso.PicassoError, match="not a readable image"):
        runner.submit("digits", bogus, explain("saliency"))
    assert runner.store.list() == []


def test_impossible_targets_are_refused_before_queueing(runner):
    with pytest.raises(TargetError, match="does not exist"):
        runner.submit("digits", demo_images("digit-3")[0], explain("saliency", target=42))
    with pytest.raises(TargetError, match="top_k"):
        runner.submit("digits", demo_images("digit-3")[0], explain("saliency", top_k=11))
    assert runner.store.list() == []


class Broken(Method):
    name = "broken"
    description = "fails half way"

    def explain(self, model, batch, targets, settings, progress):
        progress(1, 2)
        if settings.batch_size == 1:
            raise SettingsError("broken: batch_size 1 is not supported")
        raise ZeroDivisionError("a bug")


def test_failures_are_recorded_not_raised(tmp_path, models):
    registry = MethodRegistry({"broken": Broken}, [])
    runner = JobRunner(JobStore(tmp_path), models, registry, workers=1)
    try:
        image = demo_images("digit-3")[0]
        expected = runner.wait(
            runner.submit("digits", image, explain("broken", {"batch_size": 1})).id
        )
        assert expected.status == "failed" and expected.error.startswith("broken: batch_size 1")
        bug = runner.wait(runner.submit("digits", image, explain("broken")).id)
        assert bug.status == "failed" and bug.error == "internal error: ZeroDivisionError: a bug"
        again = runner.wait(runner.submit("digits", image, explain("broken", {"batch_size": 1})).id)
        assert again.id != expected.id  # failures are not cached
    finally:
        runner.shutdown()


def test_a_restart_keeps_results_and_marks_interrupted_work(tmp_path, models):
    store = JobStore(tmp_path / "data")
    runner = JobRunner(store, models, discover(plugin_dirs=[]), workers=1)
    done = runner.wait(runner.submit("digits", demo_images("digit-0")[0], explain("saliency")).id)
    long = runner.submit(
        "fair",
        demo_images("tank-sunny")[0],
        explain("occlusion", {"window": 2, "stride": 1, "batch_size": 2}),
    )
    time.sleep(0.2)
    # A crash: the process is gone, and nothing updated the rows.
    runner._pool.shutdown(wait=False, cancel_futures=True)
    for progress in list(runner._progress.values()):
        progress.cancel()
    time.sleep(0.3)
    store.update(long.id, status="running")  # as the crashed process left it
    store.close()

    again = JobRunner(JobStore(tmp_path / "data"), models, discover(plugin_dirs=[]))
    try:
        assert again.get(done.id).status == "done"
        assert (again.store.result_dir(done.id) / "result.saliency.png").is_file()
        interrupted = again.get(long.id)
        assert interrupted.status == "interrupted" and "server stopped" in interrupted.error
        # the cache still answers the finished request
        assert again.submit("digits", demo_images("digit-0")[0], explain("saliency")).id == done.id
    finally:
        again.shutdown()
