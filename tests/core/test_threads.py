"""Thread counts are set deliberately: jobs sharing the cores get their share."""

from __future__ import annotations

import pytest
import torch

from picasso.core import threads as threads_module
from picasso.core.threads import per_job, set_threads, threads


@pytest.fixture
def restore():
    before, torch_before = threads(), torch.get_num_threads()
    yield
    set_threads(before)
    torch.set_num_threads(torch_before)


def test_jobs_share_the_cores(monkeypatch):
    monkeypatch.setattr(threads_module, "cores", lambda: 8)
    assert per_job(2) == 4 and per_job(3) == 2 and per_job(16) == 1


def test_set_threads_reaches_torch_and_onnx_runtime(restore, tmp_path):
    set_threads(1)
    assert threads() == 1 and torch.get_num_threads() == 1
    onnx = pytest.importorskip("onnxruntime")
    from picasso.models.onnx_adapter import open_session

    path = tmp_path / "tiny.onnx"
    torch.onnx.export(torch.nn.Linear(2, 2), torch.zeros(1, 2), str(path), dynamo=False)
    session = open_session(path)
    assert session.get_session_options().intra_op_num_threads == 1
    assert onnx is not None


def test_the_runner_shares_the_cores_among_the_jobs_running(restore, tmp_path, monkeypatch):
    """One job gets every core; two at once half each; a fixed count stays fixed."""
    from picasso.demo import demo_images
    from picasso.jobs import JobRunner, JobStore
    from picasso.models import load_model
    from picasso.plugins import discover
    from picasso.requests import ExplainRequest

    monkeypatch.setattr(threads_module, "cores", lambda: 6)
    models = {"tanks": load_model("demo:tanks-fair")}
    runner = JobRunner(JobStore(tmp_path), models, discover(), workers=2, share_cores=True)
    long = {"masks": 100_000, "batch_size": 1, "error": 0}
    image = demo_images("tank-sunny")[0]
    try:
        first = runner.submit("tanks", image, ExplainRequest(method="rise", settings=long))
        _wait_until(lambda: runner.get(first.id).status == "running")
        assert threads() == 6
        second = runner.submit(
            "tanks", image, ExplainRequest(method="rise", settings={**long, "seed": 1})
        )
        _wait_until(lambda: runner.get(second.id).status == "running")
        _wait_until(lambda: threads() == 3)  # each job applies its share in its thread
        runner.cancel(second.id)
        _wait_until(lambda: runner.get(second.id).status == "cancelled")
        _wait_until(lambda: threads() == 6)  # the first job, alone again, takes them all
    finally:
        runner.shutdown()
        runner.store.close()


def _wait_until(condition, timeout: float = 30.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_a_server_with_a_fixed_count_keeps_it(restore, tmp_path):
    from fastapi.testclient import TestClient

    from picasso.web import WebSettings, create_app

    settings = WebSettings(models=("demo:digits",), data_dir=tmp_path, workers=3, threads=1)
    with TestClient(create_app(settings)):
        assert threads() == 1


def test_the_cli_takes_threads(restore, tmp_path):
    from click.testing import CliRunner

    from picasso.cli import build_cli
    from picasso.plugins import discover

    result = CliRunner().invoke(
        build_cli(discover(plugin_dirs=[])),
        [
            "explain",
            "-q",
            "--threads",
            "1",
            "--method",
            "saliency",
            "demo:digit-7",
            "-o",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 0, result.output
    assert torch.get_num_threads() == 1


def test_serve_passes_threads_on():
    from picasso.cli.serve import ServeConfig

    assert ServeConfig(threads=3).web_settings(None).threads == 3
    assert ServeConfig().web_settings(None).threads is None  # cores / workers
