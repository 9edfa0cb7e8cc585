"""The audit on a local Ray: the same table and maps as the local engine."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import ray

import picasso
from picasso.demo.tanks import make_dataset


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


def test_ray_equals_local(local_ray, tmp_path):
    scenes = make_dataset(16, seed=11, bias=0.5)
    images = [s.image for s in scenes]
    labels = [s.label for s in scenes]
    boxes = [s.box for s in scenes]
    common = {"method": "grad-cam", "labels": labels, "boxes": boxes, "batch_size": 5}
    local = picasso.audit("demo:tanks-fair", images, out=tmp_path / "local", **common)
    on_ray = picasso.audit(
        "demo:tanks-fair", images, out=tmp_path / "ray", engine="ray", workers=2, **common
    )
    np.testing.assert_allclose(np.asarray(on_ray.maps), np.asarray(local.maps), atol=1e-5)
    columns = [c for c in local.table.columns if c not in ("probability", "target_probability")]
    pd.testing.assert_frame_equal(on_ray.table[columns], local.table[columns])
    np.testing.assert_allclose(on_ray.table["probability"], local.table["probability"], atol=1e-6)


def test_a_live_model_travels_to_the_actors(local_ray, tmp_path):
    """A model object (no file to load) is sent to the actors as it is."""
    model = picasso.load_model("demo:digits")
    images = [np.full((8, 8, 3), v, np.uint8) for v in (0, 128, 255)]
    audit = picasso.audit(model, images, method="saliency", engine="ray", out=tmp_path)
    local = picasso.audit(model, images, method="saliency", out=tmp_path / "local")
    np.testing.assert_allclose(np.asarray(audit.maps), np.asarray(local.maps), atol=1e-6)
