"""Grad-CAM (Selvaraju et al. 2017) and Grad-CAM++ (Chattopadhay et al. 2018).

Both weight the activation maps A_c of one layer by a per-channel weight w_c computed
from the gradients of the target's logit, and show ReLU(sum_c w_c A_c), upsampled to
the input size (bilinear) and min-max normalised per image, as pytorch-grad-cam does
(values in [0, 1]; magnitudes, no sign). Grad-CAM's weights are the spatial means of
the gradients; Grad-CAM++ weighs positive gradients by the alpha coefficients of its
equation 19. The layer is a setting; by default the last layer with a spatial
output. Cost: one forward and one backward pass per ``batch_size`` targets.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
from pydantic import Field

from ..core.errors import SettingsError, quoted
from ..core.method import BatchOutput, Method, MethodOutput, MethodSettings
from ..core.model import (
    LAYERS,
    LayerGradientsWithOutputs,
    LayerModel,
    Model,
    require,
    resolve_top,
)
from ..core.progress import Progress
from .imaging import resize_bilinear


class GradCAMSettings(MethodSettings):
    layer: str = Field(
        "",
        max_length=200,
        description="Layer whose activations are weighted; empty: the last layer with a "
        "spatial output (`picasso models -m M` lists the layers).",
    )


def normalise(cam: np.ndarray) -> np.ndarray:
    cam = cam - cam.min()
    return cam / (1e-7 + cam.max())


def token_grid(shape: tuple[int, ...]) -> tuple[int, int] | None:
    """For a (N, tokens, channels) output: (leading extra tokens, grid side) when the
    tokens are a square grid of patches after some class/register tokens, else None."""
    if len(shape) != 3:
        return None
    for extra in range(0, 9):
        side = math.isqrt(max(shape[1] - extra, 0))
        if side > 1 and side * side == shape[1] - extra:
            return extra, side
    return None


def channels_last(shape: tuple[int, ...], input_size: tuple[int, ...]) -> bool:
    """Whether a 4-d output (N, A, B, C) is laid out channels-last (timm's Swin blocks
    answer (N, h, w, C)): its (A, B) has the input's aspect ratio and (B, C) has not."""
    if len(shape) != 4:
        return False
    _, a, b, c = shape
    aspect = input_size[0] / input_size[1]

    def fits(y: int, x: int) -> bool:
        return abs(y / x - aspect) <= 0.15 * aspect

    return fits(a, b) and not fits(b, c)


def as_maps(values: np.ndarray, input_size: tuple[int, ...]) -> np.ndarray | None:
    """Activations or gradients as (N, C, h, w): spatial maps as they are (channels-last
    ones transposed), token outputs reshaped to their patch grid (class/register tokens
    dropped)."""
    if values.ndim == 4:
        return values.transpose(0, 3, 1, 2) if channels_last(values.shape, input_size) else values
    grid = token_grid(values.shape)
    if grid is None:
        return None
    extra, side = grid
    tokens = values[:, extra:, :]
    return tokens.reshape(len(values), side, side, values.shape[2]).transpose(0, 3, 1, 2)


def spatial_layers(model: LayerModel, batch: np.ndarray) -> list[str]:
    """Layers whose output is a map larger than 1x1 or a square grid of patch tokens,
    in execution order."""
    return [
        name
        for name, shape in model.layer_shapes(batch).items()
        if (len(shape) == 4 and shape[2] * shape[3] > 1) or token_grid(shape) is not None
    ]


