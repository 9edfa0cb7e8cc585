"""Methods are discovered from entry points (built-ins too) and plugin folders."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

import picasso
from picasso.core.errors import UnknownMethodError
from picasso.plugins import ENTRY_POINT_GROUP, discover

PLUGIN = textwrap.dedent('''
    """A drop-in plugin: the map is the image's brightness, ignoring the model."""
    import numpy as np
    from pydantic import Field
    from picasso import Method, MethodOutput, MethodSettings

    class BrightnessSettings(MethodSettings):
        gamma: float = Field(1.0, gt=0, le=10, description="Exponent applied to brightness.")

    class Brightness(Method):
        name = "brightness"
        description = "Pixel brightness (a test plugin)."
        Settings = BrightnessSettings

        def explain(self, model, batch, targets, settings, progress):
            progress(0, 1)
            value = np.abs(batch[0]).mean(axis=0) ** settings.gamma
            progress(1, 1)
            return MethodOutput(maps=np.stack([value] * len(targets)).astype(np.float32))
''')


@pytest.fixture
def plugin_dir(tmp_path):
    (tmp_path / "brightness.py").write_text(PLUGIN)
    (tmp_path / "broken.py").write_text("raise RuntimeError('boom')\n")
    (tmp_path / "_private.py").write_text("raise RuntimeError('never imported')\n")
    return tmp_path


def test_builtins_come_from_entry_points():
    from importlib.metadata import entry_points

    declared = {ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)}
    assert {"occlusion", "saliency", "class-probabilities"} <= declared
    assert set(discover(plugin_dirs=[])) >= declared
    assert not discover(plugin_dirs=[], use_entry_points=False)


def test_plugin_folder_is_listed_and_runnable(plugin_dir, tiny_model, astronaut_small):
    registry = discover([plugin_dir])
    assert "brightness" in registry and "occlusion" in registry
    assert any("broken.py" in p and "boom" in p for p in registry.problems)
    assert not any("_private" in p for p in registry.problems)
    exp = picasso.explain(
        tiny_model, astronaut_small, method="brightness", plugin_dirs=[plugin_dir], gamma=2.0
    )
    batch = tiny_model.preprocess([exp_image(astronaut_small)])
    np.testing.assert_allclose(exp.attribution, np.abs(batch[0]).mean(axis=0) ** 2, rtol=1e-5)
    assert exp.settings == {"batch_size": 16, "gamma": 2.0}
    assert "brightness" in picasso.methods([plugin_dir])


def exp_image(array):
    from PIL import Image

    return Image.fromarray(array)


def test_plugin_folder_from_environment_reaches_the_cli(plugin_dir, tmp_path):
    out = tmp_path / "out"
    env = {"PICASSO_PLUGINS": str(plugin_dir), "PATH": ""}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "picasso",
            "explain",
            "--method",
            "brightness",
            "--gamma",
            "0.5",
            "-m",
            "demo:digits",
            "demo:digit-3",
            "-o",
            str(out),
        ],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert (out / "digit-3.brightness.png").is_file()
    listing = subprocess.run(
        [sys.executable, "-m", "picasso", "methods"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    assert "brightness: Pixel brightness" in listing.stdout
    assert "--gamma (default 1.0)" in listing.stdout
    assert "boom" in listing.stderr  # the broken plugin is reported, not fatal


def test_duplicate_names_keep_the_first(tmp_path):
    (tmp_path / "dup.py").write_text(PLUGIN.replace('"brightness"', '"occlusion"'))
    registry = discover([tmp_path])
    from picasso.visualizations.occlusion import Occlusion

    assert registry["occlusion"] is Occlusion
    assert any("already taken" in p for p in registry.problems)


def test_unknown_method_lists_the_known_ones():
    registry = discover(plugin_dirs=[])
    with pytest.raises(UnknownMethodError) as info:
        registry["grad-cam-9000"]
    assert str(info.value) == (
        f"unknown method 'grad-cam-9000'; available: {', '.join(sorted(registry))}"
    )
    assert {"occlusion", "saliency", "grad-cam", "integrated-gradients"} <= set(registry)


def test_missing_plugin_folder_is_reported(tmp_path):
    registry = discover([tmp_path / "nope"])
    assert any("does not exist" in p for p in registry.problems)
