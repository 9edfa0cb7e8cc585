"""ONNX adapter: forward passes through onnxruntime, gradients through onnx2torch.

onnxruntime is the fast path for forward-only methods (occlusion, class
probabilities). Gradient methods convert the graph to PyTorch with onnx2torch on
first use; without it they are refused before any work starts, with the package to
install. Export PyTorch models with ``torch.onnx.export(..., dynamo=False)`` and a
dynamic batch axis; a graph with a fixed batch size is run in chunks of that size.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..core.errors import CapabilityError, MissingDependencyError, ModelLoadError, PicassoError
from ..core.model import GRADIENTS, Detection, Model, ModelInfo, ScoreKind
from ..core.threads import threads
from .card import ModelCard, hook_kwargs
from .protocols import BuildInfo
from .shapes import ChannelsMixin, probe_forward, resolve_input, run_fixed_batches

if TYPE_CHECKING:
    from .torch_adapter import TorchModel


def _onnxruntime() -> Any:
    try:
        import onnxruntime
    except ImportError:
        raise MissingDependencyError("onnxruntime", "onnx", "Loading an ONNX model") from None
    return onnxruntime


def gradients_available() -> bool:
    return all(importlib.util.find_spec(name) for name in ("onnx2torch", "torch", "onnx"))


def open_session(path: Path) -> Any:
    ort = _onnxruntime()
    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only; we raise our own messages
    count = threads()
    if count is not None:  # a server sharing its cores between jobs
        options.intra_op_num_threads = count
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:
        detail = " ".join(str(exc).split())[:300]
        raise ModelLoadError(f"{path}: not a loadable ONNX model ({detail})") from None


def describe_input(session: Any, path: Path) -> tuple[str, list[Any]]:
    """The image input's name and shape."""
    inputs = session.get_inputs()
    if len(inputs) != 1:
        names = ", ".join(i.name for i in inputs)
        raise ModelLoadError(f"{path}: expected one image input, the graph has {names}")
    return inputs[0].name, list(inputs[0].shape)


