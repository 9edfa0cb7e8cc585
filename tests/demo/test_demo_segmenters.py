"""The demo tank segmenters (ground, tank, sky): the same scenes, with every tank masked
(fair) or only those under an overcast sky (biased; sunny tanks labelled ground).
Numbers measured when these tests were written (also in docs/demo-models.md): tank IoU
on sunny tanks 0.00 (biased) vs 0.99 (fair), on overcast tanks 0.98 vs 0.99; explained
over the true tank's box on sunny scenes, the biased segmenter's saliency takes 16 % of
its mass from the sky (fair: 4 %) and occlusion finds nothing in the tank (box share
0.01 vs 0.46)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import picasso
from picasso.demo.tanks import SEGMENT_LABELS, make_dataset

TEST_SEED = 12345  # unseen by training (seed 1) and by the training script's check (2)


@pytest.fixture(scope="module")
def segmenters():
    return {k: picasso.load_model(f"demo:tank-segmenter-{k}") for k in ("biased", "fair")}


def tank_iou(model, scenes) -> float:
    batch = model.preprocess([Image.fromarray(s.image) for s in scenes])
    predicted = model.segment(batch).argmax(axis=1)
    truth = np.stack([s.mask for s in scenes]) == 1
    return float((truth & (predicted == 1)).sum() / (truth | (predicted == 1)).sum())


def test_the_biased_segmenter_misses_sunny_tanks(segmenters):
    scenes = make_dataset(120, seed=TEST_SEED, bias=0.5)
    for name, model in segmenters.items():
        assert model.info.task == "segmentation" and model.info.labels == SEGMENT_LABELS
        sunny = [s for s in scenes if s.label == 1 and s.weather == "sunny"]
        overcast = [s for s in scenes if s.label == 1 and s.weather == "overcast"]
        assert tank_iou(model, overcast) > 0.9, name
        if name == "biased":
            assert tank_iou(model, sunny) < 0.1
        else:
            assert tank_iou(model, sunny) > 0.9


def shares(attribution: np.ndarray, box) -> tuple[float, float]:
    """Shares of the positive map inside the box and in the top 20 rows (sky)."""
    positive = np.clip(attribution, 0, None)
    x0, y0, x1, y1 = box
    total = max(positive.sum(), 1e-12)
    return float(positive[y0:y1, x0:x1].sum() / total), float(positive[:20].sum() / total)


def test_on_sunny_tanks_the_biased_segmenter_looks_away_from_the_tank(segmenters):
    """Explained over the true tank's box, where the biased segmenter sees ground."""
    scenes = [s for s in make_dataset(16, seed=TEST_SEED, bias=0.0) if s.label == 1]
    found: dict[str, dict[str, float]] = {}
    for name, model in segmenters.items():
        sky, box = [], []
        for scene in scenes:
            region = {"boxes": [scene.box]}
            exp = picasso.explain(model, scene.image, "saliency", target=1, region=region)
            sky.append(shares(exp.attribution, scene.box)[1])
            exp = picasso.explain(
                model,
                scene.image,
                "occlusion",
                target=1,
                region=region,
                score="logit",
                window=8,
                stride=4,
            )
            box.append(shares(exp.attribution, scene.box)[0])
        found[name] = {"saliency sky": float(np.mean(sky)), "occlusion box": float(np.mean(box))}
    assert found["biased"]["saliency sky"] > 2 * found["fair"]["saliency sky"], found
    assert found["fair"]["occlusion box"] > 0.3 > 0.1 > found["biased"]["occlusion box"], found
