"""D-RISE (Petsiuk et al. 2021): RISE for object detectors, black-box.

Each randomly masked copy of the image goes through the detector; its weight is how
similar its best detection is to the explained one: IoU x [same class] x score (see
:mod:`picasso.core.detection`; D-RISE compares class-probability vectors, which for
detectors that report their top class and its score reduces to this). The map is the
masks averaged with these weights, RISE's estimate and its convergence stop included,
so it runs on any detector that answers forward passes: PyTorch, Hugging Face, ONNX.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..core.detection import similarity_view
from ..core.errors import CapabilityError
from ..core.method import MethodOutput
from ..core.model import DETECTIONS, Model
from ..core.progress import Progress
from .rise import RISE, RISESettings


class DRISE(RISE):
    """Saliency of one detection from randomly masked copies of the image."""

    name = "d-rise"
    description = "RISE for detectors: masks weighted by how well the detection survives them."
    reference = "https://arxiv.org/abs/2006.03204"
    quantity = "mean detection similarity with the pixel kept"
    requires = frozenset({DETECTIONS})

    def explain(
        self,
        model: Model,
        batch: np.ndarray,
        targets: Sequence[int],
        settings: RISESettings,
        progress: Progress,
    ) -> MethodOutput:
        view = similarity_view(model)
        if view is None:
            raise CapabilityError("d-rise explains a detection; explain a detector's image")
        return super().explain(view, batch, targets, settings, progress)
