"""Attention rollout (Abnar & Zuidema 2020) for vision transformers.

Each layer's attention A (heads fused by their mean, max or min; optionally the weakest
``discard_ratio`` of the weights dropped, never the class token's own) is mixed with the
residual connection, (A + I) / 2, and its rows renormalised; the product over layers,
from the first to the last, says how much each input token flows into each output
token. The map is the class token's row over the patch tokens, on the patch grid,
resized to the input (bilinear) and min-max normalised to [0, 1].

The map does not depend on the class (attention is computed before the classifier):
every target gets the same map. Cost: one forward pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
from pydantic import Field

from ..core.errors import SettingsError
from ..core.method import Method, MethodOutput, MethodSettings
from ..core.model import ATTENTIONS, AttentionModel, Model, require
from ..core.progress import Progress
from .grad_cam import normalise, token_grid
from .imaging import resize_bilinear


class RolloutSettings(MethodSettings):
    head_fusion: Literal["mean", "max", "min"] = Field(
        "mean", description="How the heads of a layer are combined."
    )
    discard_ratio: float = Field(
        0.0,
        ge=0.0,
        lt=1.0,
        description="Share of each layer's weakest attention weights set to zero "
        "(0.9 gives sharper maps in the authors' code).",
    )


def rollout(
    attentions: Sequence[np.ndarray], head_fusion: str = "mean", discard_ratio: float = 0.0
) -> np.ndarray:
    """The rolled-out attention (N, tokens, tokens) of per-layer (N, heads, T, T)."""
    result = None
    for layer in attentions:
        heads = layer.astype(np.float64)
        if head_fusion == "max":
            fused = heads.max(axis=1)
        elif head_fusion == "min":
            fused = heads.min(axis=1)
        else:
            fused = heads.mean(axis=1)
        if discard_ratio > 0:
            flat = fused.reshape(len(fused), -1)
            count = int(flat.shape[1] * discard_ratio)
            for row in flat:
                weakest = np.argsort(row, kind="stable")[:count]
                row[weakest[weakest != 0]] = 0  # never the class token's own weight
        tokens = fused.shape[-1]
        mixed = (fused + np.eye(tokens)) / 2
        mixed /= mixed.sum(axis=-1, keepdims=True)
        result = mixed if result is None else mixed @ result
    assert result is not None
    return result


class AttentionRollout(Method):
    """How much each patch flows into the class token through the attention layers."""

    name = "attention-rollout"
    description = "Attention multiplied through the layers: which patches reach the class token."
    reference = "https://arxiv.org/abs/2005.00928"
    cost = "1 forward pass (the same map for every class)"
    Settings = RolloutSettings
    quantity = "rolled-out attention (normalised)"
    requires = frozenset({ATTENTIONS})
    signed = False

    def explain(
        self,
        model: Model,
        batch: np.ndarray,
        targets: Sequence[int],
        settings: RolloutSettings,
        progress: Progress,
    ) -> MethodOutput:
        progress(0, 1)
        weights = require(model, AttentionModel).attentions(batch)
        rolled = rollout(weights, settings.head_fusion, settings.discard_ratio)[0]
        grid = token_grid((1, rolled.shape[0], 1))
        if grid is None:
            raise SettingsError(
                f"{self.name}: {rolled.shape[0]} tokens are not a square grid of patches "
                "after up to eight class/register tokens"
            )
        extra, side = grid
        patches = rolled[0, extra:].reshape(side, side)
        height, width = batch.shape[2:]
        resized = resize_bilinear(normalise(patches).astype(np.float32), height, width)
        progress(1, 1)
        maps = np.repeat(normalise(resized)[None], len(targets), axis=0).astype(np.float32)
        return MethodOutput(maps=maps, extras={"layers": len(weights), "grid": side})
