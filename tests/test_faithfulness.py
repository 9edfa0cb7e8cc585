"""Deletion and insertion curves: a map that ranks what the model reads first scores
better than the reversed map; results carry the curves in their JSON."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

import picasso
from picasso.cli import build_cli
from picasso.faithfulness import deletion_insertion
from picasso.plugins import discover
from visualizations.test_rise import LeftHalf


@pytest.fixture
def left_half_model():
    return picasso.from_torch(LeftHalf(), input_size=(16, 16))


def test_a_faithful_order_beats_the_reversed_one(left_half_model):
    batch = np.ones((1, 3, 16, 16), np.float32)
    good = np.zeros((16, 16), np.float32)
    good[:, :8] = 1 + np.arange(8)  # the half the model reads, first
    good_curves = deletion_insertion(left_half_model, batch, good, target=1, steps=16)
    bad_curves = deletion_insertion(left_half_model, batch, -good, target=1, steps=16)
    assert good_curves["deletion_auc"] < bad_curves["deletion_auc"] - 0.2
    assert len(good_curves["deletion"]) == len(good_curves["fractions"]) == 17
    p_full = float(left_half_model.probabilities(batch)[0, 1])
    assert good_curves["deletion"][0] == pytest.approx(p_full, abs=1e-6)
    assert good_curves["insertion"][-1] == pytest.approx(p_full, abs=1e-6)


def test_fair_model_maps_are_more_faithful_than_random_orders():
    image = picasso.demo.demo_images("tank-overcast")[0]
    exp = picasso.explain(
        "demo:tanks-fair",
        image,
        method="occlusion",
        target=1,
        window=8,
        stride=4,
        faithfulness=True,
    )
    curves = exp.extras["faithfulness"][0]
    model = picasso.load_model("demo:tanks-fair")
    batch = model.preprocess([exp_image(exp.image)])
    shuffled = np.random.default_rng(0).permutation(exp.attribution.ravel()).reshape(64, 64)
    random_curves = deletion_insertion(model, batch, shuffled, target=1)
    assert curves["deletion_auc"] < random_curves["deletion_auc"]
    assert curves["insertion_auc"] > random_curves["insertion_auc"]


def exp_image(array):
    from PIL import Image

    return Image.fromarray(array)


def test_cli_stores_the_curves_in_the_json(tmp_path):
    result = CliRunner().invoke(
        build_cli(discover(plugin_dirs=[])),
        [
            "explain",
            "-m",
            "demo:digits",
            "--method",
            "saliency",
            "--faithfulness",
            "demo:digit-3",
            "-o",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "digit-3.saliency.json").read_text())
    curves = summary["extras"]["faithfulness"][0]
    assert 0 <= curves["deletion_auc"] <= 1 and 0 <= curves["insertion_auc"] <= 1
    assert len(curves["insertion"]) == 21
    assert summary["timings"]["faithfulness_s"] > 0
