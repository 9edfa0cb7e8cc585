"""TensorFlow adapter: SavedModel folders, through one of their signatures.

The signature is ``serving_default`` unless the model card names another
(``signature = "..."``); its single input, or the one named by ``input_name``, takes
the images, and its single output, or the one named by ``output_name``, gives class
scores. Gradients come from ``tf.GradientTape``. TensorFlow is imported here only.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import MissingDependencyError, ModelLoadError
from ..core.model import Model, ModelInfo, ScoreKind
from .card import ModelCard, hook_kwargs
from .protocols import BuildInfo
from .shapes import ChannelsMixin, preload_triton, probe_forward, resolve_input


def _tf() -> Any:
    preload_triton()
    try:
        import tensorflow as tf
    except ImportError:
        raise MissingDependencyError(
            "tensorflow", "tensorflow", "Loading a TensorFlow SavedModel"
        ) from None
    return tf


def is_saved_model(path: Path) -> bool:
    return path.is_dir() and (path / "saved_model.pb").is_file()


class TensorFlowModel(ChannelsMixin, Model):
    """A SavedModel signature behind the framework-neutral surface."""

    _saved: Any = None  # the loaded trackable object, kept alive with its variables

    def __init__(
        self,
        function: Any,
        input_name: str,
        output_name: str,
        info: ModelInfo,
        layout: str,
        **hooks: Any,
    ) -> None:
        super().__init__(info, **hooks)
        self.function = function
        self.input_name = input_name
        self.output_name = output_name
        self.layout = layout

    def capability_problem(self, capability: str) -> str | None:
        return super().capability_problem(capability) or self.task_problem(capability)

    def _call(self, x: Any) -> Any:
        return self.function(**{self.input_name: x})[self.output_name]

    def raw_outputs(self, batch: np.ndarray) -> np.ndarray:
        tf = _tf()
        return np.asarray(self._call(tf.constant(self.to_network(batch))).numpy())

    def forward(self, batch: np.ndarray) -> np.ndarray:
        return self.check_scores(self.raw_outputs(batch), len(batch))

    def gradients(
        self, batch: np.ndarray, targets: Sequence[int], score: ScoreKind = "logit"
    ) -> tuple[np.ndarray, np.ndarray]:
        tf = _tf()
        x = tf.constant(self.to_network(batch))
        with tf.GradientTape() as tape:
            tape.watch(x)
            raw = self._call(x)
            if self.info.output == "probabilities":
                values = raw if score == "probability" else tf.math.log(tf.maximum(raw, 1e-30))
            else:
                values = tf.nn.softmax(raw, axis=1) if score == "probability" else raw
            index = tf.constant([[int(t)] for t in targets])
            selected = tf.gather(values, index, batch_dims=1)[:, 0]
            total = tf.reduce_sum(selected)
        grads = tape.gradient(total, x)
        return selected.numpy(), self.from_network(grads.numpy())


def load_saved_model(
    path: Path, card: ModelCard, overrides: dict[str, Any], build_info: BuildInfo
) -> TensorFlowModel:
    tf = _tf()
    if not is_saved_model(path):
        raise ModelLoadError(f"{path}: not a SavedModel folder (no saved_model.pb)")
    try:
        loaded = tf.saved_model.load(str(path))
    except Exception as exc:
        detail = " ".join(str(exc).split())[:300]
        raise ModelLoadError(f"{path}: not a loadable SavedModel ({detail})") from None
    signatures = dict(loaded.signatures)
    name = card.signature or "serving_default"
    if name not in signatures:
        available = ", ".join(sorted(signatures)) or "none"
        raise ModelLoadError(
            f"{path}: no signature {name!r} (available: {available}); "
            "name one with signature = ... in the model card"
        )
    function = signatures[name]
    inputs = function.structured_input_signature[1]
    input_name = card.input_name or (next(iter(inputs)) if len(inputs) == 1 else None)
    if input_name is None or input_name not in inputs:
        raise ModelLoadError(
            f"{path}: signature {name!r} has inputs {sorted(inputs)}; "
            "name the image input with input_name = ... in the model card"
        )
    outputs = function.structured_outputs
    output_name = card.output_name or (next(iter(outputs)) if len(outputs) == 1 else None)
    if output_name is None or output_name not in outputs:
        raise ModelLoadError(
            f"{path}: signature {name!r} has outputs {sorted(outputs)}; "
            "name the class scores with output_name = ... in the model card"
        )
    shape = inputs[input_name].shape.as_list()
    info, layout = resolve_input(
        path, card, shape, "tensorflow", {"format": "saved_model", "signature": name}, build_info
    )
    model = TensorFlowModel(
        function, input_name, output_name, info, layout, **hook_kwargs(card, overrides)
    )
    model._saved = loaded  # keep the trackable object (and its variables) alive
    probe_forward(model, path)
    return model


def detect(path: Path) -> bool:
    return is_saved_model(path)


load = load_saved_model
