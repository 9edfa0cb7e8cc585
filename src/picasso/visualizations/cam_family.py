"""The CAM family beyond Grad-CAM, each equal to pytorch-grad-cam on the same layer.

All share Grad-CAM's frame (:class:`~picasso.visualizations.grad_cam.GradCAM`): the
activations A of one layer (the last spatial one by default, token grids reshaped), a
class activation map from them, ReLU, min-max normalised, resized to the input
(bilinear) and normalised again. They differ in how the map is made:

- **HiRes-CAM** (Draelos & Carin 2020): sum_c (dY/dA_c * A_c), element-wise; provably
  shows where the score comes from, unlike Grad-CAM's averaged gradients.
- **Layer-CAM** (Jiang et al. 2021): sum_c (ReLU(dY/dA_c) * A_c); finer maps, also at
  earlier layers.
- **Eigen-CAM** (Muhammad & Yeasin 2020): the activations projected on their first
  principal component (no gradients, class-agnostic: the same map for every class).
- **Score-CAM** (Wang et al. 2020): each channel, upsampled and min-max normalised,
  masks the image; the channel's weight is the softmax over channels of the class's
  logit for its masked image. One forward pass per channel and target.
- **Ablation-CAM** (Desai & Ramaswamy 2020): the channel's weight is the relative drop
  of the logit when the channel is zeroed. One forward pass per channel and target;
  needs the ``layer-edits`` capability.
- **Guided Backprop** (Springenberg et al. 2015) and **Guided Grad-CAM** (Selvaraju et
  al. 2017): input gradients through ReLUs that pass back only positive gradients,
  alone or multiplied by the Grad-CAM map; |.| maximised over colour channels.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ..core.errors import SettingsError
from ..core.method import Cost, Method, MethodOutput, MethodSettings
from ..core.model import (
    GUIDED,
    LAYER_EDITS,
    LAYERS,
    GuidedGradientModel,
    LayerEditModel,
    LayerModel,
    Model,
    require,
)
from ..core.progress import Progress
from .grad_cam import GradCAM, GradCAMSettings, channels_last
from .saliency import gradient_maps

#: Channels of the largest common last convolutional layers (EfficientNet-B7: 2,560);
#: the per-channel methods' cost estimate assumes at most this many.
TYPICAL_MAX_CHANNELS = 2048


class HiResCAM(GradCAM):
    """Element-wise gradient times activation, summed over channels."""

    name = "hirescam"
    description = "Grad-CAM without averaging the gradients: where the score comes from."
    reference = "https://arxiv.org/abs/2011.08891"

    def channel_weights(self, activations: np.ndarray, grads: np.ndarray) -> np.ndarray:
        return grads


class LayerCAM(GradCAM):
    """Positive gradients times activations, element-wise."""

    name = "layer-cam"
    description = "Activations weighted by their positive gradients, pixel by pixel."
    reference = "https://ieeexplore.ieee.org/document/9462463"

    def channel_weights(self, activations: np.ndarray, grads: np.ndarray) -> np.ndarray:
        return np.maximum(grads, 0)


def first_component(activations: np.ndarray) -> np.ndarray:
    """Each image's activations (C, h, w) projected on their first principal component
    (centred, SVD), as (n, h, w): pytorch-grad-cam's ``get_2d_projection``."""
    projections = []
    for values in np.nan_to_num(activations):
        flat = values.reshape(values.shape[0], -1).T
        flat = flat - flat.mean(axis=0)
        _, _, vt = np.linalg.svd(flat, full_matrices=True)
        projections.append((flat @ vt[0, :]).reshape(values.shape[1:]))
    return np.asarray(projections, dtype=np.float32)


class EigenCAM(GradCAM):
    """First principal component of the activations."""

    name = "eigen-cam"
    description = "The layer's dominant activation pattern; the same map for every class."
    reference = "https://arxiv.org/abs/2008.00299"

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
        return first_component(activations)


