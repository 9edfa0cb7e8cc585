"""The demo tank models reproduce the parable, and the maps reveal it.

Numbers measured when these tests were written (also in docs/demo-models.md):
weather-swapped accuracy 0.00 (biased) vs 1.00 (fair); share of positive occlusion
attribution inside the tank's box 0.00 vs 0.60, of saliency 0.07 vs 0.34.
"""

from __future__ import annotations

import numpy as np
import pytest

import picasso
from picasso.demo import demo_images, demo_model_names
from picasso.demo.tanks import LABELS, make_dataset

TEST_SEED = 12345  # unseen by training (seed 1) and by the training script's tests (2)


@pytest.fixture(scope="module")
def tank_models():
    return {name: picasso.load_model(f"demo:{name}") for name in ("tanks-biased", "tanks-fair")}


def accuracy(model, scenes) -> float:
    from PIL import Image

    batch = model.preprocess([Image.fromarray(s.image) for s in scenes])
    predicted = model.probabilities(batch).argmax(axis=1)
    return float((predicted == np.array([s.label for s in scenes])).mean())


def test_demo_models_are_listed_and_load():
    assert {"tanks-biased", "tanks-fair", "digits"} <= set(demo_model_names())
    model = picasso.load_model("demo:digits")
    assert model.info.labels == tuple(str(d) for d in range(10))
    assert model.info.preprocessing.grayscale


def test_biased_model_fails_when_the_weather_is_swapped(tank_models):
    usual = make_dataset(200, seed=TEST_SEED, bias=1.0)
    swapped = make_dataset(200, seed=TEST_SEED, bias=0.0)
    biased, fair = tank_models["tanks-biased"], tank_models["tanks-fair"]
    assert accuracy(biased, usual) > 0.95  # looks perfect on data like its training set
    assert accuracy(biased, swapped) < 0.6  # near chance or worse
    assert accuracy(fair, usual) > 0.9
    assert accuracy(fair, swapped) > 0.9


def box_share(attribution: np.ndarray, box) -> float:
    positive = np.clip(attribution, 0, None)
    x0, y0, x1, y1 = box
    return float(positive[y0:y1, x0:x1].sum() / max(positive.sum(), 1e-12))


@pytest.mark.parametrize(
    ("method", "settings", "min_gap"),
    [("occlusion", {"window": 8, "stride": 4}, 0.3), ("saliency", {}, 0.15)],
)
def test_maps_show_the_fair_model_looks_at_the_tank(tank_models, method, settings, min_gap):
    # Overcast tanks: both models say "tank"; only the maps tell them apart.
    scenes = [s for s in make_dataset(24, seed=TEST_SEED, bias=1.0) if s.label == 1]
    shares = {}
    for name, model in tank_models.items():
        values = []
        for scene in scenes:
            exp = picasso.explain(model, scene.image, method=method, target=1, **settings)
            assert exp.targets[0].label == "tank"
            values.append(box_share(exp.attribution, scene.box))
        shares[name] = float(np.mean(values))
    box_area = np.mean([(s.box[2] - s.box[0]) * (s.box[3] - s.box[1]) / 64**2 for s in scenes])
    assert shares["tanks-fair"] > shares["tanks-biased"] + min_gap, shares
    assert shares["tanks-fair"] > 3 * box_area  # concentrated on the tank, not spread out


def test_biased_occlusion_mass_sits_in_the_sky(tank_models):
    scenes = [s for s in make_dataset(12, seed=TEST_SEED + 1, bias=1.0) if s.label == 1]
    sky_shares = []
    for scene in scenes:
        exp = picasso.explain(
            tank_models["tanks-biased"],
            scene.image,
            method="occlusion",
            target=1,
            window=8,
            stride=4,
        )
        positive = np.clip(exp.attribution, 0, None)
        sky_shares.append(positive[:20].sum() / positive.sum())  # horizon is at row 20..28
    assert np.mean(sky_shares) > 0.8


def test_sample_images_and_labels():
    assert LABELS == ("forest", "tank")
    names = {p.stem for p in demo_images()}
    assert {"tank-overcast", "tank-sunny", "forest-sunny", "forest-overcast"} <= names
    digits = picasso.load_model("demo:digits")
    for path in demo_images("digit-*"):
        exp = picasso.explain(digits, path, method="class-probabilities")
        assert exp.top[0].label == path.stem.split("-")[1]


def test_generator_is_seeded():
    a = make_dataset(4, seed=5, bias=0.5)
    b = make_dataset(4, seed=5, bias=0.5)
    assert all(
        np.array_equal(x.image, y.image) and x.box == y.box for x, y in zip(a, b, strict=True)
    )
    assert all((s.box is None) == (s.label == 0) for s in a)
