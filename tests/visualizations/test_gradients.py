"""SmoothGrad equals captum's NoiseTunnel(Saliency) given the same noise; Integrated
Gradients equals captum's IntegratedGradients with the same steps and rule."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from captum.attr import IntegratedGradients as CaptumIG
from captum.attr import NoiseTunnel
from captum.attr import Saliency as CaptumSaliency
from PIL import Image

import picasso
from conftest import FlatNet, TinyConvNet, seeded
from picasso.core.errors import SettingsError
from picasso.visualizations.gradients import IntegratedGradients, SmoothGrad


@pytest.fixture
def setup(astronaut_small):
    module = seeded(TinyConvNet(), seed=11)
    model = picasso.from_torch(
        module, input_size=(20, 26), mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25)
    )
    batch = model.preprocess([Image.fromarray(astronaut_small)])
    return module, model, batch


@pytest.mark.parametrize(
    "rule",
    ["gausslegendre", "riemann_trapezoid", "riemann_left", "riemann_right", "riemann_middle"],
)
def test_integrated_gradients_matches_captum(setup, astronaut_small, rule):
    module, model, batch = setup
    exp = picasso.explain(
        model,
        astronaut_small,
        method="integrated-gradients",
        target=2,
        steps=24,
        rule=rule,
        baseline=-0.5,
        batch_size=7,
    )
    ref, delta = CaptumIG(module).attribute(
        torch.from_numpy(batch),
        baselines=-0.5,
        target=2,
        n_steps=24,
        method=rule,
        return_convergence_delta=True,
    )
    ref = ref[0].detach().numpy()
    assert np.abs(ref).max() > 1e-3
    np.testing.assert_allclose(exp.extras["channels"][0], ref, atol=1e-4, rtol=0)
    np.testing.assert_allclose(exp.attribution, ref.sum(axis=0), atol=1e-4, rtol=0)
    assert exp.extras["completeness_gap"][0] == pytest.approx(abs(float(delta[0])), abs=1e-4)


def test_integrated_gradients_completeness(setup, astronaut_small):
    _, model, _ = setup
    gaps = {}
    for steps in (4, 256):
        exp = picasso.explain(
            model, astronaut_small, method="integrated-gradients", top_k=2, steps=steps
        )
        for attribution, change, gap in zip(
            exp.attributions,
            exp.extras["score_change"],
            exp.extras["completeness_gap"],
            strict=True,
        ):
            assert abs(change) > 1e-3
            assert abs(float(attribution.sum()) - change) == pytest.approx(gap, abs=1e-5)
        gaps[steps] = max(exp.extras["completeness_gap"])
    assert gaps[256] < gaps[4] / 5  # the integral converges as the path is sampled finer


def test_smoothgrad_matches_noise_tunnel_with_the_same_noise(setup, astronaut_small, monkeypatch):
    module, model, batch = setup
    settings = SmoothGrad.parse_settings({"samples": 9, "noise": 0.2, "seed": 3, "batch_size": 4})
    exp = picasso.explain(
        model, astronaut_small, method="smoothgrad", target=1, **settings.model_dump()
    )
    sigma = 0.2 * float(batch.max() - batch.min())
    noise = np.random.default_rng(3).normal(0, sigma, size=(9, *batch.shape[1:]))
    monkeypatch.setattr(torch, "normal", lambda mean, std: torch.from_numpy(noise).float())
    ref = (
        NoiseTunnel(CaptumSaliency(module))
        .attribute(
            torch.from_numpy(batch),
            nt_type="smoothgrad",
            nt_samples=9,
            stdevs=sigma,
            target=1,
            abs=True,
        )[0]
        .detach()
        .numpy()
    )
    np.testing.assert_allclose(exp.extras["channels"][0], ref, rtol=1e-4, atol=1e-6)
    # The map averages per-sample saliency maps (max over channels of |gradient|).
    x = torch.from_numpy((batch + noise).astype(np.float32)).requires_grad_(True)
    module(x)[:, 1].sum().backward()
    expected = x.grad.abs().amax(dim=1).mean(dim=0).numpy()
    np.testing.assert_allclose(exp.attribution, expected, rtol=1e-4, atol=1e-6)


def test_smoothgrad_is_reproducible_and_reports_progress(setup, astronaut_small):
    _, model, _ = setup
    seen = []
    a = picasso.explain(
        model,
        astronaut_small,
        method="smoothgrad",
        samples=5,
        batch_size=2,
        progress=lambda d, t: seen.append((d, t)),
    )
    b = picasso.explain(model, astronaut_small, method="smoothgrad", samples=5, batch_size=2)
    c = picasso.explain(model, astronaut_small, method="smoothgrad", samples=5)
    np.testing.assert_array_equal(a.attributions, b.attributions)  # same seed, same result
    np.testing.assert_allclose(a.attributions, c.attributions, rtol=1e-5)  # any batch size
    assert seen[-1] == (5, 5)


@pytest.mark.parametrize(
    ("method", "settings", "fragment"),
    [
        (IntegratedGradients, {"steps": 1}, "steps"),
        (IntegratedGradients, {"rule": "simpson"}, "rule"),
        (SmoothGrad, {"noise": 0}, "noise"),
        (SmoothGrad, {"samples": 0}, "samples"),
    ],
)
def test_bad_settings(method, settings, fragment):
    with pytest.raises(SettingsError, match=fragment):
        method.parse_settings(settings)


def test_flat_models_work_too(astronaut_small):
    module = seeded(FlatNet((12, 14)), seed=2)
    model = picasso.from_torch(module, input_size=(12, 14))
    exp = picasso.explain(model, astronaut_small, method="integrated-gradients", steps=64)
    assert exp.extras["completeness_gap"][0] < 1e-2 * abs(exp.extras["score_change"][0])
