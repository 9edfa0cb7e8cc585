"""PyTorch adapter: ``nn.Module``, TorchScript ``.pt``, ``torch.export`` ``.pt2`` and
safetensors weights with an architecture factory.

torch is imported here only, and only when a PyTorch model is loaded.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import MissingDependencyError, ModelLoadError, PicassoError
from ..core.model import (
    ATTENTIONS,
    GUIDED,
    LAYER_EDITS,
    LAYERS,
    RANDOMIZE,
    Detection,
    Model,
    ModelInfo,
    Occluder,
    ScoreKind,
)
from ..core.threads import threads
from .card import ModelCard, hook_kwargs, resolve_callable
from .protocols import BuildInfo
from .shapes import check_scores, first_output, run_fixed_batches

log = logging.getLogger(__name__)

SUFFIXES = {
    ".pt": "torchscript",
    ".pth": "torchscript",
    ".pt2": "export",
    ".safetensors": "safetensors",
}


def _torch() -> Any:
    try:
        import torch
    except ImportError:
        raise MissingDependencyError("torch", "torch", "Loading a PyTorch model") from None
    count = threads()
    if count is not None and torch.get_num_threads() != count:
        torch.set_num_threads(count)  # set before torch was imported
    return torch


class TorchModel(Model):
    """A PyTorch module behind the framework-neutral surface.

    Inputs run in channels-last memory format where the module accepts it (about
    twice as fast for convolutions on CPUs); the first call falls back to the
    default layout if the module rejects it. Values are the same either way.
    """

    def __init__(self, module: Any, info: ModelInfo, **hooks: Any) -> None:
        super().__init__(info, **hooks)
        torch = _torch()
        self._torch = torch
        self.module = module
        with contextlib.suppress(NotImplementedError):  # torch.export modules: no eval()
            module.eval()
        # Inputs go where the weights are (a module moved to a GPU runs there).
        first = next(iter(module.parameters()), None) if hasattr(module, "parameters") else None
        self.device = first.device if first is not None else torch.device("cpu")
        self._channels_last: bool | None = None  # decided on the first call
        self._static_batch = _static_batch_size(module)
        # fx graph for incremental occlusion: None until traced, False if untraceable
        self._traced: Any = None
        self._trace_lock = threading.Lock()
        # Segmentation models explained as classifiers: (N, K, h, w) -> (N, K)
        self._head: Callable[[Any], Any] | None = None

    def capability_problem(self, capability: str) -> str | None:
        problem = super().capability_problem(capability)
        if problem is not None or capability not in (
            LAYERS,
            RANDOMIZE,
            LAYER_EDITS,
            GUIDED,
            ATTENTIONS,
        ):
            return problem
        if capability == ATTENTIONS and not self._returns_attentions():
            return (
                "only Hugging Face transformers return their attention weights "
                "(load the model's folder with picasso.load_model)"
            )
        if not isinstance(self.module, self._torch.nn.Module):
            return "the model is not an nn.Module, so it has no named layers"
        if isinstance(self.module, self._torch.jit.ScriptModule):
            return (
                "TorchScript modules take no Python hooks; save the model with "
                "torch.export (.pt2) or as safetensors with its architecture for "
                "layer methods and sanity checks"
            )
        if self._static_batch:
            return "the program was exported with a fixed batch size"
        if not any(True for _ in self.module.named_children()):
            return "the module has no named sub-modules"
        if capability == GUIDED and not self._relus():
            return "the network has no nn.ReLU modules to guide (functional ReLUs take no hooks)"
        return None

    def _returns_attentions(self) -> bool:
        config = getattr(self.module, "config", None)
        return config is not None and hasattr(config, "output_attentions")

    def attentions(self, batch: np.ndarray) -> list[np.ndarray]:
        """The attention weights of every layer (Hugging Face models, loaded with the
        eager attention that computes them)."""
        torch = self._torch
        with torch.inference_mode():
            out = self.module(self._prepare(batch), output_attentions=True)
        weights = getattr(out, "attentions", None)
        if not weights:
            raise PicassoError(f"model {self.info.name!r} returned no attention weights")
        return [w.float().cpu().numpy() for w in weights]

    def _relus(self) -> list[Any]:
        return [m for m in self.module.modules() if isinstance(m, self._torch.nn.ReLU)]

    # -- helpers -----------------------------------------------------------------
    def _prepare(self, batch: np.ndarray) -> Any:
        torch = self._torch
        x = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)).to(self.device)
        return x

    def _call(self, x: Any) -> Any:
        if self.info.task == "detection":  # a list of answers, one per image
            out = self.module(x)
            return out if self._head is None else self._head(out)
        # torch.export programs traced with a fixed batch run in chunks of it.
        out = run_fixed_batches(self._call_layout, x, self._static_batch, self._torch.cat)
        return out if self._head is None else self._head(out)

    # -- detection ---------------------------------------------------------------
    def _found(self, out: Any) -> list[tuple[Any, Any, Any]]:
        """Boxes (x0, y0, x1, y1 in input pixels), classes and scores per image, from
        torchvision's list of dicts or a Hugging Face ``...ForObjectDetection`` output
        (class probabilities without the no-object class; centre-size boxes scaled to
        the input, as its post-processing does)."""
        torch = self._torch
        if isinstance(out, (list, tuple)) and out and isinstance(out[0], dict):
            return [(o["boxes"], o["labels"], o["scores"]) for o in out]
        if hasattr(out, "pred_boxes") and hasattr(out, "logits"):
            probs = torch.softmax(out.logits, dim=-1)[..., :-1]
            scores, labels = probs.max(dim=-1)
            cx, cy, w, h = out.pred_boxes.unbind(-1)
            height, width = self.info.input_size
            boxes = torch.stack(
                [
                    (cx - w / 2) * width,
                    (cy - h / 2) * height,
                    (cx + w / 2) * width,
                    (cy + h / 2) * height,
                ],
                dim=-1,
            )
            return [(boxes[i], labels[i], scores[i]) for i in range(len(boxes))]
        raise PicassoError(
            f"model {self.info.name!r} is declared a detector but answers with "
            f"{type(out).__name__}, not torchvision's boxes/labels/scores dicts or a "
            "Hugging Face object-detection output"
        )

    def detect(self, batch: np.ndarray) -> list[list[Detection]]:
        """Every image's detections, most confident first."""
        torch = self._torch
        with torch.inference_mode():
            found = self._found(self.module(self._prepare(batch)))
        answers = []
        for boxes, labels, scores in found:
            order = torch.argsort(scores.float(), descending=True, stable=True).tolist()
            b, c, v = boxes.float().cpu().numpy(), labels.cpu().numpy(), scores.float().cpu()
            answers.append([Detection.of(b[i], c[i], v[i]) for i in order])
        return answers

    def for_detection(self, detections: Sequence[Detection]) -> TorchModel:
        """This model with a head scoring each listed detection as pytorch-grad-cam's
        ``FasterRCNNBoxScoreTarget`` does (see :mod:`picasso.core.detection`): a
        classifier to the methods, gradients and layers included."""
        from ..core.detection import MATCH_IOU

        torch = self._torch
        listed = tuple(detections)
        targets = torch.tensor([d.box for d in listed], dtype=torch.float32).reshape(-1, 4)

        classes = torch.tensor([d.label for d in listed], dtype=torch.long)

        def head(out: Any) -> Any:
            rows = []
            for boxes, labels, scores in self._found(out):
                if not len(boxes):  # nothing found: every score 0, still in the graph
                    rows.append(scores.sum() * 0 + torch.zeros(len(listed), device=boxes.device))
                    continue
                ious = _box_iou(torch, targets.to(boxes.device, boxes.dtype), boxes)
                best_iou, best = ious.max(dim=1)
                matched = (best_iou > MATCH_IOU) & (labels[best] == classes.to(labels.device))
                value = best_iou + scores[best]
                rows.append(torch.where(matched, value, value * 0))
            return torch.stack(rows)

        view = self._scoring_view(head)
        view.detector = self  # type: ignore[attr-defined]
        view.detections = listed  # type: ignore[attr-defined]
        return view

    def _scoring_view(self, head: Callable[[Any], Any]) -> TorchModel:
        """A copy of this model whose outputs go through ``head`` (raw output ->
        (N, scores)); its scores are used as they are, whichever kind a method asks for
        (a softmax over region sums or detection scores means nothing). Incremental
        occlusion traces the bare network, so the view takes the dense path."""
        import copy
        import dataclasses

        view = copy.copy(self)
        view.info = dataclasses.replace(self.info, output="scores")
        view._head = head
        view._trace_lock = threading.Lock()
        view._traced = False
        return view

    # -- segmentation ------------------------------------------------------------
    def _dense(self, out: Any) -> Any:
        """Per-pixel class logits at the input size (Hugging Face heads answer at a
        quarter of it: resized bilinearly, as their post-processing does)."""
        if out.dim() != 4:
            raise PicassoError(
                f"model {self.info.name!r} is declared a segmentation model but outputs "
                f"shape {tuple(out.shape)}, not (batch, classes, height, width)"
            )
        size = tuple(self.info.input_size)
        if tuple(out.shape[-2:]) != size:
            out = self._torch.nn.functional.interpolate(
                out, size=size, mode="bilinear", align_corners=False
            )
        return out

    def segment(self, batch: np.ndarray) -> np.ndarray:
        """Class logits (N, classes, H, W) at the input size."""
        torch = self._torch
        with torch.inference_mode():
            x = self._prepare(batch)
            out = run_fixed_batches(self._call_layout, x, self._static_batch, torch.cat)
            return self._dense(out).float().cpu().numpy()

    def for_regions(self, masks: np.ndarray) -> TorchModel:
        """This model with a head summing each class's logits over its region: a
        classifier to the methods, gradients and layers included."""
        torch = self._torch
        weights = torch.from_numpy(np.ascontiguousarray(masks, dtype=np.float32)).to(self.device)

        def head(out: Any) -> Any:
            return (self._dense(out) * weights.to(out.dtype)).sum(dim=(-2, -1))

        return self._scoring_view(head)

    @property
    def memory_format(self) -> Any:
        """The memory format inputs are given in: channels-last where the module
        accepts it (decided on the first call), else the default."""
        torch = self._torch
        return torch.channels_last if self._channels_last is not False else torch.contiguous_format

    def _call_layout(self, x: Any) -> Any:
        torch = self._torch
        if self._channels_last is not False and x.dim() == 4:
            try:
                out = first_output(self.module(x.contiguous(memory_format=torch.channels_last)))
                self._channels_last = True
                return out
            except RuntimeError as exc:
                if self._channels_last:
                    raise
                log.info(
                    "%s: channels-last input rejected (%s); using default layout",
                    self.info.name,
                    exc,
                )
                self._channels_last = False
        return first_output(self.module(x))

    def check_output(self, out: Any, batch_size: int) -> None:
        """Raise a clear error unless ``out`` is (batch, classes)."""
        check_scores(self.info.name, tuple(out.shape), batch_size)

    # -- surface -----------------------------------------------------------------
    def forward(self, batch: np.ndarray) -> np.ndarray:
        torch = self._torch
        with torch.inference_mode():
            out = self._call(self._prepare(batch))
        self.check_output(out, batch.shape[0])
        return out.float().cpu().numpy()

    def __getstate__(self) -> dict[str, Any]:
        """For pickling (a model sent to Ray actors): no lock, no traced graph."""
        state = self.__dict__.copy()
        state["_trace_lock"] = None
        state["_traced"] = None
        state["_torch"] = None  # a module: imported again where the copy lands
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._trace_lock = threading.Lock()
        self._torch = _torch()

    def prepare(self) -> None:
        """Trace the network for incremental occlusion now. torch.fx patches
        ``nn.Module.__call__`` process-wide while it traces, so a server traces every
        model before it serves requests (never while other threads run forward passes);
        the lock keeps two threads from tracing at once."""
        with self._trace_lock:
            if self._traced is None:
                from .torch_incremental import trace

                # segmentation and detection are explained through views that take
                # the dense path: tracing their networks would be wasted
                usable = (
                    self.info.task == "classification"
                    and not self._static_batch
                    and self.device.type == "cpu"
                    and isinstance(self.module, self._torch.nn.Module)
                )
                self._traced = (trace(self.module) if usable else None) or False

    def occluder(self, image: np.ndarray, fill: np.ndarray | float) -> Occluder:
        """The incremental occluder where the network can be traced (on the CPU), else
        the dense one: for a model on another device (a GPU), one that builds each
        occluded batch there."""
        self.prepare()
        if self._traced is False:
            if self.device.type != "cpu" and self._decode_hook is None:
                return DeviceOccluder(self, image, fill)
            return Occluder(self, image, fill)
        from .torch_incremental import IncrementalOccluder

        return IncrementalOccluder(self, image, fill, self._traced)

    def gradients(
        self, batch: np.ndarray, targets: Sequence[int], score: ScoreKind = "logit"
    ) -> tuple[np.ndarray, np.ndarray]:
        if len(targets) != batch.shape[0]:
            raise ValueError("gradients: one target per batch item")
        _, _, selected, _, grad = self._backward(batch, list(targets), score)
        return selected, grad

    def gradients_and_outputs(
        self, batch: np.ndarray, targets: Sequence[int | None], score: ScoreKind = "logit"
    ) -> tuple[np.ndarray, list[int], np.ndarray]:
        """Raw outputs of the same forward pass, the targets (None: that pass's top
        class) and the gradients of their scores w.r.t. the batch."""
        raw, chosen, _, _, grad = self._backward(batch, list(targets), score)
        return raw, chosen, grad

    def layer_gradients_and_outputs(
        self,
        batch: np.ndarray,
        layer: str,
        targets: Sequence[int | None],
        score: ScoreKind = "logit",
    ) -> tuple[np.ndarray, list[int], np.ndarray, np.ndarray]:
        """As :meth:`layer_gradients`, with the raw outputs of the same forward pass
        and the targets (None: that pass's top class) in front."""
        raw, chosen, _, activation, grad = self._backward(batch, list(targets), score, layer)
        assert activation is not None  # a layer was named
        return raw, chosen, activation, grad

    def _backward(
        self,
        batch: np.ndarray,
        targets: list[int | None],
        score: ScoreKind,
        layer: str | None = None,
    ) -> tuple[np.ndarray, list[int], np.ndarray, np.ndarray | None, np.ndarray]:
        """One forward and one backward pass: raw outputs, targets, their scores, the
        layer's activations (when a layer is named) and the gradients w.r.t. the layer
        or, without one, the input."""
        torch = self._torch
        captured: list[Any] = []
        handle = None
        if layer is not None:
            module = self._layer(layer)
            owner = threading.get_ident()

            def keep(_module: Any, _inputs: Any, output: Any) -> None:
                # The hook is on a module other threads run too: keep only our call's.
                if threading.get_ident() == owner:
                    captured.append(output[0] if isinstance(output, (tuple, list)) else output)

            handle = module.register_forward_hook(keep)
        try:
            x = self._prepare(batch).requires_grad_(True)
            with torch.enable_grad():
                raw = self._call(x)
                self.check_output(raw, batch.shape[0])
                values = self._score_tensor(raw, score)
                top = values.detach().argmax(dim=1).tolist()
                chosen = [int(t) if t is not None else int(top[i]) for i, t in enumerate(targets)]
                idx = torch.as_tensor(chosen, device=values.device).long()
                selected = values.gather(1, idx[:, None])[:, 0]
                wrt = captured[-1] if layer is not None else x
                (grad,) = torch.autograd.grad(selected.sum(), wrt)
        finally:
            if handle is not None:
                handle.remove()
        activation = captured[-1].detach().float().cpu().numpy() if layer is not None else None
        return (
            raw.detach().float().cpu().numpy(),
            chosen,
            selected.detach().float().cpu().numpy(),
            activation,
            grad.float().cpu().numpy(),
        )

    def layer_names(self) -> list[str]:
        return [name for name, _ in self.module.named_modules() if name]

    def parameter_layers(self) -> list[str]:
        return [
            name
            for name, module in self.module.named_modules()
            if name and any(True for _ in module.parameters(recurse=False))
        ]

    def randomized(self, layers: Sequence[str], seed: int = 0) -> TorchModel:
        import copy

        torch = self._torch
        module = copy.deepcopy(self.module)
        modules = dict(module.named_modules())
        generator = torch.Generator().manual_seed(seed)
        with torch.no_grad(), torch.random.fork_rng():  # leave the global RNG alone
            for name in layers:
                layer = modules[name]
                if hasattr(layer, "reset_parameters"):
                    # The layer's own initialisation, as a freshly built network has it
                    # (Adebayo et al. re-initialise this way).
                    torch.manual_seed(int(torch.randint(0, 2**31, (1,), generator=generator)))
                    layer.reset_parameters()
                    continue
                for param in layer.parameters(recurse=False):
                    param.normal_(0.0, 0.02, generator=generator)
        randomized = TorchModel(
            module, self.info, preprocess_hook=self._preprocess_hook, decode_hook=self._decode_hook
        )
        randomized._traced = False  # no fx tracing while a server runs: dense path, always
        return randomized

    def layer_shapes(self, batch: np.ndarray) -> dict[str, tuple[int, ...]]:
        shapes: dict[str, tuple[int, ...]] = {}
        handles = []
        owner = threading.get_ident()
        for name, module in self.module.named_modules():
            if not name:
                continue

            def keep(_module: Any, _inputs: Any, output: Any, _name: str = name) -> None:
                if threading.get_ident() != owner:  # another thread's forward pass
                    return
                out = output[0] if isinstance(output, (tuple, list)) else output
                if hasattr(out, "shape"):
                    shapes.pop(_name, None)  # re-insert: the order is the order of completion
                    shapes[_name] = tuple(out.shape)

            handles.append(module.register_forward_hook(keep))
        try:
            with self._torch.inference_mode():
                self._call(self._prepare(batch))
        finally:
            for handle in handles:
                handle.remove()
        return shapes

    def layer_gradients(
        self, batch: np.ndarray, layer: str, targets: Sequence[int], score: ScoreKind = "logit"
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        _, _, selected, activation, grad = self._backward(batch, list(targets), score, layer)
        assert activation is not None  # a layer was named
        return selected, activation, grad

    def scores_with_layer(
        self, batch: np.ndarray, layer: str, activations: np.ndarray, score: ScoreKind = "logit"
    ) -> np.ndarray:
        torch = self._torch
        module = self._layer(layer)
        owner = threading.get_ident()
        values = torch.from_numpy(np.ascontiguousarray(activations, dtype=np.float32))

        def replace(_module: Any, _inputs: Any, output: Any) -> Any:
            if threading.get_ident() != owner:  # another thread's forward pass
                return None
            first = output[0] if isinstance(output, (tuple, list)) else output
            new = values.to(device=first.device, dtype=first.dtype)
            if first.dim() == 4 and first.is_contiguous(memory_format=torch.channels_last):
                new = new.contiguous(memory_format=torch.channels_last)
            return (new, *output[1:]) if isinstance(output, (tuple, list)) else new

        handle = module.register_forward_hook(replace)
        try:
            with torch.inference_mode():
                raw = self._call(self._prepare(batch))
                self.check_output(raw, batch.shape[0])
                return self._score_tensor(raw, score).float().cpu().numpy()
        finally:
            handle.remove()

    def guided_gradients(
        self, batch: np.ndarray, targets: Sequence[int], score: ScoreKind = "logit"
    ) -> np.ndarray:
        """Every ``nn.ReLU``'s output goes through a guided ReLU: the same values
        forward; backward, the gradient only where both the ReLU's input and the
        incoming gradient are positive (in-place ReLUs included: their output is
        positive exactly where their input was)."""
        torch = self._torch
        owner = threading.get_ident()
        function: Any = torch.autograd.Function

        class Guided(function):
            @staticmethod
            def forward(ctx: Any, x: Any) -> Any:
                ctx.save_for_backward(x)
                return x.clone()

            @staticmethod
            def backward(ctx: Any, grad: Any) -> Any:
                (x,) = ctx.saved_tensors
                return grad * (x > 0) * (grad > 0)

        def guide(_module: Any, _inputs: Any, output: Any) -> Any:
            return Guided.apply(output) if threading.get_ident() == owner else None

        handles = [relu.register_forward_hook(guide) for relu in self._relus()]
        try:
            _, _, _, _, grad = self._backward(batch, list(targets), score)
        finally:
            for handle in handles:
                handle.remove()
        return grad

    def _layer(self, layer: str) -> Any:
        modules = dict(self.module.named_modules())
        if not layer or layer not in modules:
            raise PicassoError(
                f"model {self.info.name!r} has no layer {layer!r}; "
                f"its layers: {', '.join(self.layer_names()[-8:])} (last 8 of "
                f"{len(modules) - 1})"
            )
        return modules[layer]

    def _score_tensor(self, raw: Any, score: ScoreKind) -> Any:
        torch = self._torch
        if self._decode_hook is not None:
            raise PicassoError(
                f"model {self.info.name!r} decodes its outputs with a Python hook; "
                "gradients need the raw outputs"
            )
        if self.info.output == "scores":  # a detection's score, either way
            return raw
        if self.info.output == "probabilities":
            probs = raw
            return probs if score == "probability" else torch.log(probs.clamp_min(1e-30))
        return torch.softmax(raw, dim=1) if score == "probability" else raw


class DeviceOccluder(Occluder):
    """Dense occlusion with the occluded batches built on the model's device: the image
    and the fill are copied there once; per batch only the boxes go in (as four small
    vectors, the batch made by one masked select) and only the scores come back."""

    engine = "dense"

    model: TorchModel

    def __init__(self, model: TorchModel, image: np.ndarray, fill: np.ndarray | float) -> None:
        super().__init__(model, image, fill)
        torch = model._torch
        device = model.device
        self.x = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)).to(device)
        self.fill_t = (
            torch.from_numpy(np.ascontiguousarray(fill, dtype=np.float32)).to(device)[None]
            if isinstance(fill, np.ndarray)
            else torch.tensor(float(fill), device=device)
        )
        height, width = image.shape[2:]
        self.rows = torch.arange(height, device=device)[None, :, None]
        self.columns = torch.arange(width, device=device)[None, None, :]

    def scores(self, boxes: Sequence[Any], kind: ScoreKind) -> np.ndarray:
        torch = self.model._torch
        device = self.model.device
        y0, y1, x0, x1 = (
            torch.tensor(v, device=device)[:, None, None] for v in zip(*boxes, strict=True)
        )
        inside = (
            (self.rows >= y0) & (self.rows < y1) & (self.columns >= x0) & (self.columns < x1)
        )[:, None]  # (n, 1, H, W)
        with torch.inference_mode():
            batch = torch.where(inside, self.fill_t, self.x)
            raw = self.model._call(batch)
            self.model.check_output(raw, len(boxes))
            return self.model._score_tensor(raw, kind).float().cpu().numpy()


