"""Input shapes of networks loaded from files: layout detection, size checks against
the model card, and a probe run at load time. Framework-neutral (numpy only)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from ..core.errors import ModelLoadError, PicassoError
from ..core.model import DETECTIONS, Model, ModelInfo
from .card import ModelCard
from .protocols import BuildInfo


def layout_of(shape: Sequence, path: Path) -> str | None:
    """NCHW or NHWC from a 4-d input shape whose channel axis holds 1 or 3, else None."""
    if len(shape) != 4:
        raise ModelLoadError(f"{path}: input shape {list(shape)} is not an image batch")
    first, last = shape[1] in (1, 3), shape[3] in (1, 3)
    if first != last:
        return "NCHW" if first else "NHWC"
    return None


class ChannelsMixin:
    """Shared by adapters whose networks may take channels-last input: methods always
    give and get NCHW arrays; the transposes happen here."""

    layout: str

    def to_network(self, batch: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(batch, dtype=np.float32)
        return np.ascontiguousarray(x.transpose(0, 2, 3, 1)) if self.layout == "NHWC" else x

    def from_network(self, grads: np.ndarray) -> np.ndarray:
        return grads.transpose(0, 3, 1, 2) if self.layout == "NHWC" else grads

    info: ModelInfo

    def check_scores(self, out: np.ndarray, batch_size: int) -> np.ndarray:
        check_scores(self.info.name, out.shape, batch_size)
        return out.astype(np.float32, copy=False)

    # -- segmentation (forward passes only) ----------------------------------------
    def raw_outputs(self, batch: np.ndarray) -> np.ndarray:
        """The network's output for an NCHW batch, unchecked (adapters implement it)."""
        raise NotImplementedError

    def segment(self, batch: np.ndarray) -> np.ndarray:
        """Class logits (N, classes, H, W) at the input size; a channels-last network
        answers (N, H, W, classes)."""
        out = np.asarray(self.raw_outputs(batch), dtype=np.float32)
        if out.ndim == 4 and self.layout == "NHWC":
            out = out.transpose(0, 3, 1, 2)
        size = tuple(self.info.input_size)
        if out.ndim != 4 or out.shape[0] != len(batch) or tuple(out.shape[2:]) != size:
            raise PicassoError(
                f"model {self.info.name!r} is declared a segmentation model but outputs "
                f"shape {tuple(out.shape)}; expected class logits at the input size, "
                f"({len(batch)}, classes, {size[0]}, {size[1]})"
                + (" channels-last" if self.layout == "NHWC" else "")
                + " (resize inside the graph)"
            )
        return out

    def for_regions(self, masks: np.ndarray) -> Model:
        from ..core.segmentation import RegionView

        return RegionView(self, masks)  # type: ignore[arg-type]

    def task_problem(self, capability: str) -> str | None:
        """Why a segmentation model or detector of this framework lacks ``capability``
        (its classifier view answers forward passes only), or None."""
        task = self.info.task
        if task == "classification" or capability == DETECTIONS:
            return None
        methods = "d-rise, occlusion or rise" if task == "detection" else "occlusion or rise"
        return (
            f"{self.info.framework} {task} models answer forward passes only here: "
            f"explain them with {methods}"
        )


def check_scores(model_name: str, shape: Sequence[int], batch_size: int) -> None:
    """Raise a clear error unless a network's output is (batch, classes)."""
    if len(shape) != 2 or shape[0] != batch_size:
        raise PicassoError(
            f"model {model_name!r} returned shape {tuple(shape)}; "
            f"expected (batch, classes) = ({batch_size}, K)"
        )


Batch = TypeVar("Batch")


def run_fixed_batches(
    run: Callable[[Batch], Batch],
    x: Batch,
    size: int | None,
    concat: Callable[[list[Batch]], Batch],
) -> Batch:
    """Run a graph traced with a fixed batch ``size`` on a batch of any length: in
    chunks of ``size``, the last one padded with copies of the first item. Works on
    numpy arrays and framework tensors alike (``concat`` joins them)."""
    count = len(x)  # type: ignore[arg-type]
    if not size or count == size:
        return run(x)
    pad = (-count) % size
    padded = concat([x, *([x[:1]] * pad)]) if pad else x  # type: ignore[index]
    parts = [run(padded[i : i + size]) for i in range(0, count + pad, size)]  # type: ignore[index]
    return concat(parts)[:count]  # type: ignore[index]


