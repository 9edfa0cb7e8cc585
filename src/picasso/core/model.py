"""The framework-neutral model surface that every method works against.

An adapter (PyTorch, ONNX, Keras, TensorFlow, or a third party's) subclasses
:class:`Model`, implements :meth:`Model.forward` and, where it can, the capability
protocols (:class:`GradientModel`, :class:`LayerModel`, :class:`RandomizableModel`).
Batches are float32 numpy arrays in NCHW layout; outputs are numpy arrays, so no
framework type leaks past the adapter.
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol, TypeVar, runtime_checkable

import numpy as np
from PIL import Image

from .errors import CapabilityError, ModelLoadError
from .preprocessing import Preprocessing

#: logits, probabilities, or scores used as they are (a detection's score).
OutputKind = Literal["logits", "probabilities", "scores"]
ScoreKind = Literal["probability", "logit"]
#: What a model does: classify images, label every pixel, or find objects.
Task = Literal["classification", "segmentation", "detection"]

#: Capability names a method may require.
GRADIENTS = "gradients"
LAYERS = "layers"
#: The model can make copies of itself with re-initialised layers (sanity checks).
RANDOMIZE = "randomize"
#: The model runs with a layer's output replaced by given values (Ablation-CAM).
LAYER_EDITS = "layer-edits"
#: Gradients through ReLUs that pass only positive gradients (Guided Backprop).
GUIDED = "guided-gradients"
#: A transformer's attention weights (attention rollout).
ATTENTIONS = "attentions"
#: A detector's boxes for any batch (D-RISE).
DETECTIONS = "detections"


@dataclass(frozen=True)
class ModelInfo:
    """What a person (and a result file) needs to know about a loaded model."""

    name: str
    framework: str
    preprocessing: Preprocessing
    output: OutputKind = "logits"
    labels: tuple[str, ...] = ()
    path: str | None = None
    sha256: str | None = None
    description: str = ""
    extras: dict = field(default_factory=dict)
    task: Task = "classification"

    @property
    def input_size(self) -> tuple[int, int]:
        return self.preprocessing.input_size

    @property
    def layout(self) -> str:
        """The network's own input layout (methods always see NCHW)."""
        return self.extras.get("layout", "NCHW")

    @property
    def fingerprint(self) -> str:
        """Hash of the weights and everything that changes the model's answers."""
        payload = json.dumps(
            {
                "sha256": self.sha256,
                "preprocessing": asdict(self.preprocessing),
                "output": self.output,
                "labels": list(self.labels),
                # classifiers keep the fingerprint they had before tasks existed
                **({"task": self.task} if self.task != "classification" else {}),
            },
            sort_keys=True,
        )
        return hashlib.sha256(payload.encode()).hexdigest()

    def label(self, index: int) -> str:
        if 0 <= index < len(self.labels):
            return self.labels[index]
        return f"class {index}"

    def summary(self) -> dict:
        return {
            "name": self.name,
            "framework": self.framework,
            # File names, not server paths: results and API answers leave the machine.
            "file": _file_name(self.path),
            "sha256": self.sha256,
            "fingerprint": self.fingerprint,
            "input_size": list(self.input_size),
            "layout": self.layout,
            "output": self.output,
            "task": self.task,
            "labels": len(self.labels),
            # format, engine / backend, layout, card: how the result was computed
            **{k: v for k, v in self.extras.items() if k not in ("layout", "card")},
            "card": _file_name(self.extras.get("card")),
        }


def _file_name(path: str | None) -> str | None:
    return None if path is None else path.replace("\\", "/").rsplit("/", 1)[-1]


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


#: A card's Python hooks: PIL images -> NCHW batch, and raw outputs -> probabilities.
PreprocessHook = Callable[[list[Image.Image]], Any]
DecodeHook = Callable[[np.ndarray], Any]

Box = tuple[int, int, int, int]  # (y0, y1, x0, x1), end-exclusive, in input pixels