class GradCAM(Method):
    """Gradient-weighted class activation maps."""

    name = "grad-cam"
    description = "Where the chosen layer's features support the class, weighted by gradients."
    reference = "https://arxiv.org/abs/1610.02391"
    cost = "1 forward + 1 backward pass per target"
    Settings = GradCAMSettings
    quantity = "class activation (normalised)"
    requires = frozenset({LAYERS})
    signed = False

    def channel_weights(self, activations: np.ndarray, grads: np.ndarray) -> np.ndarray:
        """The weights of the activations: (N, C), one per channel, or (N, C, h, w), one
        per element (HiRes-CAM, Layer-CAM). Grad-CAM: the gradients' spatial means."""
        return grads.mean(axis=(2, 3))

    def cam_images(
        self,
        model: Model,
        images: np.ndarray,
        layer: str,
        activations: np.ndarray,
        grads: np.ndarray,
        targets: list[int],
        settings: GradCAMSettings,
        advance: Callable[[int], None],
    ) -> np.ndarray:
        """The class activation maps (n, h, w) before the ReLU, for ``images`` (n, C, H,
        W) and their ``targets``: here sum_c w_c A_c with :meth:`channel_weights`. The
        CAM family overrides this (projections, scores of masked or ablated inputs); a
        method with more than one unit of :meth:`work` per target
        reports the units done in this chunk with ``advance(units)`` (which also lets a
        job be cancelled)."""
        weights = self.channel_weights(activations, grads)
        if weights.ndim == 2:
            weights = weights[:, :, None, None]
        return (weights * activations).sum(axis=1)

    def layer_maps(
        self,
        model: Model,
        batch: np.ndarray,
        layer: str,
        targets: list[int | None],
    ) -> tuple[np.ndarray, np.ndarray, list[int], np.ndarray | None]:
        """The layer's activations and the targets' logit gradients as (N, C, h, w), the
        targets (None: the top class) and, where the model gives them from the same
        pass, its raw outputs."""
        raw = None
        if isinstance(model, LayerGradientsWithOutputs):
            raw, chosen, activations, grads = model.layer_gradients_and_outputs(
                batch, layer, targets, "logit"
            )
        else:
            chosen = [int(t) for t in targets if t is not None]
            if len(chosen) != len(targets):
                raise ValueError("targets must be known without the model's outputs")
            _, activations, grads = require(model, LayerModel).layer_gradients(
                batch, layer, chosen, "logit"
            )
        size = batch.shape[2:]
        as_activations, as_grads = as_maps(activations, size), as_maps(grads, size)
        if as_activations is None or as_grads is None:
            raise SettingsError(
                f"{self.name}: layer {layer!r} outputs neither a spatial map nor "
                "a square grid of tokens; choose a convolutional or token layer"
            )
        return as_activations, as_grads, chosen, raw

    def explain(
        self,
        model: Model,
        batch: np.ndarray,
        targets: Sequence[int],
        settings: GradCAMSettings,
        progress: Progress,
    ) -> MethodOutput:
        network = require(model, LayerModel)
        maps, layer, _, _ = self._maps(
            model,
            lambda _start, count: np.repeat(batch, count, axis=0),  # the image, per target
            list(targets),
            self._candidates(network, model, batch, settings),
            settings,
            progress,
        )
        return MethodOutput(maps=maps, extras={"layer": layer})

    def explain_batch(
        self,
        model: Model,
        batch: np.ndarray,
        targets: Sequence[int | None],
        settings: GradCAMSettings,
        progress: Progress,
    ) -> BatchOutput:
        """Many images per forward/backward call (``batch_size`` at a time); where the
        model can, the prediction comes from the same forward pass."""
        network = require(model, LayerModel)
        probabilities = None
        chosen: list[int | None] = list(targets)
        if not isinstance(model, LayerGradientsWithOutputs):
            probabilities = model.probabilities(batch)
            chosen = list(resolve_top(targets, probabilities))
        maps, layer, used, outputs = self._maps(
            model,
            lambda start, count: batch[start : start + count],
            chosen,
            self._candidates(network, model, batch[:1], settings),
            settings,
            progress,
        )
        if probabilities is None:
            probabilities = model.to_probabilities(np.concatenate(outputs))
        extras = [{"layer": layer} for _ in range(len(batch))]
        return BatchOutput(maps, extras, probabilities, used)

    @classmethod
    def check_settings(cls, model: Model, settings: GradCAMSettings) -> None:
        """A named layer must exist: refused when the job is asked for, not when it runs."""
        if settings.layer and LAYERS in model.capabilities:
            names = require(model, LayerModel).layer_names()
            if settings.layer not in names:
                message = (
                    f"model {model.info.name!r} has no layer {quoted(settings.layer)} "
                    f"(`picasso models -m {model.info.name}` lists them; e.g. {names[-1]})"
                )
                raise SettingsError(f"{cls.name}: layer: {message}", {"layer": message})

    def _candidates(
        self, network: LayerModel, model: Model, batch: np.ndarray, settings: GradCAMSettings
    ) -> list[str]:
        """The layer named by the settings, or the spatial layers from the output down."""
        if settings.layer:
            if settings.layer not in network.layer_names():
                raise SettingsError(
                    f"{self.name}: model {model.info.name!r} has no layer {settings.layer!r}"
                )
            return [settings.layer]
        # The last spatial layer; a transformer's last token layers may not reach
        # the classifier (zero gradients), so step back until one does.
        candidates = spatial_layers(network, batch)[::-1][:64]
        if not candidates:
            raise SettingsError(
                f"model {model.info.name!r} has no layer with a spatial output; "
                "name one with the layer setting"
            )
        return candidates

    def work(self, channels: int) -> int:
        """Progress units per target for a layer of ``channels`` channels (model passes
        beyond the shared forward/backward one): none here."""
        return 1

    def _maps(
        self,
        model: Model,
        inputs: Callable[[int, int], np.ndarray],
        targets: list[int | None],
        candidates: list[str],
        settings: GradCAMSettings,
        progress: Progress,
    ) -> tuple[np.ndarray, str, list[int], list[np.ndarray]]:
        """One map per target, ``inputs(start, count)`` giving each chunk's images; also
        the targets used and the raw outputs of each chunk (where the model gives them)."""
        first = inputs(0, 1)
        height, width = first.shape[2:]
        maps = np.empty((len(targets), height, width), np.float32)
        layer = candidates[0]
        used: list[int] = []
        outputs: list[np.ndarray] = []
        total, scale, done = len(targets), 1, 0
        progress(0, total)
        for start in range(0, len(targets), settings.batch_size):
            chunk = targets[start : start + settings.batch_size]
            images = inputs(start, len(chunk))
            for layer in candidates:  # after the first batch, only the one chosen
                activations, grads, chosen, raw = self.layer_maps(model, images, layer, chunk)
                if np.any(grads):
                    break
            candidates = [layer]
            used += chosen
            if raw is not None:
                outputs.append(raw)
            if start == 0:
                scale = self.work(activations.shape[1])
                total = len(targets) * scale

            def advance(units: int, base: int = done, total: int = total) -> None:
                progress(base + units, total)

            cams = self.cam_images(
                model, images, layer, activations, grads, chosen, settings, advance
            )
            cams = np.maximum(cams, 0)
            for i, cam in enumerate(cams):
                resized = resize_bilinear(normalise(cam).astype(np.float32), height, width)
                maps[start + i] = normalise(resized)  # pytorch-grad-cam scales twice too
            done += len(chunk) * scale
            progress(done, total)
        return maps, layer, used, outputs


class GradCAMPlusPlus(GradCAM):
    """Grad-CAM++: positive gradients weighted by the alpha coefficients (eq. 19)."""

    name = "grad-cam++"
    description = "Grad-CAM with higher-order weights: better for several instances of a class."
    reference = "https://arxiv.org/abs/1710.11063"

    def channel_weights(self, activations: np.ndarray, grads: np.ndarray) -> np.ndarray:
        grads_2 = grads**2
        grads_3 = grads_2 * grads
        sums = activations.sum(axis=(2, 3), keepdims=True)
        alpha = grads_2 / (2 * grads_2 + sums * grads_3 + 1e-6)
        alpha = np.where(grads != 0, alpha, 0)
        return (np.maximum(grads, 0) * alpha).sum(axis=(2, 3))
