"""Target selection and the orchestration shared by the API and the CLI."""

from __future__ import annotations

import numpy as np
import pytest

import picasso
from picasso.core.errors import Cancelled, TargetError
from picasso.core.progress import Progress
from picasso.requests import resolve_targets

PROBS = np.array([0.1, 0.5, 0.15, 0.25])


def test_resolve_targets():
    assert resolve_targets(PROBS, None, None) == [1]
    assert resolve_targets(PROBS, 2, None) == [2]
    assert resolve_targets(PROBS, [3, 0], None) == [3, 0]
    assert resolve_targets(PROBS, np.int64(0), None) == [0]
    assert resolve_targets(PROBS, None, 3) == [1, 3, 2]


@pytest.mark.parametrize(
    ("target", "top_k", "fragment"),
    [
        (4, None, "does not exist"),
        (-1, None, "does not exist"),
        (None, 5, "between 1 and 4"),
        (1, 2, "not both"),
        ([], None, "empty"),
        ("cat", None, "class index"),
        (True, None, "class index"),
    ],
)
def test_bad_targets(target, top_k, fragment):
    with pytest.raises(TargetError, match=fragment):
        resolve_targets(PROBS, target, top_k)


def test_explain_accepts_paths_pil_and_arrays(tmp_path, tiny_model, astronaut_small):
    from PIL import Image

    path = tmp_path / "photo.png"
    Image.fromarray(astronaut_small).save(path)
    maps = [
        picasso.explain(tiny_model, source, method="saliency").attribution
        for source in (path, Image.fromarray(astronaut_small), astronaut_small)
    ]
    np.testing.assert_array_equal(maps[0], maps[1])
    np.testing.assert_array_equal(maps[0], maps[2])
    exp = picasso.explain(tiny_model, path, method="saliency")
    assert exp.image_name == "photo" and exp.image.shape == (24, 32, 3)


def test_progress_callback_and_cancel_before_start(tiny_model, astronaut_small):
    seen = []
    picasso.explain(
        tiny_model, astronaut_small, window=8, stride=8, progress=lambda d, t: seen.append((d, t))
    )
    assert seen[-1] == (12, 12)
    progress = Progress()
    progress.cancel()
    with pytest.raises(Cancelled):
        picasso.explain(tiny_model, astronaut_small, progress=progress)


def test_explain_loads_models_by_reference(astronaut_small):
    exp = picasso.explain("demo:digits", astronaut_small, method="class-probabilities")
    assert exp.model["name"] == "digits" and len(exp.top) == 5


@pytest.mark.parametrize(("method", "target"), [("saliency", None), ("grad-cam", 1)])
def test_explain_many_shares_batches_and_equals_explain(tmp_path, method, target):
    """Several images through the batch path (3 per call), a bad file among them: each
    result equals explain()'s, the bad one is its own error."""
    from picasso.plugins import discover
    from picasso.requests import ExplainRequest, check
    from picasso.service import explain_many, shares_batches

    model = picasso.load_model("demo:tanks-fair")
    images = [*picasso.demo.demo_images("tank-*"), *picasso.demo.demo_images("forest-*")]
    bogus = tmp_path / "bogus.png"
    bogus.write_text("no")
    images.insert(2, bogus)
    request = ExplainRequest(method=method, target=target, settings={"batch_size": 3})
    checked = check(request, model, discover(plugin_dirs=[]))
    assert shares_batches(checked)
    seen = []
    results = dict(explain_many(model, images, checked, progress=lambda d, t: seen.append(d)))
    assert sorted(results) == list(range(5)) and seen[-1] == 5
    assert isinstance(results[2], picasso.PicassoError)
    for index in (0, 1, 3, 4):
        single = picasso.explain(model, images[index], method=method, target=target)
        many = results[index]
        assert [t.index for t in many.targets] == [t.index for t in single.targets]
        assert many.targets[0].probability == pytest.approx(single.targets[0].probability, abs=1e-6)
        scale = float(np.abs(single.attribution).max())
        np.testing.assert_allclose(many.attribution, single.attribution, atol=1e-5 * scale)
    top2 = check(ExplainRequest(method=method, top_k=2), model, discover(plugin_dirs=[]))
    assert not shares_batches(top2)  # several classes per image: image by image
