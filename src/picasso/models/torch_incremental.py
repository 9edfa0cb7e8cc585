"""Incremental occlusion for PyTorch: recompute only what a window changes.

An occluded image differs from the original only inside the window, so the first
layers of a CNN differ only inside the window's (growing) receptive field. This
occluder traces the network with ``torch.fx``, records every activation of the
original image once, and then runs each batch of occluded images through the graph
carrying, per activation, just the changed patch (a small tensor per image and its
position) instead of the whole map. Convolutions, pooling and pointwise layers work
on the patches; once a patch would cover more than ``max_fraction`` of its map, or an
operation is not known to be spatially local, the patch is pasted into a copy of the
original activation and the rest of the network runs as usual.

The result equals the dense computation up to float rounding (the same arithmetic on
the same values, with a different accumulation layout); the first batch is checked
against the dense path and any mismatch switches this occluder back to it. The idea
follows Nakandala et al., "Incremental and Approximate Inference for Faster
Occlusion-based Deep CNN Explanations" (SIGMOD 2019), without the approximate part.
"""

from __future__ import annotations

import logging
import math
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import fx, nn

from ..core.model import Box, Occluder, ScoreKind
from .shapes import first_output

if TYPE_CHECKING:
    from .torch_adapter import TorchModel

log = logging.getLogger(__name__)

POINTWISE_MODULES = (
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.ELU,
    nn.SiLU,
    nn.GELU,
    nn.Hardswish,
    nn.Hardsigmoid,
    nn.Sigmoid,
    nn.Tanh,
    nn.Identity,
    nn.Dropout,
    nn.Dropout2d,
)
POINTWISE_FUNCTIONS = {
    F.relu,
    F.relu6,
    F.silu,
    F.gelu,
    F.hardswish,
    torch.relu,
    torch.sigmoid,
    torch.tanh,
    F.leaky_relu,
    F.dropout,
}
ADD_FUNCTIONS = {operator.add, operator.iadd, torch.add}


@dataclass
class Patch:
    """A batch of activations equal to ``orig`` except in one box per image."""

    values: torch.Tensor  # (B, C, h, w)
    ys: list[int]  # top row of each image's box
    xs: list[int]  # left column of each image's box
    orig: torch.Tensor | None  # (1, C, H, W), the unoccluded activation, where kept


def trace(module: nn.Module) -> fx.GraphModule | None:
    """An fx graph of ``module`` whose input feeds a supported layer, else None."""
    try:
        graph_module = fx.symbolic_trace(module)
    except Exception as exc:  # control flow, custom code: the dense path still works
        log.info("incremental occlusion unavailable (%s: %s)", type(exc).__name__, exc)
        return None
    modules = dict(graph_module.named_modules())
    placeholders = [n for n in graph_module.graph.nodes if n.op == "placeholder"]
    if len(placeholders) != 1:
        return None
    for user in placeholders[0].users:
        if user.op == "call_module" and isinstance(modules[user.target], nn.Conv2d):
            return graph_module
    return None


def _pair(value: int | Sequence[int]) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (value[0], value[1])


