"""The command line: results on disk, generated options and one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from picasso.cli import build_cli
from picasso.plugins import discover


@pytest.fixture(scope="module")
def cli():
    return build_cli(discover(plugin_dirs=[]))


def run(cli, *args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_explain_writes_results_per_image(cli, tmp_path):
    result = run(
        cli,
        "explain",
        "-m",
        "demo:tanks-biased",
        "--method",
        "occlusion",
        "--window",
        "8",
        "--stride",
        "4",
        "--baseline",
        "mean",
        "demo:tank-*",
        "--out",
        str(tmp_path),
    )
    assert result.exit_code == 0, result.output
    for stem in ("tank-overcast", "tank-sunny"):
        for ext in ("png", "npy", "json"):
            assert (tmp_path / f"{stem}.occlusion.{ext}").is_file()
        summary = json.loads((tmp_path / f"{stem}.occlusion.json").read_text())
        assert summary["settings"]["window"] == 8 and summary["settings"]["baseline"] == "mean"
    assert np.load(tmp_path / "tank-overcast.occlusion.npy").shape == (1, 64, 64)
    assert "tank-sunny.png: forest" in result.output  # the biased model misses sunny tanks


def test_targets_and_numeric_baseline(cli, tmp_path):
    result = run(
        cli,
        "explain",
        "-m",
        "demo:digits",
        "--method",
        "saliency",
        "--target",
        "3",
        "--target",
        "8",
        "demo:digit-3",
        "-o",
        str(tmp_path),
    )
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "digit-3.saliency.json").read_text())
    assert [t["index"] for t in summary["targets"]] == [3, 8]
    result = run(
        cli,
        "explain",
        "-m",
        "demo:digits",
        "--baseline",
        "-0.5",
        "--window",
        "8",
        "demo:digit-7",
        "-o",
        str(tmp_path),
    )
    assert result.exit_code == 0, result.output
    assert (
        json.loads((tmp_path / "digit-7.occlusion.json").read_text())["settings"]["baseline"]
        == -0.5
    )


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["missing.png"], "missing.png: no such file"),
        (["--method", "nope", "demo:tank-sunny"], "unknown method 'nope'"),
        (["--window", "0", "demo:tank-sunny"], "window"),
        (["--window", "4", "--stride", "9", "demo:tank-sunny"], "must not exceed window"),
        (["--baseline", "purple", "demo:tank-sunny"], "baseline"),
        (["--classes", "3", "demo:tank-sunny"], "not a setting of occlusion"),
        (["--target", "7", "demo:tank-sunny"], "does not exist"),
        (["-m", "demo:nope", "demo:tank-sunny"], "unknown demo model"),
        (["demo:zebra"], "no demo image matches"),
        (["--target", "1", "--top-k", "2", "demo:tank-sunny"], "not both"),
    ],
)
def test_bad_input_gives_one_line_and_non_zero_exit(cli, tmp_path, args, fragment):
    result = CliRunner().invoke(cli, ["explain", "-o", str(tmp_path), *args])
    assert result.exit_code != 0
    assert fragment in result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_not_an_image_fails_but_the_others_are_done(cli, tmp_path):
    bogus = tmp_path / "notes.png"
    bogus.write_text("hello")
    out = tmp_path / "out"
    result = CliRunner().invoke(
        cli,
        [
            "explain",
            "-m",
            "demo:digits",
            "--method",
            "class-probabilities",
            str(bogus),
            "demo:digit-0",
            "-o",
            str(out),
        ],
    )
    assert result.exit_code == 1
    assert "notes.png: not a readable image" in result.output
    assert "1 of 2 image(s) failed" in result.output
    assert (out / "digit-0.class-probabilities.json").is_file()


def test_capability_is_checked_before_work(cli, tmp_path, monkeypatch):
    from picasso.models.torch_adapter import TorchModel

    monkeypatch.setattr(TorchModel, "capabilities", frozenset())
    result = CliRunner().invoke(
        cli, ["explain", "--method", "saliency", "demo:tank-sunny", "-o", str(tmp_path)]
    )
    assert result.exit_code == 1
    assert "saliency needs gradients" in result.output
    assert not list(tmp_path.iterdir())


def test_methods_and_models_listings(cli):
    result = run(cli, "methods")
    assert "occlusion: " in result.output and "--window (default 16)" in result.output
    listing = json.loads(run(cli, "methods", "--json").output)
    assert listing["occlusion"]["settings"]["properties"]["stride"]["default"] == 8
    assert listing["saliency"]["requires"] == ["gradients"]
    result = run(cli, "models")
    assert "demo:tanks-biased:" in result.output and "demo:digits:" in result.output
    info = json.loads(run(cli, "models", "-m", "demo:tanks-fair", "--json").output)
    assert info["labels"] == ["forest", "tank"] and info["input_size"] == [64, 64]
    assert info["layers"][-1] == "classifier" and info["preprocessing"]["mean"] == [0.5] * 3
    text = run(cli, "models", "-m", "demo:tanks-fair-onnx").output
    assert "input: 64 x 64 RGB, stretch, mean [0.5, 0.5, 0.5]" in text
    assert "classes (2): forest, tank" in text and "capabilities: gradients" in text
    assert "no layers: onnx models do not provide layers" in text
    many = run(cli, "models", "-m", "demo:tanks-fair").output
    assert "layers (" in many and "Grad-CAM's --layer" in many
    assert "--window" in run(cli, "explain", "--help").output


@pytest.mark.parametrize(
    ("model", "framework", "key", "value"),
    [
        ("demo:tanks-fair-onnx", "onnx", "engine", "onnxruntime"),
        ("demo:tanks-fair-keras", "keras", "layout", "NHWC"),
        ("demo:tanks-fair-tensorflow", "tensorflow", "signature", "serving_default"),
    ],
)
def test_every_framework_through_the_cli(cli, tmp_path, model, framework, key, value):
    result = run(
        cli,
        "explain",
        "-m",
        model,
        "--method",
        "saliency",
        "demo:tank-overcast",
        "-o",
        str(tmp_path),
    )
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "tank-overcast.saliency.json").read_text())
    assert summary["model"]["framework"] == framework
    assert summary["model"][key] == value
    assert summary["targets"][0]["label"] == "tank"


def test_serve_reads_a_config_file_and_options_win(cli, tmp_path, monkeypatch):
    import uvicorn

    started = {}

    def fake_run(server):  # record instead of serving
        config = server.config
        started.update(app=config.app, host=config.host, port=config.port, server=server)

    monkeypatch.setattr(uvicorn.Server, "run", fake_run)
    config = tmp_path / "serve.toml"
    config.write_text(
        'models = ["demo:digits"]\nport = 9000\ndata_dir = "jobs"\nmax_upload_mb = 1\n'
        'plugins = ["plugins"]\nmax_passes = 5000\nmax_queued = 3\n'
    )
    result = run(cli, "serve", "--config", str(config), "--workers", "3")
    assert result.exit_code == 0, result.output
    assert started["port"] == 9000 and started["host"] == "127.0.0.1"
    assert started["app"].state.stopping() is False  # progress streams watch this
    started["server"].should_exit = True
    assert started["app"].state.stopping() is True
    settings = started["app"].state.settings
    assert settings.models == ("demo:digits",) and settings.workers == 3
    assert settings.data_dir == tmp_path / "jobs" and settings.max_upload_bytes == 2**20
    assert settings.plugin_dirs == (tmp_path / "plugins",)
    assert settings.allowed_hosts == {"localhost", "127.0.0.1", "::1"}  # DNS rebinding
    assert settings.budget.passes == 5000 and settings.budget.queued == 3
    result = run(cli, "serve", "--config", str(config), "--port", "9100")
    assert started["port"] == 9100  # the option wins over the file

    config.write_text('models = ["demo:digits"]\nwrokers = 4\n')  # a typo
    result = run(cli, "serve", "--config", str(config))
    assert result.exit_code != 0 and "unknown key 'wrokers'" in result.output
    config.write_text("port = 'eighty'\n")
    result = run(cli, "serve", "--config", str(config))
    assert result.exit_code != 0 and "port has the wrong type" in result.output
    result = run(cli, "serve", "--host", "0.0.0.0")
    assert result.exit_code == 2 and "--api-token" in result.output


def test_explain_can_hide_part_of_the_image(cli, tmp_path):
    """The biased model calls the sunny tank forest; hide the sky and it sees a tank."""
    args = ["explain", "-q", "-m", "demo:tanks-biased", "--method", "class-probabilities"]
    plain = run(cli, *args, "demo:tank-sunny", "--out", str(tmp_path / "a"))
    assert "tank-sunny.png: forest" in plain.output
    hidden = run(cli, *args, "--hide", "0,0,64,26", "demo:tank-sunny", "--out", str(tmp_path))
    assert hidden.exit_code == 0 and "tank-sunny.png: tank" in hidden.output
    summary = json.loads((tmp_path / "tank-sunny.class-probabilities.json").read_text())
    assert summary["extras"]["hidden"] == pytest.approx(26 / 64)
    from PIL import Image

    mask = tmp_path / "mask.png"
    Image.new("L", (64, 64), 0).save(mask)  # nothing marked, inverted: everything hidden
    inverted = run(
        cli,
        *args,
        "--hide-mask",
        str(mask),
        "--hide-invert",
        "--hide-fill",
        "mean",
        "demo:tank-sunny",
        "--out",
        str(tmp_path / "b"),
    )
    assert inverted.exit_code == 0, inverted.output
    summary = json.loads((tmp_path / "b" / "tank-sunny.class-probabilities.json").read_text())
    assert summary["extras"]["hidden"] == 1.0


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        (["--hide", "1,2,3"], "expected four whole numbers"),
        (["--hide", "4,0,2,8"], "0 <= x0 < x1"),
        (["--hide", "0,0,4,4", "--hide-fill", "purple"], "a number, mean or blur"),
    ],
)
def test_bad_hide_options_are_one_line_errors(cli, options, fragment):
    result = CliRunner().invoke(
        cli, ["explain", "-m", "demo:tanks-fair", *options, "demo:tank-sunny"]
    )
    assert result.exit_code == 2 and fragment in result.output
    assert "Traceback" not in result.output
