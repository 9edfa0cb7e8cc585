"""Sanity checks (cascading randomisation): real methods pass, a method that ignores
the model fails."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import picasso
from picasso import Method, MethodOutput
from picasso.cli import build_cli
from picasso.core.errors import CapabilityError
from picasso.demo import demo_images
from picasso.plugins import discover
from picasso.sanity import rank, relation, spearman


class Edges(Method):
    """A broken 'explanation': the image's edge strength, whatever the model."""

    name = "edges"
    description = "Gradient magnitude of the image itself (ignores the model)."

    def explain(self, model, batch, targets, settings, progress):
        gray = batch[0].mean(axis=0)
        gy, gx = np.gradient(gray)
        edge = np.hypot(gx, gy).astype(np.float32)
        return MethodOutput(maps=np.stack([edge] * len(targets)))


@pytest.mark.parametrize("method", ["saliency", "grad-cam"])
@pytest.mark.parametrize(
    ("name", "image"),
    [("tanks-fair", "tank-overcast"), ("tanks-biased", "tank-overcast"), ("digits", "digit-3")],
)
def test_real_methods_pass_on_the_demo_models(method, name, image):
    result = picasso.sanity_check(f"demo:{name}", demo_images(image)[0], method)
    assert result.verdict == "pass", result.steps
    assert result.steps[-1]["spearman"] < 0.5
    assert [s["layers_randomized"] for s in result.steps] == sorted(
        s["layers_randomized"] for s in result.steps
    )


def test_a_method_that_ignores_the_model_fails():
    seen = []
    result = picasso.sanity_check(
        "demo:tanks-fair",
        demo_images("tank-overcast")[0],
        Edges,
        progress=lambda done, total: seen.append((done, total)),
    )
    total = len(result.steps) + 1
    assert seen[0] == (0, total) and seen[-1] == (total, total)  # real progress from 0
    assert result.verdict == "fail"
    assert all(step["spearman"] == pytest.approx(1.0) for step in result.steps)
    assert result.explanation.startswith(
        "after randomising all 9 layers the map is still "
        "nearly the same as the trained map (Spearman 1.00"
    )
    assert result.maps.shape == (len(result.steps) + 1, 64, 64)  # trained, then each stage


class ConfidentOnly(Method):
    """Edges while the model is confident, a blank map once it is not: after
    randomisation the map becomes constant."""

    name = "confident-only"
    description = "Edges where the model is sure, nothing otherwise."

    def explain(self, model, batch, targets, settings, progress):
        sure = model.probabilities(batch).max() > 0.9
        edges = Edges().explain(model, batch, targets, settings, progress).maps
        return MethodOutput(maps=edges if sure else np.zeros_like(edges))


def test_a_map_that_becomes_constant_is_inconclusive_not_a_pass(tmp_path):
    """A constant map has no ranking: no correlation of 0 reported, no pass."""
    result = picasso.sanity_check("demo:tanks-fair", demo_images("tank-overcast")[0], ConfidentOnly)
    last = result.steps[-1]
    assert last["spearman"] is None and last["note"] == "map became constant"
    assert result.verdict == "inconclusive"
    assert "became constant" in result.explanation and "not a pass" in result.explanation
    paths = result.save(tmp_path, stem="tank")
    with Image.open(paths["png"]) as figure:  # input, trained map, one panel per stage
        assert figure.width >= 220 * (len(result.steps) + 2) * 0.9
    assert json.loads(paths["json"].read_text())["verdict"] == "inconclusive"


@pytest.mark.parametrize(
    ("rho", "words"),
    [
        (0.05, "no longer related to"),
        (-0.3, "weakly related to"),
        (0.57, "clearly related to"),
        (0.95, "nearly the same as"),
    ],
)
def test_the_words_match_the_number(rho, words):
    assert relation(rho) == words


def test_randomised_copies_leave_the_model_alone():
    model = picasso.load_model("demo:digits")
    batch = np.random.default_rng(0).normal(size=(1, 1, 32, 32)).astype(np.float32)
    before = model.probabilities(batch)
    layers = model.parameter_layers()
    copy = model.randomized(layers, seed=1)
    assert not np.allclose(copy.probabilities(batch), before)
    np.testing.assert_array_equal(model.probabilities(batch), before)
    np.testing.assert_array_equal(
        model.randomized(layers, seed=1).probabilities(batch), copy.probabilities(batch)
    )


def test_models_that_cannot_be_randomised_are_refused():
    with pytest.raises(CapabilityError, match=r"digits-onnx.* cannot be randomised"):
        picasso.sanity_check("demo:digits-onnx", demo_images("digit-3")[0], "rise", masks=8)


def test_rank_correlation():
    a = np.array([[1.0, 2.0], [2.0, 5.0]])
    np.testing.assert_allclose(rank(a), [1, 2.5, 2.5, 4])
    assert spearman(a, a * 3 + 1) == pytest.approx(1.0)
    assert spearman(a, -a) == pytest.approx(-1.0)
    assert spearman(a, np.ones_like(a)) == 0.0


def test_cli_prints_the_steps_and_the_verdict():
    result = CliRunner().invoke(
        build_cli(discover(plugin_dirs=[])),
        ["sanity", "-m", "demo:digits", "--method", "saliency", "--stages", "3", "demo:digit-7"],
    )
    assert result.exit_code == 0, result.output
    assert result.output.count("layers randomised") == 3
    assert "verdict: pass (threshold 0.5)" in result.output


def test_cli_takes_the_method_settings_and_saves_the_stages(tmp_path):
    result = CliRunner().invoke(
        build_cli(discover(plugin_dirs=[])),
        [
            "sanity",
            "-m",
            "demo:tanks-fair",
            "--method",
            "occlusion",
            "--window",
            "16",
            "--stride",
            "16",
            "--stages",
            "2",
            "demo:tank-overcast",
            "-o",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "class tank (1)" in result.output  # the label, not only the index
    summary = json.loads((tmp_path / "tank-overcast.sanity.json").read_text())
    assert summary["label"] == "tank" and len(summary["steps"]) == 2
    assert (tmp_path / "tank-overcast.sanity.png").is_file()
    bad = CliRunner().invoke(
        build_cli(discover(plugin_dirs=[])),
        ["sanity", "--method", "occlusion", "--window", "0", "demo:tank-overcast"],
    )
    assert bad.exit_code == 1 and "window" in bad.output