def first_output(out: Any) -> Any:
    """The class scores of a network that returns a tuple, a dict or an object with
    ``logits`` (as Hugging Face models do)."""
    if isinstance(out, (tuple, list)):
        return out[0]
    if isinstance(out, dict):
        return out.get("logits", next(iter(out.values())))
    if hasattr(out, "logits"):
        return out.logits
    return out


def card_with_graph_size(card: ModelCard, shape: Sequence, layout: str) -> ModelCard:
    """Fill the card's input size from a graph that fixes it."""
    h_axis, w_axis = (2, 3) if layout == "NCHW" else (1, 2)
    if card.preprocessing.input_size is None and all(
        isinstance(shape[a], int) for a in (h_axis, w_axis)
    ):
        preprocessing = card.preprocessing.model_copy(
            update={"input_size": (shape[h_axis], shape[w_axis])}
        )
        card = card.model_copy(update={"preprocessing": preprocessing})
    return card


def check_graph_shape(path: Path, shape: Sequence, layout: str, info: ModelInfo) -> None:
    """The card's input size and channels agree with a graph's fixed input shape."""
    h_axis, w_axis = (2, 3) if layout == "NCHW" else (1, 2)
    channels = shape[1 if layout == "NCHW" else 3]
    if isinstance(channels, int) and channels != info.preprocessing.channels:
        raise ModelLoadError(
            f"{path}: the network takes {channels} channel(s), the model card "
            f"preprocessing gives {info.preprocessing.channels}"
        )
    for axis, size in zip((h_axis, w_axis), info.input_size, strict=True):
        if isinstance(shape[axis], int) and shape[axis] != size:
            raise ModelLoadError(
                f"{path}: the network takes {shape[h_axis]}x{shape[w_axis]} images, the "
                f"model card says input_size = {list(info.input_size)}"
            )


def probe_forward(model: Model, path: Path) -> None:
    """Run one blank image, so a broken model fails at load time, not in a job."""
    probe = np.zeros((1, model.info.preprocessing.channels, *model.info.input_size), np.float32)
    try:
        if model.info.task == "detection":
            model.detect(probe)  # type: ignore[attr-defined]
        elif model.info.task == "segmentation":
            model.segment(probe)  # type: ignore[attr-defined]
        else:
            model.forward(probe)
    except PicassoError as exc:
        raise ModelLoadError(f"{path}: {exc}") from None
    except Exception as exc:
        detail = " ".join(str(exc).split())[:300]
        raise ModelLoadError(
            f"{path}: the model fails on a {probe.shape} input ({detail})"
        ) from None


def resolve_input(
    path: Path,
    card: ModelCard,
    shape: Sequence[Any],
    framework: str,
    extras: dict[str, Any],
    build_info: BuildInfo,
) -> tuple[ModelInfo, str]:
    """The model info and input layout of a network whose file states its input shape:
    the layout from the card or the shape, the input size from the shape where the
    card is silent, and both checked against each other."""
    layout = card.layout or layout_of(shape, path)
    if layout is None:
        raise ModelLoadError(
            f"{path}: cannot tell whether input {list(shape)} is NCHW or NHWC; "
            'set layout = "NCHW" or "NHWC" in the model card'
        )
    card = card_with_graph_size(card, shape, layout)
    info = build_info(card, path, framework, {**extras, "layout": layout})
    check_graph_shape(path, shape, layout, info)
    return info, layout


def preload_triton() -> None:
    """Import Triton before TensorFlow, where both are installed.

    PyTorch's CUDA builds import Triton lazily (``torch._dynamo``, which torchvision and
    onnx2torch import). Triton and TensorFlow each bundle LLVM, and importing Triton
    after TensorFlow crashes the process (a segmentation fault); the other order works.
    The Keras and SavedModel adapters call this before they import TensorFlow, so
    serving a Keras model next to an ONNX one (whose gradients go through onnx2torch)
    is safe. Too late if TensorFlow is already imported; harmless without Triton.
    """
    import importlib.util
    import sys

    if "triton" in sys.modules or "tensorflow" in sys.modules:
        return
    if importlib.util.find_spec("triton") is None:
        return
    try:
        import triton  # noqa: F401
    except Exception:  # a broken Triton install must not stop TensorFlow models
        return
