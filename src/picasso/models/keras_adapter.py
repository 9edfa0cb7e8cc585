"""Keras 3 adapter: ``.keras`` and legacy ``.h5`` files, on whichever backend Keras
runs (TensorFlow, PyTorch or JAX); gradients through that backend's autodiff.

Keras is imported here only, when a Keras model is loaded. Files are loaded with
``compile=False``, so a model saved compiled under one backend loads under another.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import MissingDependencyError, ModelLoadError, PicassoError
from ..core.model import LAYERS, Model, ModelInfo, ScoreKind
from .card import ModelCard, hook_kwargs
from .protocols import BuildInfo
from .shapes import ChannelsMixin, preload_triton, probe_forward, resolve_input

SUFFIXES = (".keras", ".h5", ".hdf5")


def _keras() -> Any:
    preload_triton()
    try:
        import keras
    except ImportError:
        raise MissingDependencyError("keras", "keras", "Loading a Keras model") from None
    return keras


class KerasModel(ChannelsMixin, Model):
    """A Keras 3 model behind the framework-neutral surface."""

    def __init__(self, model: Any, info: ModelInfo, layout: str, **hooks: Any) -> None:
        super().__init__(info, **hooks)
        self.keras_model = model
        self.layout = layout
        self.backend = _keras().backend.backend()
        self._layer_models: dict = {}  # layer name -> model returning (activation, scores)

    def capability_problem(self, capability: str) -> str | None:
        problem = super().capability_problem(capability) or self.task_problem(capability)
        if problem is None and capability == LAYERS and self.backend not in _LAYER_GRADIENTS:
            return (
                f"layer gradients need Keras on the {' or '.join(sorted(_LAYER_GRADIENTS))} "
                f"backend (this one runs on {self.backend})"
            )
        return problem

    def raw_outputs(self, batch: np.ndarray) -> np.ndarray:
        keras = _keras()
        out = self.keras_model(self.to_network(batch), training=False)
        return np.asarray(keras.ops.convert_to_numpy(out))

    def forward(self, batch: np.ndarray) -> np.ndarray:
        return self.check_scores(self.raw_outputs(batch), len(batch))

    def gradients(
        self, batch: np.ndarray, targets: Sequence[int], score: ScoreKind = "logit"
    ) -> tuple[np.ndarray, np.ndarray]:
        x = self.to_network(batch)
        index = np.asarray(list(targets), dtype=np.int64)
        values, grads = _BACKEND_GRADIENTS[self.backend](self, x, index, score)
        return values, self.from_network(grads)

    def layer_names(self) -> list[str]:
        return [layer.name for layer in self.keras_model.layers[1:]]  # [0] is the input

    def layer_shapes(self, batch: np.ndarray) -> dict[str, tuple[int, ...]]:
        shapes = {}
        for layer in self.keras_model.layers[1:]:
            shape = (len(batch), *tuple(layer.output.shape)[1:])
            if len(shape) == 4 and self.layout == "NHWC":
                shape = (shape[0], shape[3], shape[1], shape[2])
            shapes[layer.name] = shape
        return shapes

    def layer_gradients(
        self, batch: np.ndarray, layer: str, targets: Sequence[int], score: ScoreKind = "logit"
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        keras = _keras()
        if layer not in self.layer_names():
            raise PicassoError(
                f"model {self.info.name!r} has no layer {layer!r}; its layers: "
                f"{', '.join(self.layer_names()[-8:])} (last 8)"
            )
        if layer not in self._layer_models:
            network = self.keras_model
            self._layer_models[layer] = keras.Model(
                network.inputs, [network.get_layer(layer).output, network.outputs[0]]
            )
        index = np.asarray(list(targets), dtype=np.int64)
        selected, activation, grads = _LAYER_GRADIENTS[self.backend](
            self, self._layer_models[layer], self.to_network(batch), index, score
        )
        if activation.ndim == 4 and self.layout == "NHWC":
            activation, grads = activation.transpose(0, 3, 1, 2), grads.transpose(0, 3, 1, 2)
        return selected, activation, grads

    # The selected score, in each backend's own operations.
    def _select(self, ops: Any, raw: Any, index: Any, score: ScoreKind) -> Any:
        if self.info.output == "probabilities":
            values = raw if score == "probability" else ops.log(ops.maximum(raw, 1e-30))
        else:
            values = ops.softmax(raw, axis=1) if score == "probability" else raw
        onehot = ops.one_hot(index, raw.shape[1])
        return ops.sum(values * ops.cast(onehot, values.dtype), axis=1)


def _tensorflow_gradients(model: KerasModel, x: Any, index: Any, score: ScoreKind) -> Any:
    import keras
    import tensorflow as tf

    x = tf.convert_to_tensor(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        selected = model._select(keras.ops, model.keras_model(x, training=False), index, score)
        total = tf.reduce_sum(selected)
    grads = tape.gradient(total, x)
    return selected.numpy(), grads.numpy()


def _torch_gradients(model: KerasModel, x: Any, index: Any, score: ScoreKind) -> Any:
    import keras
    import torch

    xt = torch.tensor(x, requires_grad=True)
    selected = model._select(keras.ops, model.keras_model(xt, training=False), index, score)
    (grads,) = torch.autograd.grad(selected.sum(), xt)
    return selected.detach().cpu().numpy(), grads.cpu().numpy()


def _jax_gradients(model: KerasModel, x: Any, index: Any, score: ScoreKind) -> Any:
    import jax
    import keras

    def total(inp: Any) -> Any:
        selected = model._select(keras.ops, model.keras_model(inp, training=False), index, score)
        return selected.sum(), selected

    (_, selected), grads = jax.value_and_grad(total, has_aux=True)(x)
    return np.asarray(selected), np.asarray(grads)


def _tensorflow_layer_gradients(
    model: KerasModel, two_headed: Any, x: Any, index: Any, score: ScoreKind
) -> Any:
    import keras
    import tensorflow as tf

    with tf.GradientTape() as tape:
        activation, raw = two_headed(tf.convert_to_tensor(x), training=False)
        selected = model._select(keras.ops, raw, index, score)
        total = tf.reduce_sum(selected)
    grads = tape.gradient(total, activation)
    return selected.numpy(), activation.numpy(), grads.numpy()


def _torch_layer_gradients(
    model: KerasModel, two_headed: Any, x: Any, index: Any, score: ScoreKind
) -> Any:
    import keras
    import torch

    activation, raw = two_headed(torch.tensor(x, requires_grad=True), training=False)
    selected = model._select(keras.ops, raw, index, score)
    (grads,) = torch.autograd.grad(selected.sum(), activation)
    return (selected.detach().cpu().numpy(), activation.detach().cpu().numpy(), grads.cpu().numpy())


_LAYER_GRADIENTS = {"tensorflow": _tensorflow_layer_gradients, "torch": _torch_layer_gradients}

_BACKEND_GRADIENTS = {
    "tensorflow": _tensorflow_gradients,
    "torch": _torch_gradients,
    "jax": _jax_gradients,
}


def load_keras(
    path: Path, card: ModelCard, overrides: dict[str, Any], build_info: BuildInfo
) -> KerasModel:
    keras = _keras()
    try:
        network = keras.saving.load_model(str(path), compile=False)
    except Exception as exc:
        detail = " ".join(str(exc).split())[:300]
        raise ModelLoadError(f"{path}: not a loadable Keras model ({detail})") from None
    if len(network.inputs) != 1:
        raise ModelLoadError(
            f"{path}: expected one image input, the model has {len(network.inputs)}"
        )
    shape = list(network.inputs[0].shape)
    info, layout = resolve_input(
        path,
        card,
        shape,
        "keras",
        {"format": path.suffix.lstrip("."), "backend": keras.backend.backend()},
        build_info,
    )
    model = KerasModel(network, info, layout, **hook_kwargs(card, overrides))
    probe_forward(model, path)
    return model


def detect(path: Path) -> bool:
    return path.suffix in SUFFIXES


load = load_keras
