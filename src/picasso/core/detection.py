"""Detections as scores a method can explain, for any detector.

A detector answers with boxes, classes and scores, not one score per class. To explain
one detection, Picasso turns the detector into a classifier whose score j is that of
the j-th listed detection in the detector's answer for the (perturbed) image:

- ``match`` (pytorch-grad-cam's ``FasterRCNNBoxScoreTarget``): the output box that
  overlaps the listed box most, when their IoU exceeds 0.5 and its class is the listed
  one, scores IoU + its score; otherwise 0.
- ``similarity`` (D-RISE, Petsiuk et al. 2021): the best similarity over all output
  boxes, IoU x [same class] x score. D-RISE compares whole class-probability vectors;
  detectors that report only their top class and its score (torchvision, ONNX exports)
  give a one-hot vector scaled by the score, which reduces to this product.

:class:`DetectionView` computes these from :meth:`DetectionModel.detect` for any
framework (forward passes only); adapters with gradients give their own view.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Literal

import numpy as np

from .model import Detection, DetectionModel, Model

Rule = Literal["match", "similarity"]

#: IoU above which an output box is the listed detection (pytorch-grad-cam's default).
MATCH_IOU = 0.5


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in ``a`` (K, 4) with every box in ``b`` (M, 4), x0 y0 x1 y1."""
    a, b = np.asarray(a, np.float64).reshape(-1, 4), np.asarray(b, np.float64).reshape(-1, 4)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    x0 = np.maximum(a[:, None, 0], b[None, :, 0])
    y0 = np.maximum(a[:, None, 1], b[None, :, 1])
    x1 = np.minimum(a[:, None, 2], b[None, :, 2])
    y1 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def detection_scores(
    found: Sequence[Detection], listed: Sequence[Detection], rule: Rule
) -> np.ndarray:
    """Score of every ``listed`` detection in one image's detections ``found``."""
    scores = np.zeros(len(listed), np.float32)
    if not found or not listed:
        return scores
    boxes = np.array([d.box for d in found])
    labels = np.array([d.label for d in found])
    values = np.array([d.score for d in found])
    ious = box_iou(np.array([d.box for d in listed]), boxes)
    for j, target in enumerate(listed):
        same = labels == target.label
        if rule == "similarity":
            scores[j] = float(np.max(ious[j] * same * values))
            continue
        best = int(np.argmax(ious[j]))
        if ious[j, best] > MATCH_IOU and same[best]:
            scores[j] = float(ious[j, best] + values[best])
    return scores


class DetectionView(Model):
    """A detector seen as a classifier with one score per listed detection (see the
    module's rules), from forward passes of any framework."""

    def __init__(self, detector: Model, detections: Sequence[Detection], rule: Rule) -> None:
        assert isinstance(detector, DetectionModel)
        super().__init__(replace(detector.info, output="scores"))
        self.detector = detector
        self.detections = tuple(detections)
        self.rule = rule

    def forward(self, batch: np.ndarray) -> np.ndarray:
        assert isinstance(self.detector, DetectionModel)
        found = self.detector.detect(batch)
        return np.stack([detection_scores(f, self.detections, self.rule) for f in found])


def similarity_view(view: Model) -> DetectionView | None:
    """The D-RISE view of the detector behind a detection view (None if ``view`` is
    not one)."""
    detector = getattr(view, "detector", None)
    detections = getattr(view, "detections", None)
    if detector is None or detections is None:
        return None
    return DetectionView(detector, detections, "similarity")
