"""demo:imagenet: EfficientNet-Lite0 with its packaged ImageNet weights."""

from __future__ import annotations

import os

import pytest

import picasso
from picasso.core.errors import ModelLoadError
from picasso.demo import demo_images, imagenet
from picasso.web.settings import DEFAULT_MODELS, default_models

if not imagenet.available():
    if os.environ.get("CI"):  # the test command installs every extra
        pytest.fail("the 'imagenet' extra is missing", pytrace=False)
    pytest.skip("the 'imagenet' extra is not installed", allow_module_level=True)


@pytest.fixture(scope="module")
def model():
    return picasso.load_model("demo:imagenet")


def test_real_photos_get_their_imagenet_classes(model):
    assert model.info.input_size == (224, 224) and len(model.info.labels) == 1000
    assert model.info.path.endswith(".pth")
    cat = picasso.explain(model, demo_images("cat")[0], method="class-probabilities")
    assert cat.top[0].label in {"Egyptian cat", "tiger cat", "tabby"}
    assert sum(t.probability for t in cat.top[:3]) > 0.8  # all three are cats
    coffee = picasso.explain(model, demo_images("coffee")[0], method="class-probabilities")
    assert coffee.top[0].label == "espresso" and coffee.top[0].probability > 0.9


def test_gradient_methods_run_on_it(model):
    assert {"gradients", "layers"} <= model.capabilities
    exp = picasso.explain(model, demo_images("cat")[0], method="grad-cam")
    assert exp.attribution.shape == (224, 224) and exp.attribution.max() == pytest.approx(1.0)


def test_the_server_offers_it_by_default():
    assert default_models() == (*DEFAULT_MODELS, "demo:imagenet")


def test_it_takes_no_overrides():
    with pytest.raises(ModelLoadError, match="no overrides"):
        picasso.load_model("demo:imagenet", input_size=(64, 64))
