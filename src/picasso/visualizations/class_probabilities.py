"""Class probabilities: the model's top-k classes with labels and probabilities."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pydantic import Field

from ..core.method import Method, MethodOutput, MethodSettings
from ..core.model import Model
from ..core.progress import Progress


class ClassProbabilitiesSettings(MethodSettings):
    classes: int = Field(
        5, ge=1, le=1000, description="How many of the most probable classes to list."
    )


class ClassProbabilities(Method):
    """The top-k predicted classes and their probabilities (one forward pass)."""

    name = "class-probabilities"
    description = "The model's most probable classes for the image, with probabilities."
    reference = ""
    cost = "1 forward pass"
    Settings = ClassProbabilitiesSettings
    produces_map = False

    def explain(
        self,
        model: Model,
        batch: np.ndarray,
        targets: Sequence[int],
        settings: ClassProbabilitiesSettings,
        progress: Progress,
    ) -> MethodOutput:
        progress(0, 1)
        probs = model.probabilities(batch)[0]
        order = np.argsort(-probs, kind="stable")[: settings.classes]
        classes = [
            {"index": int(i), "label": model.info.label(int(i)), "probability": float(probs[i])}
            for i in order
        ]
        progress(1, 1)
        h, w = model.info.input_size
        return MethodOutput(maps=np.zeros((0, h, w), np.float32), extras={"classes": classes})
