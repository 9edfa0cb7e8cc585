"""Requests: what a face (Python, CLI, web form, REST API) asks Picasso to do, as one
typed, immutable object per kind of work, validated once.

A request names the work (method, settings, targets, options); the model and the image
it works on travel beside it. :func:`check` validates a request against a model and the
method registry (method known, settings parsed, capabilities present, targets possible)
and returns a :class:`Checked` request: the only thing the service, the sanity check and
the job runner accept. The job store persists requests as JSON with their ``kind``.

Adding an option to a request touches its class here, :func:`check` (if the option
needs checking against the model), and the faces that show it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Generic, Literal, TypeVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator, model_validator

from .core.errors import CapabilityError, TargetError
from .core.method import Method, MethodSettings
from .core.model import RANDOMIZE, DetectionModel, Model, SegmentationModel
from .hiding import Hide, Marks, boxes_mask
from .plugins import MethodRegistry

#: Explaining more classes than this in one request is refused (each target is a map).
MAX_TARGETS = 1000


def _target(value: Any) -> int | tuple[int, ...] | None:
    """A class index or a non-empty sequence of them, else a :class:`TargetError`."""
    if value is None:
        return None
    if np.isscalar(value) or isinstance(value, (str, bytes)):
        return _index(value)
    if not isinstance(value, Sequence) and not isinstance(value, np.ndarray):
        raise TargetError(f"target must be a class index or a list of them, got {value!r}")
    indices = tuple(_index(v) for v in value)
    if not indices:
        raise TargetError("target list is empty")
    if len(indices) > MAX_TARGETS:
        raise TargetError(f"at most {MAX_TARGETS} targets per request, got {len(indices)}")
    return indices


def _index(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TargetError(f"target must be a class index (int), got {value!r}")
    return int(value)


class _Request(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    method: str = Field(description="A method name (see /methods or `picasso methods`).")
    settings: dict[str, Any] = Field(
        default_factory=dict, description="The method's settings; missing ones take defaults."
    )


class ExplainRequest(_Request):
    """Explain one image with one method: maps for the chosen targets."""

    kind: Literal["explain"] = "explain"
    target: int | tuple[int, ...] | None = Field(
        None,
        description="Class index(es) to explain; default: the top-1 class. Detectors: "
        "the detection index(es), 0 being the most confident.",
    )
    top_k: int | None = Field(
        None,
        ge=1,
        le=MAX_TARGETS,
        description="Explain the k most probable classes (detectors: detections) instead.",
    )
    faithfulness: bool = Field(
        False, description="Also compute deletion/insertion curves and their areas."
    )
    hide: Hide | None = Field(
        None, description="Hide part of the image from the model first (explore page)."
    )
    region: Marks | None = Field(
        None,
        description="Segmentation models: the pixels whose class logits are summed into "
        "the explained score; default: the pixels the model assigns to the class.",
    )

    @field_validator("target", mode="before")
    @classmethod
    def _valid_target(cls, value: Any) -> int | tuple[int, ...] | None:
        return _target(value)

    @field_validator("top_k", mode="before")
    @classmethod
    def _valid_top_k(cls, value: Any) -> Any:
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise TargetError(f"top_k must be a whole number, got {value!r}")
        return value

    @model_validator(mode="after")
    def _one_way_to_choose(self) -> ExplainRequest:
        if self.target is not None and self.top_k is not None:
            raise TargetError("give either target or top_k, not both")
        return self

    @property
    def targets(self) -> list[int] | None:
        """The chosen class indices as a list, or None (top-1 / top-k)."""
        if self.target is None:
            return None
        return [self.target] if isinstance(self.target, int) else list(self.target)


class SanityRequest(_Request):
    """Check a method's map against cascading randomisation of the model (Adebayo et
    al. 2018): does the map change when the learned weights are destroyed?"""

    kind: Literal["sanity"] = "sanity"
    target: int | None = Field(None, description="The class whose map is checked; top-1.")
    stages: int = Field(5, ge=1, le=100, description="Cumulative randomisation steps.")
    threshold: float = Field(
        0.5, ge=-1, le=1, description="Passes if the last rank correlation is below this."
    )
    of: str | None = Field(None, description="The job whose map is checked (jobs only).")

    @field_validator("target", mode="before")
    @classmethod
    def _valid_target(cls, value: Any) -> int | None:
        return None if value is None else _index(value)


class AuditRequest(_Request):
    """Explain a whole dataset with one method and find where the evidence lies: per
    image the map, its share inside the object, and the strategy cluster of its class."""

    kind: Literal["audit"] = "audit"
    dataset: str = Field(
        "", description="What is audited: demo:tanks-dataset, a folder or a manifest."
    )
    batch_size: int = Field(32, ge=1, le=4096, description="Images explained per step.")
    engine: Literal["local", "ray"] = Field(
        "local", description="Where the work runs: here, or on a Ray cluster."
    )
    workers: int = Field(1, ge=1, le=1024, description="Ray actors (one model each).")
    gpus_per_worker: float = Field(0.0, ge=0, le=16, description="GPUs each Ray actor takes.")
    ray_address: str | None = Field(
        None, description="An existing Ray cluster; default: a local Ray started on demand."
    )


#: Any request, told apart by its ``kind`` (how the job store reads them back).
Request = Annotated[ExplainRequest | SanityRequest | AuditRequest, Field(discriminator="kind")]
REQUEST = TypeAdapter(Request)
AnyRequest = ExplainRequest | SanityRequest | AuditRequest

R = TypeVar("R", ExplainRequest, SanityRequest, AuditRequest)


@dataclass(frozen=True)
class Checked(Generic[R]):
    """A request validated against one model: its method class and parsed settings.
    ``request.settings`` holds the parsed settings with every default filled in, so
    equal work has equal requests (the job cache relies on it)."""

    request: R
    method: type[Method]
    settings: MethodSettings


def check(request: R, model: Model, registry: MethodRegistry) -> Checked[R]:
    """Validate ``request`` for ``model``: the method exists, its settings parse, the
    model has what the method needs, and the targets exist (where the model's class
    count is known). Raises a :class:`~picasso.core.errors.PicassoError` naming the
    problem; nothing is computed."""
    method = registry[request.method]
    settings = method.parse_settings(request.settings)
    method.check_capabilities(model)
    method.check_settings(model, settings)
    classes = len(model.info.labels)
    if isinstance(request, ExplainRequest):
        detection = model.info.task == "detection"
        if classes and not detection:  # class count known: refuse impossible targets now
            resolve_targets(np.zeros(classes), request.targets, request.top_k)
        height, width = model.info.input_size
        for marks in (request.hide, request.region):  # boxes on the input: check them now
            if marks is not None and marks.boxes and marks.space == "input":
                boxes_mask(marks.boxes, (width, height))
        segmentation = model.info.task == "segmentation"
        if request.region is not None and not segmentation:
            raise TargetError(
                f"a region is for segmentation models; {model.info.name!r} is a classifier"
            )
        if segmentation and not isinstance(model, SegmentationModel):
            raise CapabilityError(
                f"model {model.info.name!r} ({model.info.framework}) is declared a "
                "segmentation model, but this framework's adapter cannot segment (it "
                "needs segment() and for_regions(): see picasso.core.model.SegmentationModel)"
            )
        if detection and not isinstance(model, DetectionModel):
            raise CapabilityError(
                f"model {model.info.name!r} ({model.info.framework}) is declared a "
                "detector, but this framework's adapter cannot detect yet "
                "(PyTorch, Hugging Face and ONNX models can)"
            )
        if detection and request.hide is not None:
            raise CapabilityError("hiding pixels (explore) serves classifiers, not detectors")
    elif model.info.task != "classification":
        what = "audits" if isinstance(request, AuditRequest) else "sanity checks"
        raise CapabilityError(
            f"model {model.info.name!r} is a {model.info.task} model; {what} serve "
            "classifiers (explain its images one at a time)"
        )
    elif isinstance(request, AuditRequest):
        if not method.produces_map:
            raise CapabilityError(f"{method.name} produces no map to audit")
    else:
        if not method.produces_map:
            raise CapabilityError(f"{method.name} produces no map to check")
        if RANDOMIZE not in model.capabilities:
            reason = model.capability_problem(RANDOMIZE)
            raise CapabilityError(
                f"model {model.info.name!r} cannot be randomised, so it cannot be "
                f"sanity-checked" + (f" ({reason})" if reason else "")
            )
        if classes and request.target is not None:
            resolve_targets(np.zeros(classes), [request.target], None)
    normalised = request.model_copy(update={"settings": settings.model_dump(mode="json")})
    return Checked(normalised, method, settings)


def resolve_targets(
    probabilities: np.ndarray,
    target: int | Sequence[int] | None,
    top_k: int | None,
) -> list[int]:
    """Class indices to explain: top-1 by default, given indices, or the top-k."""
    classes = probabilities.shape[0]
    if target is not None and top_k is not None:
        raise TargetError("give either target or top_k, not both")
    if top_k is not None:
        if isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)):
            raise TargetError(f"top_k must be a whole number, got {top_k!r}")
        if not 1 <= int(top_k) <= classes:
            raise TargetError(f"top_k must be between 1 and {classes}, got {top_k}")
        return [int(i) for i in np.argsort(-probabilities, kind="stable")[: int(top_k)]]
    indices = _target(target)
    if indices is None:
        return [int(np.argmax(probabilities))]
    for index in (indices,) if isinstance(indices, int) else indices:
        if not 0 <= index < classes:
            raise TargetError(f"target class {index} does not exist (model has {classes} classes)")
    return [indices] if isinstance(indices, int) else list(indices)