class Occluder:
    """Scores of copies of one image in which a box is replaced by a fill.

    This default builds each occluded copy and runs the whole network; adapters may
    return a faster occluder that computes the same scores another way (the PyTorch
    adapter recomputes only what a box changes). ``engine`` names the way used.
    """

    engine = "dense"

    def __init__(self, model: Model, image: np.ndarray, fill: np.ndarray | float) -> None:
        self.model = model
        self.image = image  # (1, C, H, W)
        self.fill = fill  # a number, or an array shaped like image[0]
        self._buffer: np.ndarray | None = None

    def scores(self, boxes: Sequence[Box], kind: ScoreKind) -> np.ndarray:
        """(len(boxes), classes) scores; one reusable input buffer, never more."""
        if self._buffer is None or len(self._buffer) < len(boxes):
            self._buffer = np.empty((len(boxes), *self.image.shape[1:]), np.float32)
        batch = self._buffer[: len(boxes)]
        batch[:] = self.image[0]
        for item, (y0, y1, x0, x1) in zip(batch, boxes, strict=True):
            region = (slice(None), slice(y0, y1), slice(x0, x1))
            item[region] = self.fill[region] if isinstance(self.fill, np.ndarray) else self.fill
        return self.model.scores(batch, kind)


class Model(ABC):
    """A loaded classifier behind a framework-neutral surface.

    Subclasses implement :meth:`forward` (raw outputs as the model card declares:
    logits or probabilities). Capabilities follow from what a subclass implements:
    ``gradients`` (:class:`GradientModel`), ``layers`` (:class:`LayerModel`) and
    ``randomize`` (:class:`RandomizableModel`). An adapter whose instances may lack an
    implemented capability (a decode hook, a missing package) says why in
    :meth:`capability_problem`.
    """

    def __init__(
        self,
        info: ModelInfo,
        preprocess_hook: PreprocessHook | None = None,
        decode_hook: DecodeHook | None = None,
    ) -> None:
        self.info = info
        self._preprocess_hook = preprocess_hook
        self._decode_hook = decode_hook

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.info.name!r} ({self.info.framework})>"

    # -- input -----------------------------------------------------------------
    def fit_image(self, image: Image.Image) -> Image.Image:
        """The image resized/cropped to the input size: the map aligns with it."""
        return self.info.preprocessing.fit(image)

    def preprocess(self, images: Sequence[Image.Image]) -> np.ndarray:
        """PIL images to a float32 NCHW batch (a card's Python hook may override)."""
        if self._preprocess_hook is not None:
            batch = np.asarray(self._preprocess_hook(list(images)), dtype=np.float32)
            expected = (len(images), self.info.preprocessing.channels, *self.info.input_size)
            if batch.shape != expected:
                raise ModelLoadError(
                    f"{self.info.name}: preprocess hook returned shape {batch.shape}, "
                    f"expected {expected}"
                )
            return batch
        return self.info.preprocessing(images)

    # -- output ----------------------------------------------------------------
    @abstractmethod
    def forward(self, batch: np.ndarray) -> np.ndarray:
        """Raw outputs (N, classes) for an NCHW float32 batch."""

    def probabilities(self, batch: np.ndarray) -> np.ndarray:
        return self.to_probabilities(self.forward(batch))

    def logits(self, batch: np.ndarray) -> np.ndarray:
        return self.to_logits(self.forward(batch))

    def scores(self, batch: np.ndarray, kind: ScoreKind) -> np.ndarray:
        raw = self.forward(batch)
        return self.to_probabilities(raw) if kind == "probability" else self.to_logits(raw)

    def to_probabilities(self, raw: np.ndarray) -> np.ndarray:
        if self._decode_hook is not None:
            return np.asarray(self._decode_hook(raw), dtype=np.float32)
        if self.info.output in ("probabilities", "scores"):
            return raw.astype(np.float32, copy=False)
        return softmax(raw.astype(np.float64)).astype(np.float32)

    def to_logits(self, raw: np.ndarray) -> np.ndarray:
        """Logits; for a probability-output model, log-probabilities (logits up to a
        per-image constant, which leaves gradients of differences unchanged); scores
        (a detection's) as they are."""
        if self.info.output == "scores" and self._decode_hook is None:
            return raw.astype(np.float32, copy=False)
        if self.info.output == "probabilities" or self._decode_hook is not None:
            return np.log(np.clip(self.to_probabilities(raw), 1e-30, None))
        return raw.astype(np.float32, copy=False)

    def occluder(self, image: np.ndarray, fill: np.ndarray | float) -> Occluder:
        """An :class:`Occluder` for ``image`` (1, C, H, W) and ``fill``."""
        return Occluder(self, image, fill)

    def prepare(self) -> None:
        """Do once, now, the lazy set-up that is not safe while other threads use the
        model (a server calls it for every model before serving). Default: nothing."""
        return None

    # -- capabilities ------------------------------------------------------------
    @property
    def capabilities(self) -> frozenset[str]:
        """What this model can do beyond forward passes (see :data:`CAPABILITIES`)."""
        return frozenset(c for c in CAPABILITIES if self.capability_problem(c) is None)

    def capability_problem(self, capability: str) -> str | None:
        """Why this model lacks ``capability``, in words a user can act on (e.g. which
        extra to install), or None when it has it. Adapters extend this where an
        instance lacks what its class implements."""
        protocol = CAPABILITIES.get(capability)
        if protocol is None:
            return f"{capability!r} is not a known capability"
        if not isinstance(self, protocol):
            return f"{self.info.framework} models do not provide {capability}"
        if self._decode_hook is not None:
            return "the model decodes its outputs with a Python hook, outside the framework"
        if capability == DETECTIONS and self.info.task != "detection":
            return f"the model is a {self.info.task} model, not a detector"
        return None


