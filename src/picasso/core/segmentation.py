"""Segmentation models as classifiers, for any framework.

A segmentation model's explained score for class k is the sum of k's logits over a
region (pytorch-grad-cam's ``SemanticSegmentationTarget``). :class:`RegionView`
computes it from :meth:`SegmentationModel.segment`'s forward passes, so every
forward-only method (occlusion, RISE) explains segmentation models of every framework;
the PyTorch adapter gives its own view with gradients and layers.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from .model import Model, SegmentationModel


class RegionView(Model):
    """Score k = the sum of class k's logits over ``masks[k]`` (classes, H, W)."""

    def __init__(self, segmenter: Model, masks: np.ndarray) -> None:
        assert isinstance(segmenter, SegmentationModel)
        super().__init__(replace(segmenter.info, output="scores"))  # the sum, either way
        self.segmenter = segmenter
        self.masks = np.asarray(masks, dtype=np.float32)

    def forward(self, batch: np.ndarray) -> np.ndarray:
        assert isinstance(self.segmenter, SegmentationModel)
        logits = self.segmenter.segment(batch).astype(np.float64)
        return np.einsum("nkhw,khw->nk", logits, self.masks).astype(np.float32)