class IncrementalOccluder(Occluder):
    """Occluded scores computed patch by patch (see the module docstring)."""

    engine = "incremental"

    model: TorchModel

    def __init__(
        self,
        model: TorchModel,
        image: np.ndarray,
        fill: np.ndarray | float,
        graph_module: fx.GraphModule,
        max_fraction: float = 0.5,
        max_work_ratio: float = 0.7,
    ) -> None:
        super().__init__(model, image, fill)
        self.graph_module = graph_module
        self.modules = dict(graph_module.named_modules())
        self.max_fraction = max_fraction
        self.max_work_ratio = max_work_ratio
        self.x = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))
        self.fill_t: torch.Tensor | float = (
            torch.from_numpy(fill)[None] if isinstance(fill, np.ndarray) else float(fill)
        )
        self._padded: dict[tuple, torch.Tensor] = {}
        self._releases: dict[fx.Node, list[fx.Node]] | None = None
        # Same memory layout as the model's own forward calls (channels-last if accepted).
        self.layout = model.memory_format
        self._checked = False
        self._decided = False
        self._work = 0.0
        # Convolution multiply-adds done by patches, and what the dense path would do.
        self.work_done = 0.0
        self.work_dense = 0.0
        with torch.inference_mode():
            recorder = fx.Interpreter(graph_module, garbage_collect_values=False)
            recorder.run(self.x)
            recorded = {
                node: value
                for node, value in recorder.env.items()
                if isinstance(value, torch.Tensor)
            }
        self.shapes = {node: value.shape for node, value in recorded.items()}
        # The unoccluded activations patches are pasted into or read around: not those
        # only ever passed through element-wise ops (a convolution's output on its way
        # to batch norm and ReLU), which halves what is kept on ResNets.
        self.original = {
            node: value for node, value in recorded.items() if not self._passed_through(node)
        }
        # Multiply-adds per output pixel of each convolution, times its output area.
        self._conv_cost = {}
        for node in graph_module.graph.nodes:
            module = self.modules.get(node.target) if node.op == "call_module" else None
            if isinstance(module, nn.Conv2d) and node in self.shapes:
                per_pixel = module.weight[0].numel() * module.out_channels
                self._conv_cost[node] = per_pixel * self.shapes[node][-2:].numel()

    def _passed_through(self, node: fx.Node) -> bool:
        """Whether every user of ``node`` is an element-wise op that maps a patch to a
        patch (so ``node``'s unoccluded value is never needed)."""
        if node.op == "placeholder" or not node.users:
            return False
        for user in node.users:
            rest = (*user.args[1:], *user.kwargs.values())
            constants = not any(isinstance(a, fx.Node) for a in rest)
            if user.op == "call_module":
                module = self.modules.get(user.target)
                elementwise = isinstance(module, POINTWISE_MODULES) or (
                    isinstance(module, nn.BatchNorm2d) and not module.training
                )
                if not (elementwise and len(user.args) == 1 and not user.kwargs):
                    return False
            else:
                function = user.op == "call_function" and user.target in POINTWISE_FUNCTIONS
                if not (function and constants and user.args[0] is node):
                    return False
        return True

    # -- public ------------------------------------------------------------------------
    def scores(self, boxes: Sequence[Box], kind: ScoreKind) -> np.ndarray:
        if self.engine == "dense":
            return super().scores(boxes, kind)
        self._work = 0.0
        scores = self._incremental_scores(boxes, kind)
        self.work_done += self._work
        self.work_dense += len(boxes) * sum(self._conv_cost.values())
        if self.engine == "incremental" and not self._decided:
            # Keep going only where patches save real work: convolution multiply-adds
            # computed, against the dense path's, measured on this first batch.
            self._decided = True
            dense_work = len(boxes) * sum(self._conv_cost.values())
            if self._work > self.max_work_ratio * dense_work:
                log.info(
                    "%s: patches save little here (%.0f%% of the dense work); using the dense path",
                    self.model.info.name,
                    100 * self._work / dense_work,
                )
                self.engine = "dense"
        return scores

    @property
    def work_fraction(self) -> float:
        """Convolution multiply-adds done, relative to the dense path (1.0 = dense)."""
        if self.engine == "dense" or not self.work_dense:
            return 1.0
        return self.work_done / self.work_dense

    def _incremental_scores(self, boxes: Sequence[Box], kind: ScoreKind) -> np.ndarray:
        try:
            with torch.inference_mode():
                raw = self._run(boxes)
        except (RuntimeError, TypeError, ValueError) as exc:  # the dense path is always right
            log.warning(
                "%s: incremental occlusion failed (%s); using the dense path",
                self.model.info.name,
                exc,
            )
            self.engine = "dense"
            return super().scores(boxes, kind)
        self.model.check_output(raw, len(boxes))
        values = raw.float().cpu().numpy()
        scores = (
            self.model.to_probabilities(values)
            if kind == "probability"
            else self.model.to_logits(values)
        )
        if not self._checked:
            self._checked = True
            dense = super().scores(boxes[:1], kind)
            tolerance = 1e-4 * (1.0 + float(np.abs(dense).max()))
            if not np.allclose(scores[:1], dense, rtol=0, atol=tolerance):
                log.warning(
                    "%s: incremental occlusion disagrees with the dense path; using the dense path",
                    self.model.info.name,
                )
                self.engine = "dense"
                return super().scores(boxes, kind)
        return scores

    # -- graph interpretation ------------------------------------------------------------
    def _release_after(self) -> dict[fx.Node, list[fx.Node]]:
        """For each node, the values no node after it uses (freed once it has run,
        as ``fx.Interpreter`` does): only the live patches and maps of one batch stay
        in memory, not every layer's."""
        if self._releases is None:
            last: dict[fx.Node, fx.Node] = {}
            for node in self.graph_module.graph.nodes:
                for used in node.all_input_nodes:
                    last[used] = node
            self._releases = {}
            for used, user in last.items():
                self._releases.setdefault(user, []).append(used)
        return self._releases

    def _run(self, boxes: Sequence[Box]) -> torch.Tensor:
        env: dict[fx.Node, Any] = {}
        releases = self._release_after()
        for node in self.graph_module.graph.nodes:
            if node.op == "placeholder":
                env[node] = self._input_patch(boxes)
            elif node.op == "get_attr":
                env[node] = operator.attrgetter(node.target)(self.graph_module)
            elif node.op == "output":
                map_arg: Any = fx.node.map_arg
                result = map_arg(node.args[0], lambda n: self._full(env[n]))
                scores: torch.Tensor = first_output(result)
                return scores
            else:
                env[node] = self._eval(node, env)
            for done in releases.get(node, ()):
                env.pop(done, None)
        raise RuntimeError("graph has no output")

    def _eval(self, node: fx.Node, env: dict[fx.Node, Any]) -> Any:
        # Values here are tensors and patches, not fx arguments: fx's types do not apply.
        map_arg: Any = fx.node.map_arg
        map_aggregate: Any = fx.node.map_aggregate
        args: Any = map_arg(node.args, lambda n: env[n])
        kwargs: Any = map_arg(node.kwargs, lambda n: env[n])
        found: list[bool] = []
        map_aggregate((args, kwargs), lambda a: found.append(isinstance(a, Patch)))
        if any(found):
            patched = self._patched(node, args, kwargs)
            if patched is not None:
                return patched
            args = map_aggregate(args, self._full)
            kwargs = map_aggregate(kwargs, self._full)
        target: Any = node.target
        if node.op == "call_module":
            if node in self._conv_cost:
                self._work += len(args[0]) * self._conv_cost[node]
            return self.modules[target](*args, **kwargs)
        if node.op == "call_function":
            return target(*args, **kwargs)
        return getattr(args[0], target)(*args[1:], **kwargs)  # call_method

    def _patched(self, node: fx.Node, args: tuple, kwargs: dict) -> Patch | None:
        """The node's output as a patch, or None to fall back to full tensors."""
        first = args[0] if args else None
        if not isinstance(first, Patch):
            return None
        orig_out = self.original.get(node)
        shape = self.shapes.get(node)
        if shape is None or len(shape) != 4:
            return None
        rest_are_constants = not any(
            isinstance(a, (Patch, torch.Tensor)) for a in (*args[1:], *kwargs.values())
        )
        if node.op == "call_module":
            module = self.modules[node.target]
            if len(args) != 1 or kwargs:
                return None
            if isinstance(module, POINTWISE_MODULES) or (
                isinstance(module, nn.BatchNorm2d) and not module.training
            ):
                return Patch(module(first.values), first.ys, first.xs, orig_out)
            if (
                isinstance(module, nn.Conv2d)
                and module.padding_mode == "zeros"
                and not (isinstance(module.padding, str))
            ):
                return self._spatial(
                    node,
                    first,
                    module.kernel_size,
                    module.stride,
                    module.padding,
                    module.dilation,
                    0.0,
                    lambda t: F.conv2d(
                        t,
                        module.weight,
                        module.bias,
                        module.stride,
                        0,
                        module.dilation,
                        module.groups,
                    ),
                )
            if (
                isinstance(module, nn.MaxPool2d)
                and not module.ceil_mode
                and not (module.return_indices)
            ):
                k, s, d = module.kernel_size, module.stride or module.kernel_size, module.dilation
                return self._spatial(
                    node,
                    first,
                    k,
                    s,
                    module.padding,
                    d,
                    -math.inf,
                    lambda t: F.max_pool2d(t, k, s, 0, d),
                )
            if (
                isinstance(module, nn.AvgPool2d)
                and not module.ceil_mode
                and (module.count_include_pad and module.divisor_override is None)
            ):
                k, s = module.kernel_size, module.stride or module.kernel_size
                return self._spatial(
                    node, first, k, s, module.padding, 1, 0.0, lambda t: F.avg_pool2d(t, k, s, 0)
                )
            return None
        if node.op != "call_function":
            return None
        if node.target in POINTWISE_FUNCTIONS and rest_are_constants:
            return Patch(
                node.target(first.values, *args[1:], **kwargs), first.ys, first.xs, orig_out
            )
        if node.target in ADD_FUNCTIONS and len(args) == 2 and not kwargs:
            other = args[1]
            if isinstance(other, (int, float)):
                return Patch(first.values + other, first.ys, first.xs, orig_out)
            if (
                isinstance(other, Patch)
                and first.orig is not None
                and other.orig is not None
                and other.orig.shape == first.orig.shape
            ):
                return self._union(first, other, orig_out)
        return None

    # -- patch arithmetic ----------------------------------------------------------------
    def _spatial(
        self,
        node: fx.Node,
        p: Patch,
        kernel: int | Sequence[int],
        stride: int | Sequence[int],
        padding: int | Sequence[int],
        dilation: int | Sequence[int],
        fill_value: float,
        op: Callable[[torch.Tensor], torch.Tensor],
    ) -> Patch | None:
        """A sliding-window op (conv, pooling) applied where its input changed."""
        (ky, kx), (sy, sx) = _pair(kernel), _pair(stride)
        (py, px), (dy, dx) = _pair(padding), _pair(dilation)
        orig_out = self.original.get(node)
        out_h, out_w = self.shapes[node][-2:]
        h, w = p.values.shape[-2:]

        def output_range(
            starts: list[int], size: int, k: int, s: int, pad: int, d: int, limit: int
        ) -> tuple[list[int], int]:
            lo = [max(0, -(-(a + pad - d * (k - 1)) // s)) for a in starts]
            hi = [min(limit, (a + size - 1 + pad) // s + 1) for a in starts]
            extent = max(b - a for a, b in zip(lo, hi, strict=True))
            return [min(a, limit - extent) for a in lo], extent

        oys, oh = output_range(p.ys, h, ky, sy, py, dy, out_h)
        oxs, ow = output_range(p.xs, w, kx, sx, px, dx, out_w)
        if oh * ow > self.max_fraction * out_h * out_w:
            return None
        in_h, in_w = (oh - 1) * sy + dy * (ky - 1) + 1, (ow - 1) * sx + dx * (kx - 1) + 1
        gathered = self._gather(
            p,
            [o * sy - py for o in oys],
            [o * sx - px for o in oxs],
            in_h,
            in_w,
            (py, px),
            fill_value,
        )
        values = op(gathered)
        if values.shape[-2:] != (oh, ow):
            return None
        if node in self._conv_cost:
            self._work += len(oys) * self._conv_cost[node] * oh * ow / (out_h * out_w)
        return Patch(values, oys, oxs, orig_out)

    def _union(self, a: Patch, b: Patch, orig_out: torch.Tensor | None) -> Patch | None:
        assert a.orig is not None  # checked by the caller
        height, width = a.orig.shape[-2:]

        def span(
            starts_a: list[int], size_a: int, starts_b: list[int], size_b: int, limit: int
        ) -> tuple[list[int], int]:
            lo = [min(p, q) for p, q in zip(starts_a, starts_b, strict=True)]
            hi = [max(p + size_a, q + size_b) for p, q in zip(starts_a, starts_b, strict=True)]
            extent = max(y - x for x, y in zip(lo, hi, strict=True))
            return [min(x, limit - extent) for x in lo], extent

        ys, h = span(a.ys, a.values.shape[-2], b.ys, b.values.shape[-2], height)
        xs, w = span(a.xs, a.values.shape[-1], b.xs, b.values.shape[-1], width)
        if h * w > self.max_fraction * height * width:
            return None
        total = self._gather(a, ys, xs, h, w, (0, 0), 0.0) + self._gather(
            b, ys, xs, h, w, (0, 0), 0.0
        )
        return Patch(total, ys, xs, orig_out)

    def _gather(
        self,
        p: Patch,
        ys: list[int],
        xs: list[int],
        h: int,
        w: int,
        padding: tuple[int, int],
        fill_value: float,
    ) -> torch.Tensor:
        """Per image, the (h, w) region at (y, x) of the patched activation, with
        positions outside the map set to ``fill_value`` (the op's padding)."""
        pad_y, pad_x = padding
        if p.orig is None:
            raise RuntimeError("an activation was not kept where it is needed")
        key = (id(p.orig), pad_y, pad_x, fill_value)
        padded = self._padded.get(key)
        if padded is None:
            padded = p.orig
            if pad_y or pad_x:
                padded = F.pad(p.orig, (pad_x, pad_x, pad_y, pad_y), value=fill_value)
            self._padded[key] = padded
        ph, pw = p.values.shape[-2:]
        out = torch.empty((len(ys), p.orig.shape[1], h, w), dtype=p.values.dtype)
        for i, (y, x, vy, vx) in enumerate(zip(ys, xs, p.ys, p.xs, strict=True)):
            out[i] = padded[0, :, y + pad_y : y + pad_y + h, x + pad_x : x + pad_x + w]
            y0, y1 = max(y, vy), min(y + h, vy + ph)
            x0, x1 = max(x, vx), min(x + w, vx + pw)
            if y0 < y1 and x0 < x1:
                out[i, :, y0 - y : y1 - y, x0 - x : x1 - x] = p.values[
                    i, :, y0 - vy : y1 - vy, x0 - vx : x1 - vx
                ]
        return out.contiguous(memory_format=self.layout)

    def _input_patch(self, boxes: Sequence[Box]) -> Patch:
        height, width = self.x.shape[-2:]
        h = max(y1 - y0 for y0, y1, _, _ in boxes)
        w = max(x1 - x0 for _, _, x0, x1 in boxes)
        ys = [min(y0, height - h) for y0, _, _, _ in boxes]
        xs = [min(x0, width - w) for _, _, x0, _ in boxes]
        values = torch.empty((len(boxes), self.x.shape[1], h, w))
        for i, ((y0, y1, x0, x1), y, x) in enumerate(zip(boxes, ys, xs, strict=True)):
            values[i] = self.x[0, :, y : y + h, x : x + w]
            target = values[i, :, y0 - y : y1 - y, x0 - x : x1 - x]
            if isinstance(self.fill_t, torch.Tensor):
                target.copy_(self.fill_t[0, :, y0:y1, x0:x1])
            else:
                target.fill_(self.fill_t)
        return Patch(values, ys, xs, self.x)

    def _full(self, value: object) -> object:
        """Paste a patch into copies of the original activation."""
        if not isinstance(value, Patch):
            return value
        if value.orig is None:  # the dense path takes over (see _incremental_scores)
            raise RuntimeError("an activation was not kept where a patch is pasted")
        batch = len(value.ys)
        # clone, never contiguous(): for one window, contiguous() would hand back the
        # cached original itself, and pasting into it would corrupt every later window
        full = value.orig.expand(batch, *value.orig.shape[1:]).clone(memory_format=self.layout)
        h, w = value.values.shape[-2:]
        for i, (y, x) in enumerate(zip(value.ys, value.xs, strict=True)):
            full[i, :, y : y + h, x : x + w] = value.values[i]
        return full
