"""Deletion and insertion curves: a map that ranks what the model reads first scores
better than the reversed map; results carry the curves in their JSON."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
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


class KeptSquared(torch.nn.Module):
    """Probability of class 1 = (share of channel-0 pixels that are not zero) squared."""

    def forward(self, x):
        kept = (x[:, 0] != 0).float().mean(dim=(1, 2))
        return torch.stack([1 - kept**2, kept**2], dim=1)


def test_areas_use_the_trapezoid_rule_on_a_curve_of_known_shape():
    """Deleting a share f of the pixels leaves a score of (1 - f)^2, at f = k / 20.
    Trapezoid rule: 0.05 * (sum_k (k/20)^2 - (1 + 0) / 2) = 0.05 * (7.175 - 0.5)
    = 0.33375 (the mean of the 21 points would be 0.3417; the exact integral 1/3).
    Insertion starts from a blur of the all-ones image, which is all ones: area 1."""
    model = picasso.from_torch(KeptSquared(), input_size=(20, 20), output="probabilities")
    batch = np.ones((1, 3, 20, 20), np.float32)
    order = np.random.default_rng(0).random((20, 20)).astype(np.float32)
    curves = deletion_insertion(model, batch, order, target=1, steps=20)
    np.testing.assert_allclose(curves["deletion"], (1 - np.linspace(0, 1, 21)) ** 2, atol=1e-6)
    assert curves["deletion_auc"] == pytest.approx(0.33375, abs=1e-6)  # float32 scores
    assert curves["insertion_auc"] == pytest.approx(1.0, abs=1e-6)


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
    # the JSON holds the areas of the curves it holds (trapezoid rule over 21 points)
    fractions = np.linspace(0, 1, 21)
    assert curves["fractions"] == pytest.approx(fractions)
    assert curves["deletion_auc"] == pytest.approx(np.trapezoid(curves["deletion"], fractions))
    assert curves["insertion_auc"] == pytest.approx(np.trapezoid(curves["insertion"], fractions))
    assert curves["deletion"][0] == pytest.approx(summary["targets"][0]["probability"], abs=1e-5)
    assert len(curves["insertion"]) == 21
    assert summary["timings"]["faithfulness_s"] > 0
