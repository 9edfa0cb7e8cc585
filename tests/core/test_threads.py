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


def test_the_server_divides_its_cores_among_its_workers(restore, tmp_path, monkeypatch):
    from fastapi.testclient import TestClient

    from picasso.web import WebSettings, create_app

    monkeypatch.setattr(threads_module, "cores", lambda: 6)
    with TestClient(create_app(WebSettings(models=("demo:digits",), data_dir=tmp_path, workers=3))):
        assert threads() == 2 and torch.get_num_threads() == 2
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