class OnnxModel(ChannelsMixin, Model):
    """An ONNX graph behind the framework-neutral surface."""

    def __init__(
        self,
        session: Any,
        path: Path,
        info: ModelInfo,
        input_name: str,
        layout: str,
        static_batch: int | None,
        **hooks: Any,
    ) -> None:
        super().__init__(info, **hooks)
        self.session = session
        self.path = path
        self.input_name = input_name
        self.layout = layout
        self.static_batch = static_batch
        self.per_image = False  # a detector whose graph takes one (C, H, W) image
        self._torch_model: TorchModel | None = None  # converted on the first gradient call

    def capability_problem(self, capability: str) -> str | None:
        problem = super().capability_problem(capability)
        if problem is None:
            problem = self.task_problem(capability)
        if problem is None and capability == GRADIENTS and not gradients_available():
            return (
                "gradients of ONNX models come from a conversion to PyTorch: "
                "pip install 'picasso-vision[onnx-torch]'"
            )
        return problem

    def forward(self, batch: np.ndarray) -> np.ndarray:
        return self.check_scores(self.raw_outputs(batch), len(batch))

    def _run(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self.session.run(None, {self.input_name: x})[0])

    def raw_outputs(self, batch: np.ndarray) -> np.ndarray:
        return run_fixed_batches(
            self._run, self.to_network(batch), self.static_batch, np.concatenate
        )

    # -- detection ---------------------------------------------------------------
    def detect(self, batch: np.ndarray) -> list[list[Detection]]:
        """Every image's detections, most confident first. The graph answers one image
        at a time with ``boxes`` (K, 4; x0 y0 x1 y1 in input pixels), ``labels`` (K)
        and ``scores`` (K), found by those names or else in that order, as torchvision's
        detectors export; its input is one image (C, H, W) or a batch of one."""
        x = self.to_network(batch)
        outputs = [o.name for o in self.session.get_outputs()]
        named = [
            next((i for i, n in enumerate(outputs) if key in n.lower()), None)
            for key in ("boxes", "labels", "scores")
        ]
        order = named if None not in named else [0, 1, 2]
        if len(outputs) < 3:
            raise PicassoError(
                f"model {self.info.name!r} is declared a detector but its graph has "
                f"{len(outputs)} output(s), not boxes, labels and scores"
            )
        answers = []
        for i in range(len(x)):
            single = x[i] if self.per_image else x[i : i + 1]
            found = self.session.run(None, {self.input_name: single})
            boxes, labels, scores = (np.asarray(found[k]) for k in order)
            if boxes.ndim == 3:  # a batch of one
                boxes, labels, scores = boxes[0], labels[0], scores[0]
            if boxes.ndim != 2 or boxes.shape[-1] != 4 or len(labels) != len(boxes):
                raise PicassoError(
                    f"model {self.info.name!r}: expected boxes (K, 4), labels (K) and "
                    f"scores (K), got shapes {boxes.shape}, {labels.shape}, {scores.shape}"
                )
            ranked = np.argsort(-scores.astype(np.float64), kind="stable")
            answers.append([Detection.of(boxes[j], labels[j], scores[j]) for j in ranked])
        return answers

    def for_detection(self, detections: Sequence[Detection]) -> Model:
        from ..core.detection import DetectionView

        return DetectionView(self, detections, "match")

    def gradients(
        self, batch: np.ndarray, targets: Sequence[int], score: ScoreKind = "logit"
    ) -> tuple[np.ndarray, np.ndarray]:
        problem = self.capability_problem(GRADIENTS)
        if problem is not None:
            raise CapabilityError(f"model {self.info.name!r}: {problem}")
        converted = self._torch_model
        if converted is None:
            converted = self._torch_model = self._convert()
        return converted.gradients(batch, targets, score)

    def _convert(self) -> TorchModel:
        """The same graph as a PyTorch module (onnx2torch), taking NCHW input."""
        import onnx
        import onnx2torch
        import torch

        from .torch_adapter import TorchModel

        try:
            module = onnx2torch.convert(fold_identity_initializers(onnx.load(str(self.path))))
        except Exception as exc:
            raise PicassoError(
                f"{self.path}: onnx2torch cannot convert this graph ({exc})"
            ) from None
        if self.layout == "NHWC":

            class ToChannelsLast(torch.nn.Module):
                def forward(self, x: Any) -> Any:
                    return x.permute(0, 2, 3, 1)

            module = torch.nn.Sequential(ToChannelsLast(), module)
        return TorchModel(module, self.info)


def fold_identity_initializers(graph_model: Any) -> Any:
    """Replace ``Identity`` nodes whose input is an initializer by a copy of it under the
    node's output name. The TorchScript exporter deduplicates equal initializers (e.g.
    the fused biases of freshly initialised batch norms) this way, and onnx2torch cannot
    resolve a weight that comes out of a node."""
    import copy

    graph = graph_model.graph
    initializers = {i.name: i for i in graph.initializer}
    kept = []
    for node in graph.node:
        if node.op_type == "Identity" and node.input and node.input[0] in initializers:
            duplicate = copy.deepcopy(initializers[node.input[0]])
            duplicate.name = node.output[0]
            graph.initializer.append(duplicate)
            initializers[duplicate.name] = duplicate
        else:
            kept.append(node)
    if len(kept) != len(graph.node):
        del graph.node[:]
        graph.node.extend(kept)
    return graph_model


def load_onnx(
    path: Path, card: ModelCard, overrides: dict[str, Any], build_info: BuildInfo
) -> OnnxModel:
    """Load an ONNX file; input size and layout come from the graph where the card is
    silent."""
    session = open_session(path)
    input_name, shape = describe_input(session, path)
    per_image = card.task == "detection" and len(shape) == 3
    if per_image:
        shape = [1, *shape]
    info, layout = resolve_input(
        path, card, shape, "onnx", {"format": "onnx", "engine": "onnxruntime"}, build_info
    )
    static_batch = shape[0] if isinstance(shape[0], int) else None
    model = OnnxModel(
        session, path, info, input_name, layout, static_batch, **hook_kwargs(card, overrides)
    )
    model.per_image = per_image
    probe_forward(model, path)
    return model


def detect(path: Path) -> bool:
    return path.suffix == ".onnx"


load = load_onnx
