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
