"""Incremental occlusion (patches through the graph) equals the dense computation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

import picasso
from conftest import seeded
from picasso.core.model import Occluder
from picasso.core.progress import Progress
from picasso.models import torch_incremental
from picasso.visualizations.occlusion import Occlusion
from visualizations.test_occlusion import captum_occlusion


class OddOps(nn.Module):
    """Every layer kind the patch engine handles, in awkward configurations."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 7, stride=2, padding=3)
        self.bn = nn.BatchNorm2d(8)
        self.pool = nn.MaxPool2d(3, stride=2, padding=1)
        self.dilated = nn.Conv2d(8, 8, 3, padding=2, dilation=2)
        self.grouped = nn.Conv2d(8, 8, 3, padding=1, groups=2)
        self.avg = nn.AvgPool2d(3, stride=1, padding=1)
        self.down = nn.Conv2d(8, 16, (3, 1), stride=(2, 1), padding=(1, 0))
        self.act = nn.SiLU()
        self.head = nn.Linear(16, 5)

    def forward(self, x):
        x = self.pool(F.relu(self.bn(self.stem(x))))
        x = x + self.grouped(F.relu6(self.dilated(x)) + 1.0)
        x = self.act(self.down(self.avg(x)))
        return self.head(F.adaptive_avg_pool2d(x, 1).flatten(1))


class Concat(nn.Module):
    """torch.cat on patches is not modelled: the engine must fall back correctly."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 4, 3, padding=1)
        self.b = nn.Conv2d(3, 4, 5, padding=2)
        self.head = nn.Linear(8, 3)

    def forward(self, x):
        x = torch.cat([self.a(x), self.b(x)], dim=1)
        return self.head(x.mean(dim=(2, 3)))


def resnet18():
    torch.manual_seed(0)  # torchvision's own initialisation keeps the logits moderate
    return torchvision.models.resnet18(num_classes=10).eval()


def occlusion(model, batch, settings, dense=False):
    if dense:
        model.occluder = lambda image, fill: Occluder(model, image, fill)
    parsed = Occlusion.parse_settings(settings)
    out = Occlusion().explain(model, batch, [0, 2], parsed, Progress())
    if dense:
        del model.occluder
    return out


@pytest.mark.parametrize(
    ("factory", "size", "settings"),
    [
        (lambda: seeded(OddOps(), 1), (70, 90), {"window": 9, "stride": 4, "baseline": 0.3}),
        (
            lambda: seeded(OddOps(), 2),
            (64, 64),
            {"window": 12, "stride": 5, "baseline": "blur", "batch_size": 7},
        ),
        (resnet18, (128, 160), {"window": 12, "stride": 12, "score": "logit"}),
    ],
)
def test_incremental_equals_dense_and_captum(factory, size, settings):
    module = factory()
    model = picasso.from_torch(module, input_size=size)
    batch = np.random.default_rng(1).normal(size=(1, 3, *size)).astype(np.float32)
    incremental = occlusion(model, batch, settings)
    assert incremental.extras["engine"] == "incremental"
    dense = occlusion(model, batch, settings, dense=True)
    assert dense.extras["engine"] == "dense"
    np.testing.assert_allclose(incremental.maps, dense.maps, atol=1e-5, rtol=0)
    full = {"baseline": 0.0, "score": "probability", **settings}
    fill = incremental_fill(batch, full)
    reference = captum_occlusion(
        module, batch, 2, full["window"], full["stride"], fill, full["score"]
    )
    assert np.abs(reference).max() > 1e-4
    np.testing.assert_allclose(incremental.maps[1], reference, atol=1e-5, rtol=0)


def incremental_fill(batch, settings):
    from picasso.visualizations.imaging import baseline_fill

    fill = baseline_fill(batch[0], settings["baseline"], settings["window"])
    return fill if np.isscalar(fill) else torch.from_numpy(fill)[None]


def test_unmodelled_ops_fall_back_to_full_tensors():
    module = seeded(Concat(), seed=5)
    model = picasso.from_torch(module, input_size=(40, 40))
    batch = np.random.default_rng(2).normal(size=(1, 3, 40, 40)).astype(np.float32)
    settings = {"window": 8, "stride": 4}
    np.testing.assert_allclose(
        occlusion(model, batch, settings).maps,
        occlusion(model, batch, settings, dense=True).maps,
        atol=1e-6,
    )


def test_a_wrong_patch_result_is_caught_and_the_dense_path_used(monkeypatch):
    module = seeded(OddOps(), seed=3)
    model = picasso.from_torch(module, input_size=(64, 64))
    batch = np.random.default_rng(3).normal(size=(1, 3, 64, 64)).astype(np.float32)
    settings = {"window": 8, "stride": 8}
    expected = occlusion(model, batch, settings, dense=True).maps
    original = torch_incremental.IncrementalOccluder._spatial

    def corrupted(self, *args, **kwargs):
        patch = original(self, *args, **kwargs)
        if patch is not None:
            patch.values = patch.values + 0.5
        return patch

    monkeypatch.setattr(torch_incremental.IncrementalOccluder, "_spatial", corrupted)
    out = occlusion(model, batch, settings)
    assert out.extras["engine"] == "dense"
    np.testing.assert_allclose(out.maps, expected, atol=1e-6)


def test_small_savings_choose_the_dense_path():
    module = resnet18()
    model = picasso.from_torch(module, input_size=(32, 32))  # the window covers most maps
    batch = np.random.default_rng(4).normal(size=(1, 3, 32, 32)).astype(np.float32)
    out = occlusion(model, batch, {"window": 16, "stride": 8})
    assert out.extras["engine"] == "dense"


def test_untraceable_models_use_the_dense_path(tmp_path):
    module = seeded(OddOps(), seed=1)
    path = tmp_path / "odd.pt"
    torch.jit.script(module).save(str(path))
    model = picasso.load_model(path, input_size=(48, 48))
    batch = np.random.default_rng(5).normal(size=(1, 3, 48, 48)).astype(np.float32)
    out = occlusion(model, batch, {"window": 8, "stride": 4})
    assert out.extras["engine"] == "dense"


def test_activations_only_passed_through_element_wise_ops_are_not_kept():
    """On a ResNet, a convolution's output goes through batch norm and ReLU before any
    op reads around a patch: those unoccluded activations are not kept (memory), and
    the occluder still gives the dense path's scores."""
    model = picasso.from_torch(resnet18(), input_size=(160, 160))
    batch = np.random.default_rng(2).normal(size=(1, 3, 160, 160)).astype(np.float32)
    occluder = model.occluder(batch, 0.0)
    assert occluder.engine == "incremental"
    kinds = {node.target: node for node in occluder.shapes}
    conv, relu = kinds["layer1.0.conv1"], kinds["layer1.0.relu"]
    assert conv not in occluder.original and relu in occluder.original
    assert len(occluder.original) < 0.6 * len(occluder.shapes)
    boxes = [(0, 12, 0, 12), (60, 72, 40, 52), (148, 160, 148, 160)]
    dense = Occluder(model, batch, 0.0).scores(boxes, "logit")
    np.testing.assert_allclose(occluder.scores(boxes, "logit"), dense, atol=1e-4)
    assert occluder.engine == "incremental"
