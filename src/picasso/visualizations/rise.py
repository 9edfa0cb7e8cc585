"""RISE (Petsiuk, Das & Saenko 2018): randomized input sampling for explanation.

The image is multiplied by ``masks`` random smooth masks: a coarse ``grid`` x ``grid``
binary grid (each cell kept with probability ``keep``), upsampled bilinearly to one
cell larger than the image and shifted by a random offset within a cell. The map is
the average of the masks weighted by the target's probability on the masked image,
divided by ``keep``: sum_i p(M_i * x) M_i / (N keep). Values are expected
probabilities (no sign). Masking multiplies the model input, so a masked-out pixel is
0 in the model's input space (the normalisation mean for standard preprocessing).
Forward passes only (``masks`` of them, in batches), so it runs on every framework.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from pydantic import Field

from ..core.method import Cost, Method, MethodOutput, MethodSettings
from ..core.model import Model
from ..core.progress import Progress
from .imaging import resize_bilinear


class RISESettings(MethodSettings):
    masks: int = Field(2000, ge=1, le=100_000, description="Random masks (forward passes).")
    grid: int = Field(7, ge=2, le=64, description="Cells per side of the coarse mask grid.")
    keep: float = Field(0.5, gt=0, lt=1, description="Probability that a cell is kept.")
    seed: int = Field(0, ge=0, description="Seed of the masks (results are reproducible).")
    batch_size: int = Field(32, ge=1, le=4096, description="Masked images per forward call.")


def random_masks(
    rng: np.random.Generator, n: int, grid: int, keep: float, height: int, width: int
) -> np.ndarray:
    """``n`` smooth masks (n, H, W) in [0, 1], as in the RISE paper. Each mask draws
    its cells and shift in turn, so the masks do not depend on how they are batched."""
    cell_h, cell_w = math.ceil(height / grid), math.ceil(width / grid)
    up_h, up_w = (grid + 1) * cell_h, (grid + 1) * cell_w
    masks = np.empty((n, height, width), np.float32)
    for i in range(n):
        cells = (rng.random((grid, grid)) < keep).astype(np.float32)
        y, x = int(rng.integers(0, cell_h)), int(rng.integers(0, cell_w))
        masks[i] = resize_bilinear(cells, up_h, up_w)[y : y + height, x : x + width]
    return masks


class RISE(Method):
    """Saliency from randomly masked copies of the image (forward passes only)."""

    name = "rise"
    description = "Average of random masks, weighted by the class probability they leave."
    reference = "https://arxiv.org/abs/1806.07421"
    cost = "masks forward passes, in batches of batch_size"
    Settings = RISESettings
    quantity = "mean probability with the pixel kept"
    signed = False

    @classmethod
    def estimate(cls, settings: RISESettings, input_size: tuple[int, int], targets: int) -> Cost:
        return Cost(settings.masks + 1, "masks")

    def explain(
        self,
        model: Model,
        batch: np.ndarray,
        targets: Sequence[int],
        settings: RISESettings,
        progress: Progress,
    ) -> MethodOutput:
        classes = np.asarray(list(targets), dtype=np.int64)
        _, _, height, width = batch.shape
        rng = np.random.default_rng(settings.seed)
        sums = np.zeros((len(classes), height, width), np.float64)
        progress(0, settings.masks)
        for start in range(0, settings.masks, settings.batch_size):
            n = min(settings.batch_size, settings.masks - start)
            masks = random_masks(rng, n, settings.grid, settings.keep, height, width)
            scores = model.probabilities(batch * masks[:, None])[:, classes]  # (n, targets)
            sums += np.einsum("nt,nhw->thw", scores.astype(np.float64), masks)
            progress(start + n, settings.masks)
        maps = sums / (settings.masks * settings.keep)
        return MethodOutput(maps=maps.astype(np.float32), extras={"forward_passes": settings.masks})