def _box_iou(torch: Any, a: Any, b: Any) -> Any:
    """IoU of boxes ``a`` (K, 4) with boxes ``b`` (M, 4), differentiable."""
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    top_left = torch.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = (bottom_right - top_left).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    return inter / (area_a[:, None] + area_b[None, :] - inter)


def _static_batch_size(module: Any) -> int | None:
    """Batch size of a torch.export graph traced without a dynamic batch dim."""
    graph = getattr(module, "graph", None)
    if graph is None or (not hasattr(module, "meta") and not hasattr(graph, "nodes")):
        return None
    try:
        for node in graph.nodes:
            if node.op == "placeholder":
                val = node.meta.get("val")
                shape = getattr(val, "shape", None)
                if shape is not None and len(shape) == 4:
                    first = shape[0]
                    return int(first) if isinstance(first, int) else None
    except Exception:  # not an fx graph we understand: run batches as given
        return None
    return None


def module_sha256(module: Any) -> str:
    """Hash of a live module's parameters and buffers (for results of from_torch)."""
    h = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def load_module(
    path: Path,
    kind: str,
    architecture: Callable[..., Any] | None = None,
    architecture_kwargs: dict[str, Any] | None = None,
) -> Any:
    """Load a module from a file; errors name the file and the problem."""
    torch = _torch()
    try:
        if kind == "torchscript":
            return torch.jit.load(str(path), map_location="cpu")
        if kind == "export":
            return torch.export.load(str(path)).module()
        if kind == "safetensors":
            from safetensors.torch import load_file

            if architecture is None:
                raise ModelLoadError(
                    f"{path}: safetensors holds weights only; name the network in the "
                    "model card: architecture = 'package.module:factory'"
                )
            module = architecture(**(architecture_kwargs or {}))
            state = load_file(str(path))
            missing, unexpected = module.load_state_dict(state, strict=False)
            if missing or unexpected:
                raise ModelLoadError(
                    f"{path}: weights do not fit the architecture "
                    f"(missing: {list(missing)[:5]}, unexpected: {list(unexpected)[:5]})"
                )
            return module
    except ModelLoadError:
        raise
    except ImportError as exc:
        raise MissingDependencyError(
            exc.name or "safetensors", "torch", f"Loading {path}"
        ) from None
    except Exception as exc:
        detail = " ".join(str(exc).split())  # one line, however verbose torch is
        raise ModelLoadError(f"{path}: cannot load as a PyTorch {kind} file ({detail})") from None
    raise ModelLoadError(f"{path}: unknown PyTorch format {kind!r}")


def detect(path: Path) -> bool:
    return path.suffix in SUFFIXES


def load(
    path: Path, card: ModelCard, overrides: dict[str, Any], build_info: BuildInfo
) -> TorchModel:
    """Load a TorchScript, torch.export or safetensors (+ architecture) file."""
    _torch()  # a missing PyTorch is named (with its extra) before anything imports it
    kind = SUFFIXES.get(path.suffix)
    if kind is None:
        raise ModelLoadError(f"{path}: not a PyTorch file ({', '.join(sorted(SUFFIXES))})")
    card.preprocessing_spec()  # cheap checks before the weights load
    card.label_names()
    architecture = overrides.get("architecture")
    if not callable(architecture):
        architecture = (
            resolve_callable(card.architecture, card.base_dir, card.card_path)
            if card.architecture
            else None
        )
    module = load_module(path, kind, architecture, card.architecture_kwargs)
    model = TorchModel(
        module,
        build_info(card, path, "torch", {"format": kind}),
        **hook_kwargs(card, overrides),
    )
    if kind == "safetensors":
        # Our own copy of the weights: store them channels-last too (faster convs).
        module.to(memory_format=_torch().channels_last)
    return model