def upsample_corners(maps: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear resize of (k, h, w) maps with corners aligned (``align_corners=True``,
    as torch's ``UpsamplingBilinear2d``, which Score-CAM uses)."""

    def axis(out_size: int, in_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        pos: np.ndarray
        if out_size == 1 or in_size == 1:
            pos = np.zeros(out_size)
        else:
            pos = np.arange(out_size) * ((in_size - 1) / (out_size - 1))
        low = np.floor(pos).astype(int)
        high = np.minimum(low + 1, in_size - 1)
        return low, high, (pos - low).astype(np.float32)

    y0, y1, fy = axis(height, maps.shape[1])
    x0, x1, fx = axis(width, maps.shape[2])
    top = maps[:, y0][:, :, x0] * (1 - fx) + maps[:, y0][:, :, x1] * fx
    bottom = maps[:, y1][:, :, x0] * (1 - fx) + maps[:, y1][:, :, x1] * fx
    return (top * (1 - fy)[:, None] + bottom * fy[:, None]).astype(np.float32)


class PerChannelCAM(GradCAM):
    """CAMs whose channel weights come from one forward pass per channel: each image's
    weights from :meth:`image_weights`, then sum_c w_c A_c. Progress counts channels."""

    cost = "1 forward + 1 backward pass, then 1 forward pass per channel of the layer, per target"

    @classmethod
    def estimate(cls, settings: GradCAMSettings, input_size: tuple[int, int], targets: int) -> Cost:
        return Cost(targets * (2 + TYPICAL_MAX_CHANNELS), "target")

    def work(self, channels: int) -> int:
        return channels

    def image_weights(
        self,
        model: Model,
        image: np.ndarray,
        layer: str,
        activations: np.ndarray,
        target: int,
        settings: GradCAMSettings,
        advance: Callable[[int], None],
    ) -> np.ndarray:
        """Channel weights (C,) for one image (1, C, H, W) and its layer's activations
        (C, h, w); ``advance(channels done)`` after each forward call."""
        raise NotImplementedError

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
        channels = activations.shape[1]
        cams = np.empty((len(images), *activations.shape[2:]), np.float32)
        for i in range(len(images)):

            def step(done: int, before: int = i * channels) -> None:
                advance(before + done)

            weights = self.image_weights(
                model, images[i : i + 1], layer, activations[i], targets[i], settings, step
            )
            cams[i] = (weights[:, None, None] * activations[i]).sum(axis=0)
        return cams


class ScoreCAM(PerChannelCAM):
    """Channels weighted by the class score of the image they mask."""

    name = "score-cam"
    description = "Each channel masks the image; channels whose mask keeps the class score count."
    reference = "https://arxiv.org/abs/1910.01279"

    def image_weights(
        self,
        model: Model,
        image: np.ndarray,
        layer: str,
        activations: np.ndarray,
        target: int,
        settings: GradCAMSettings,
        advance: Callable[[int], None],
    ) -> np.ndarray:
        height, width = image.shape[2:]
        masks = upsample_corners(activations, height, width)
        lows = masks.min(axis=(1, 2), keepdims=True)
        highs = masks.max(axis=(1, 2), keepdims=True)
        masks = (masks - lows) / (highs - lows + 1e-8)
        scores = np.empty(len(masks), np.float64)
        for start in range(0, len(masks), settings.batch_size):
            part = masks[start : start + settings.batch_size]
            scores[start : start + len(part)] = model.scores(image * part[:, None], "logit")[
                :, target
            ]
            advance(start + len(part))
        weights = np.exp(scores - scores.max())
        return weights / weights.sum()


class AblationCAM(PerChannelCAM):
    """Channels weighted by the score's relative drop when each is zeroed."""

    name = "ablation-cam"
    description = "Zero one channel at a time; channels whose loss lowers the class score count."
    reference = "https://openaccess.thecvf.com/content_WACV_2020/html/Desai_Ablation-CAM_Visual_Explanations_for_Deep_Convolutional_Network_via_Gradient-free_Localization_WACV_2020_paper.html"
    requires = frozenset({LAYERS, LAYER_EDITS})

    def image_weights(
        self,
        model: Model,
        image: np.ndarray,
        layer: str,
        activations: np.ndarray,
        target: int,
        settings: GradCAMSettings,
        advance: Callable[[int], None],
    ) -> np.ndarray:
        editor = require(model, LayerEditModel)
        shape = require(model, LayerModel).layer_shapes(image)[layer]
        if len(shape) != 4 or channels_last(shape, image.shape[2:]):
            raise SettingsError(
                f"{self.name}: layer {layer!r} outputs tokens or a channels-last map, not "
                "a channels-first spatial map; ablating channels needs a convolutional layer"
            )
        original = float(model.scores(image, "logit")[0, target])
        # Post-ReLU layers are ablated to 0; a layer with negative values to far below
        # its minimum, as pytorch-grad-cam does (its value: min - 1e7).
        lowest = float(activations.min())
        value = 0.0 if lowest == 0 else lowest - 1e7
        channels = len(activations)
        scores = np.empty(channels, np.float64)
        for start in range(0, channels, settings.batch_size):
            count = min(settings.batch_size, channels - start)
            edited = np.repeat(activations[None], count, axis=0)
            edited[np.arange(count), start + np.arange(count)] = value
            batch = np.repeat(image, count, axis=0)
            scores[start : start + count] = editor.scores_with_layer(batch, layer, edited, "logit")[
                :, target
            ]
            advance(start + count)
        return (original - scores) / original


class GuidedSettings(MethodSettings):
    """Guided Backprop has no settings beyond the batch size."""


class GuidedBackprop(Method):
    """Input gradients through guided ReLUs, |.| maximised over colour channels."""

    name = "guided-backprop"
    description = "Input gradients passed back only where they are positive: sharp edges."
    reference = "https://arxiv.org/abs/1412.6806"
    cost = "1 forward + 1 backward pass per target"
    Settings = GuidedSettings
    quantity = "|guided gradient|"
    requires = frozenset({GUIDED})
    signed = False

    def explain(
        self,
        model: Model,
        batch: np.ndarray,
        targets: Sequence[int],
        settings: GuidedSettings,
        progress: Progress,
    ) -> MethodOutput:
        return MethodOutput(maps=self.guided(model, batch, list(targets), settings, progress))

    @staticmethod
    def guided(
        model: Model,
        batch: np.ndarray,
        targets: list[int],
        settings: MethodSettings,
        progress: Progress,
    ) -> np.ndarray:
        network = require(model, GuidedGradientModel)
        return gradient_maps(
            lambda images, chunk: network.guided_gradients(images, chunk, "logit"),
            batch,
            targets,
            settings.batch_size,
            progress,
        )


class GuidedGradCAM(GradCAM):
    """Guided Backprop times the Grad-CAM map."""

    name = "guided-grad-cam"
    description = "Guided Backprop's detail where Grad-CAM puts the class."
    reference = "https://arxiv.org/abs/1610.02391"
    cost = "2 forward + 2 backward passes per target"
    quantity = "|guided gradient| x Grad-CAM"
    requires = frozenset({LAYERS, GUIDED})

    def explain(
        self,
        model: Model,
        batch: np.ndarray,
        targets: Sequence[int],
        settings: GradCAMSettings,
        progress: Progress,
    ) -> MethodOutput:
        half = Progress(lambda done, total: progress(done, 2 * total))
        cam = super().explain(model, batch, targets, settings, half)
        rest = Progress(lambda done, total: progress(total + done, 2 * total))
        guided = GuidedBackprop.guided(model, batch, list(targets), settings, rest)
        return MethodOutput(maps=cam.maps * guided, extras=cam.extras)

    explain_batch = Method.explain_batch
