"""Occlusion equals captum.attr.Occlusion on several models, sizes, windows and strides."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from captum.attr import Occlusion as CaptumOcclusion

import picasso
from conftest import FlatNet, TinyConvNet, assert_maps_close, seeded
from picasso.core.errors import Cancelled, SettingsError
from picasso.core.model import Occluder
from picasso.core.progress import Progress
from picasso.visualizations.imaging import baseline_fill
from picasso.visualizations.occlusion import Occlusion, window_starts


def captum_occlusion(module, batch, target, window, stride, baseline, score):
    channels = batch.shape[1]
    if score == "probability":

        def forward(x):
            return torch.softmax(module(x), dim=1)
    else:
        forward = module
    with torch.no_grad():
        attr = CaptumOcclusion(forward).attribute(
            torch.from_numpy(batch),
            sliding_window_shapes=(channels, window, window),
            strides=(channels, stride, stride),
            baselines=baseline,
            target=target,
            perturbations_per_eval=16,
        )
    attr = attr[0].numpy()
    # Windows span all channels, so every channel carries the same map.
    np.testing.assert_allclose(attr, np.broadcast_to(attr[:1], attr.shape), atol=1e-7)
    return attr[0]


CASES = [
    # (model factory, input size (H, W), window, stride, score, batch_size)
    (lambda size: TinyConvNet(), (24, 32), 8, 4, "probability", 16),
    (lambda size: TinyConvNet(), (20, 27), 7, 3, "probability", 5),  # windows overhang
    (lambda size: TinyConvNet(), (17, 17), 5, 5, "logit", 64),  # stride == window
    (lambda size: FlatNet(size), (19, 26), 6, 4, "probability", 7),
    (lambda size: FlatNet(size), (16, 12), 12, 1, "logit", 3),  # window spans an axis
    (lambda size: FlatNet(size), (21, 30), 9, 2, "logit", 32),
]


@pytest.mark.parametrize(("factory", "size", "window", "stride", "score", "batch_size"), CASES)
def test_matches_captum(factory, size, window, stride, score, batch_size, astronaut_small):
    module = seeded(factory(size), seed=window * 31 + stride)
    model = picasso.from_torch(module, input_size=size, mean=(0.4, 0.45, 0.5), std=(0.3, 0.25, 0.2))
    exp = picasso.explain(
        model,
        astronaut_small,
        method="occlusion",
        top_k=2,
        window=window,
        stride=stride,
        baseline=0.0,
        score=score,
        batch_size=batch_size,
    )
    batch = model.preprocess([exp_image(astronaut_small)])
    assert exp.attributions.shape == (2, *size)
    for target, ours in zip(exp.targets, exp.attributions, strict=True):
        ref = captum_occlusion(module, batch, target.index, window, stride, 0.0, score)
        assert np.abs(ref).max() > 1e-4  # the comparison is not between two zero maps
        np.testing.assert_allclose(ours, ref, atol=1e-5, rtol=0)


def exp_image(array):
    from PIL import Image

    return Image.fromarray(array)


@pytest.mark.parametrize("baseline", [0.7, "mean", "blur"])
def test_baselines_match_captum_with_the_same_fill(baseline, astronaut_small):
    size = (20, 24)
    module = seeded(TinyConvNet(), seed=3)
    model = picasso.from_torch(module, input_size=size)
    batch = model.preprocess([exp_image(astronaut_small)])
    exp = picasso.explain(
        model, astronaut_small, method="occlusion", target=1, window=6, stride=3, baseline=baseline
    )
    fill = baseline_fill(batch[0], baseline, 6)
    captum_baseline = fill if np.isscalar(fill) else torch.from_numpy(fill)[None]
    ref = captum_occlusion(module, batch, 1, 6, 3, captum_baseline, "probability")
    np.testing.assert_allclose(exp.attribution, ref, atol=1e-5, rtol=0)


def test_named_fills_are_what_they_say():
    image = np.arange(2 * 6 * 8, dtype=np.float32).reshape(2, 6, 8)
    mean = baseline_fill(image, "mean", 4)
    np.testing.assert_allclose(mean[:, 0, 0], image.mean(axis=(1, 2)))
    blur = baseline_fill(image, "blur", 4)
    assert blur.shape == image.shape
    assert blur.std() < image.std()  # smoother than the input
    np.testing.assert_allclose(blur.mean(axis=(1, 2)), image.mean(axis=(1, 2)), rtol=0.05)


def test_window_starts_cover_the_edge():
    assert window_starts(10, 4, 3) == [0, 3, 6]  # last window 6..10 exactly
    assert window_starts(11, 4, 3) == [0, 3, 6, 9]  # last window 9..13 clipped to 11
    assert window_starts(8, 8, 2) == [0]


class RecordingModel:
    """Wraps a model and records the size of every batch it receives."""

    def __init__(self, model):
        self._model = model
        self.batch_sizes = []

    def __getattr__(self, name):
        return getattr(self._model, name)

    def scores(self, batch, kind):
        self.batch_sizes.append(batch.shape[0])
        return self._model.scores(batch, kind)

    def occluder(self, image, fill):
        return Occluder(self, image, fill)  # the dense one, whose batches we can see


def test_batches_are_bounded_and_progress_reported(tiny_model):
    recording = RecordingModel(tiny_model)
    settings = Occlusion.parse_settings({"window": 4, "stride": 2, "batch_size": 10})
    batch = np.random.default_rng(0).normal(size=(1, 3, 24, 32)).astype(np.float32)
    seen = []
    out = Occlusion().explain(
        recording, batch, [0], settings, Progress(lambda d, t: seen.append((d, t)))
    )
    windows = len(window_starts(24, 4, 2)) * len(window_starts(32, 4, 2))
    assert out.extras["windows"] == windows
    assert max(recording.batch_sizes) <= 10
    assert sum(recording.batch_sizes) == windows + 1  # +1: the unoccluded image
    assert seen[0] == (0, windows) and seen[-1] == (windows, windows)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_cancellation_stops_the_work(tiny_model):
    recording = RecordingModel(tiny_model)
    reported: list[int] = []

    def report(done, total):
        reported.append(done)
        if done >= 20:
            progress.cancel()

    progress = Progress(report)
    settings = Occlusion.parse_settings({"window": 2, "stride": 1, "batch_size": 10})
    batch = np.zeros((1, 3, 24, 32), np.float32)
    with pytest.raises(Cancelled):
        Occlusion().explain(recording, batch, [0], settings, progress)
    # stopped right after the batch that reached 20 windows (plus the unoccluded pass)
    assert reported[-1] >= 20 and all(d < 20 for d in reported[:-1])
    assert sum(recording.batch_sizes) == 1 + reported[-1] <= 30


@pytest.mark.parametrize(
    ("settings", "fragment"),
    [
        ({"window": 0}, "window"),
        ({"window": 4, "stride": 8}, "must not exceed window"),
        ({"baseline": "purple"}, "baseline"),
        ({"score": "loss"}, "score"),
        ({"windw": 4}, "not a setting of occlusion"),
        ({"batch_size": -1}, "batch_size"),
    ],
)
def test_bad_settings_are_refused_with_a_message(settings, fragment):
    with pytest.raises(SettingsError, match=fragment):
        Occlusion.parse_settings(settings)


def test_window_larger_than_the_image_is_clipped(tiny_model, astronaut_small):
    exp = picasso.explain(tiny_model, astronaut_small, method="occlusion", window=64, stride=64)
    # One window hides the whole image: the map is the score drop everywhere.
    assert np.allclose(exp.attribution, exp.attribution[0, 0])
    assert exp.extras["windows"] == 1


@pytest.mark.parametrize("factory", [lambda: TinyConvNet(), lambda: FlatNet((19, 26))])
def test_one_window_per_batch_gives_the_same_map(factory, astronaut_small):
    """A batch of one window once pasted into the cached original activation itself
    (contiguous() of a one-image expand is the tensor itself), corrupting every later
    window: batch_size=1 gave a map 0.79 off on FlatNet."""
    model = picasso.from_torch(seeded(factory()), input_size=(19, 26))
    settings = {"window": 6, "stride": 4, "target": 0}
    one = picasso.explain(model, astronaut_small, "occlusion", batch_size=1, **settings)
    many = picasso.explain(model, astronaut_small, "occlusion", batch_size=7, **settings)
    assert one.extras["engine"] == "incremental"
    assert_maps_close(one.attribution, many.attribution, rel=1e-5)


def test_previews_come_coarse_first_and_refine_towards_the_map():
    from picasso.demo import demo_images

    model = picasso.load_model("demo:tanks-fair")
    image = demo_images("tank-overcast")[0]
    seen: list[tuple[int, np.ndarray]] = []  # (windows done, partial maps)
    done_so_far: list[int] = []
    progress = Progress(
        lambda done, total: done_so_far.append(done),
        preview=lambda maps: seen.append((done_so_far[-1], maps)),
        preview_interval=0.0,
    )
    settings = {"window": 8, "stride": 2, "target": 1, "batch_size": 16}
    plain = picasso.explain(model, image, "occlusion", **settings)
    exp = picasso.explain(model, image, "occlusion", progress=progress, **settings)
    np.testing.assert_allclose(exp.attribution, plain.attribution, atol=1e-6)  # order-free
    assert seen[0][1].shape == (1, 64, 64)
    assert seen[0][0] == 16  # 29 x 29 windows: every 8th in both directions = 4 x 4
    # measured: the first map (2 % of the windows) correlates 0.56 with the result,
    # after 64 windows 0.87, after a quarter 0.94
    agreement = [np.corrcoef(m[0].ravel(), exp.attribution.ravel())[0, 1] for _, m in seen]
    assert agreement[0] > 0.4 and agreement[-1] > 0.95
    errors = [np.abs(m[0] - exp.attribution).mean() for _, m in seen]
    assert errors[-1] < errors[0] / 3


def test_the_python_api_takes_a_preview_callback(astronaut_small):
    model = picasso.from_torch(seeded(FlatNet((64, 64))), input_size=(64, 64))
    maps: list[np.ndarray] = []
    picasso.explain(model, astronaut_small, "occlusion", window=4, stride=2, preview=maps.append)
    assert maps and maps[0].shape == (1, 64, 64)
    rise: list[np.ndarray] = []
    picasso.explain(model, astronaut_small, "rise", masks=300, error=0, preview=rise.append)
    assert rise and rise[0].shape == (1, 64, 64)
