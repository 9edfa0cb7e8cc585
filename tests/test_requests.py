"""Requests: one typed, immutable object per kind of work, checked once."""

from __future__ import annotations

import json

import pydantic
import pytest

import picasso
from picasso.core.errors import (
    CapabilityError,
    SettingsError,
    TargetError,
    UnknownMethodError,
)
from picasso.jobs.store import ImageRef, JobStore
from picasso.plugins import discover
from picasso.requests import REQUEST, ExplainRequest, SanityRequest, check


@pytest.fixture(scope="module")
def registry():
    return discover(plugin_dirs=[])


@pytest.fixture(scope="module")
def digits():
    return picasso.load_model("demo:digits")


@pytest.mark.parametrize(
    ("fields", "fragment"),
    [
        ({"target": "cat"}, "class index"),
        ({"target": True}, "class index"),
        ({"target": []}, "empty"),
        ({"target": [1, 2.5]}, "class index"),
        ({"target": list(range(1001))}, "at most 1000"),
        ({"top_k": 1.5}, "whole number"),
        ({"target": 1, "top_k": 2}, "not both"),
    ],
)
def test_bad_targets_are_refused_when_the_request_is_made(fields, fragment):
    with pytest.raises(TargetError, match=fragment):
        ExplainRequest(method="saliency", **fields)


def test_requests_are_immutable_and_normalised():
    request = ExplainRequest(method="saliency", target=[3, 1])
    assert request.target == (3, 1) and request.targets == [3, 1]
    with pytest.raises(pydantic.ValidationError):
        request.method = "occlusion"  # frozen
    with pytest.raises(pydantic.ValidationError):
        ExplainRequest(method="saliency", windwo=3)  # no unknown fields


def test_check_parses_settings_once_and_fills_defaults(digits, registry):
    checked = check(ExplainRequest(method="occlusion", settings={"window": 12}), digits, registry)
    assert checked.method is registry["occlusion"]
    assert checked.settings.window == 12 and checked.settings.stride == 8  # default
    assert checked.request.settings["window"] == 12
    assert checked.request.settings["stride"] == 8  # equal work, equal requests
    again = check(
        ExplainRequest(method="occlusion", settings={"window": 12, "stride": 8}), digits, registry
    )
    assert again.request == checked.request


@pytest.mark.parametrize(
    ("request_", "error", "fragment"),
    [
        (ExplainRequest(method="magic"), UnknownMethodError, "unknown method 'magic'"),
        (ExplainRequest(method="occlusion", settings={"window": 0}), SettingsError, "window"),
        (ExplainRequest(method="saliency", target=10), TargetError, "does not exist"),
        (ExplainRequest(method="saliency", target=[0, 10]), TargetError, "class 10"),
        (ExplainRequest(method="saliency", top_k=11), TargetError, "between 1 and 10"),
        (SanityRequest(method="class-probabilities"), CapabilityError, "no map"),
    ],
)
def test_check_refuses_what_cannot_run(digits, registry, request_, error, fragment):
    with pytest.raises(error, match=fragment):
        check(request_, digits, registry)


def test_top_k_may_be_every_class(digits, registry):
    assert check(ExplainRequest(method="saliency", top_k=10), digits, registry)


def test_sanity_needs_a_model_that_can_be_randomised(registry):
    onnx = picasso.load_model("demo:digits-onnx")
    with pytest.raises(CapabilityError, match="cannot be randomised"):
        check(SanityRequest(method="rise"), onnx, registry)


def test_requests_round_trip_as_json_with_their_kind(tmp_path):
    explain = ExplainRequest(method="occlusion", settings={"window": 8}, top_k=2)
    sanity = SanityRequest(method="saliency", target=3, of="abc")
    for request in (explain, sanity):
        assert REQUEST.validate_json(request.model_dump_json()) == request
    store = JobStore(tmp_path)
    image = ImageRef("0" * 64, "photo")
    for request in (explain, sanity):
        job = store.insert(request.kind, "key-" + request.kind, "digits", request, image)
        assert store.get(job.id).request == request and store.get(job.id).image == image
    assert store.get("sanity").is_sanity and not store.get("explain").is_sanity


def test_rows_written_before_requests_had_a_kind_still_read(tmp_path):
    store = JobStore(tmp_path)
    old = {
        "image": "1" * 64,
        "image_name": "x",
        "settings": {},
        "target": None,
        "top_k": 2,
        "faithfulness": False,
    }
    old_sanity = {
        "kind": "sanity",
        "of": "j1",
        "image": "1" * 64,
        "image_name": "x",
        "settings": {},
        "target": 3,
        "top_k": None,
    }
    for job_id, body in (("j1", old), ("j2", old_sanity)):
        store._execute(
            "INSERT INTO jobs (id, cache_key, status, model, method, request, created) "
            "VALUES (?, 'k', 'done', 'digits', 'saliency', ?, 0)",
            (job_id, json.dumps(body)),
        )
    assert store.get("j1").request == ExplainRequest(method="saliency", top_k=2)
    assert store.get("j2").request == SanityRequest(method="saliency", target=3, of="j1")