@runtime_checkable
class GradientModel(Protocol):
    """The ``gradients`` capability: d score / d input."""

    def gradients(
        self, batch: np.ndarray, targets: Sequence[int], score: ScoreKind = "logit"
    ) -> tuple[np.ndarray, np.ndarray]:
        """Scores of ``targets[i]`` for ``batch[i]`` and their gradients w.r.t. the
        batch (same shape as ``batch``)."""
        ...


@runtime_checkable
class LayerModel(Protocol):
    """The ``layers`` capability: activations and gradients at a named layer."""

    def layer_names(self) -> list[str]:
        """Names of the layers :meth:`layer_gradients` accepts, input to output."""
        ...

    def layer_shapes(self, batch: np.ndarray) -> dict[str, tuple[int, ...]]:
        """Output shape of every named layer for ``batch``, in execution order (spatial
        outputs as (N, C, h, w))."""
        ...

    def layer_gradients(
        self, batch: np.ndarray, layer: str, targets: Sequence[int], score: ScoreKind = "logit"
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Scores of ``targets[i]`` for ``batch[i]``, the activations of ``layer`` and
        the scores' gradients w.r.t. them. Spatial activations are (N, C, h, w)
        whatever the network's own layout; others keep their shape (e.g. tokens)."""
        ...


@runtime_checkable
class RandomizableModel(Protocol):
    """The ``randomize`` capability: copies with re-initialised layers (sanity checks)."""

    def parameter_layers(self) -> list[str]:
        """Layers that hold parameters, from input to output."""
        ...

    def randomized(self, layers: Sequence[str], seed: int = 0) -> Model:
        """A copy whose ``layers`` have freshly initialised parameters."""
        ...


@runtime_checkable
class LayerEditModel(Protocol):
    """The ``layer-edits`` capability: outputs when a layer's output is replaced."""

    def scores_with_layer(
        self, batch: np.ndarray, layer: str, activations: np.ndarray, score: ScoreKind = "logit"
    ) -> np.ndarray:
        """Scores (N, classes) of ``batch`` when ``layer`` outputs ``activations`` (N,
        ...) instead of what it computes, in the layout :meth:`LayerModel.layer_gradients`
        gives them."""
        ...


@runtime_checkable
class GuidedGradientModel(Protocol):
    """The ``guided-gradients`` capability: input gradients with every ReLU passing back
    only positive gradients where its input was positive (Springenberg et al. 2015)."""

    def guided_gradients(
        self, batch: np.ndarray, targets: Sequence[int], score: ScoreKind = "logit"
    ) -> np.ndarray:
        """Guided gradients of ``targets[i]``'s score for ``batch[i]`` (batch's shape)."""
        ...


@runtime_checkable
class AttentionModel(Protocol):
    """The ``attentions`` capability: a vision transformer's attention weights."""

    def attentions(self, batch: np.ndarray) -> list[np.ndarray]:
        """One (N, heads, tokens, tokens) array per attention layer, input to output."""
        ...


@runtime_checkable
class SegmentationModel(Protocol):
    """A model that labels every pixel (task ``segmentation``)."""

    def segment(self, batch: np.ndarray) -> np.ndarray:
        """Class logits (N, classes, H, W) at the model's input size."""
        ...

    def for_regions(self, masks: np.ndarray) -> Model:
        """A classifier view: its score for class k is the sum of class k's logits over
        ``masks[k]`` (classes, H, W), the score pytorch-grad-cam's
        ``SemanticSegmentationTarget`` explains. Every method runs on it unchanged."""
        ...


@dataclass(frozen=True)
class Detection:
    """One object a detector found: its box (x0, y0, x1, y1) in the model's input
    pixels, its class and its score."""

    box: tuple[float, float, float, float]
    label: int
    score: float

    @classmethod
    def of(cls, box: Sequence[Any], label: Any, score: Any) -> Detection:
        """From a framework's numbers (numpy or tensor elements)."""
        x0, y0, x1, y1 = (float(v) for v in box)
        return cls((x0, y0, x1, y1), int(label), float(score))


@runtime_checkable
class DetectionModel(Protocol):
    """A model that finds objects (task ``detection``)."""

    def detect(self, batch: np.ndarray) -> list[list[Detection]]:
        """Every image's detections, most confident first."""
        ...

    def for_detection(self, detections: Sequence[Detection]) -> Model:
        """A classifier view: its score j is that of ``detections[j]`` in the output of
        the image it is given (pytorch-grad-cam's ``FasterRCNNBoxScoreTarget``: the
        output box that overlaps ``detections[j]``'s box most, when their IoU exceeds
        0.5 and its class is j's, scores IoU + its score; else 0). Every method runs on
        it unchanged."""
        ...


@runtime_checkable
class GradientsWithOutputs(Protocol):
    """Optional, for batch paths: gradients together with the raw outputs of the same
    forward pass, a target left None being that pass's top class (no separate pass is
    needed to predict)."""

    def gradients_and_outputs(
        self, batch: np.ndarray, targets: Sequence[int | None], score: ScoreKind = "logit"
    ) -> tuple[np.ndarray, list[int], np.ndarray]:
        """Raw outputs (N, K), the targets used and the gradients w.r.t. the batch."""
        ...


@runtime_checkable
class LayerGradientsWithOutputs(Protocol):
    """Optional, for batch paths: :meth:`LayerModel.layer_gradients` together with the
    raw outputs of the same forward pass (see :class:`GradientsWithOutputs`)."""

    def layer_gradients_and_outputs(
        self,
        batch: np.ndarray,
        layer: str,
        targets: Sequence[int | None],
        score: ScoreKind = "logit",
    ) -> tuple[np.ndarray, list[int], np.ndarray, np.ndarray]:
        """Raw outputs (N, K), the targets used, the activations and their gradients."""
        ...


def resolve_top(targets: Sequence[int | None], probabilities: np.ndarray) -> list[int]:
    """Targets with each None replaced by that row's most probable class."""
    return [
        int(t) if t is not None else int(np.argmax(p))
        for t, p in zip(targets, probabilities, strict=True)
    ]


#: Capability names and the protocol a model implements to have each.
CAPABILITIES: dict[str, type] = {
    GRADIENTS: GradientModel,
    LAYERS: LayerModel,
    RANDOMIZE: RandomizableModel,
    LAYER_EDITS: LayerEditModel,
    GUIDED: GuidedGradientModel,
    ATTENTIONS: AttentionModel,
    DETECTIONS: DetectionModel,
}

Capable = TypeVar("Capable")


def require(model: Model, protocol: type[Capable]) -> Capable:
    """``model`` as the capability protocol a method needs, or a :class:`CapabilityError`
    naming what is missing and why."""
    for name, candidate in CAPABILITIES.items():
        if candidate is protocol:
            problem = model.capability_problem(name)
            if problem is None and isinstance(model, protocol):
                return model
            raise CapabilityError(
                f"model {model.info.name!r} ({model.info.framework}) does not provide "
                f"{name}: {problem or 'not implemented'}"
            )
    raise TypeError(f"{protocol!r} is not a capability protocol")
