"""Keras (tf_keras) model, optimizer and loss from the spec's names.

Custom references mirror the PyTorch side:
  * model ``module:function`` -> ``function(**model_args)`` returning a ``tf.keras.Model`` that
    outputs logits; it also gets ``input_shape`` and ``num_classes`` if its signature accepts them.
  * optimizer ``module:function`` -> ``function(lr=..., **optimizer_args)`` returning a Keras optimizer.
  * loss ``module:function`` -> the loss itself, called as ``loss(y_true, y_pred)``.

Inputs shaped like images are channels-first (C, H, W), as on the PyTorch side, so one data set
works for both frameworks; the conv net transposes internally.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, Sequence, Tuple

import tensorflow as tf

from hvdrun_cli.spec.model import JobSpec

from . import plugins
from .base import train_of
from .data import image_shape

keras = tf.keras


def mlp(input_shape: Tuple[int, ...], num_classes: int, hidden: Sequence[int] = (64,),
        dropout: float = 0.0) -> "keras.Model":
    """Fully connected classifier producing logits (float32 even under mixed precision)."""
    layers: list = [keras.layers.Input(shape=input_shape), keras.layers.Flatten()]
    for units in hidden:
        layers.append(keras.layers.Dense(int(units), activation="relu"))
        if dropout:
            layers.append(keras.layers.Dropout(float(dropout)))
    layers.append(keras.layers.Dense(num_classes, dtype="float32"))
    return keras.Sequential(layers)


def cnn(input_shape: Tuple[int, ...], num_classes: int, channels: Sequence[int] = (16, 32),
        hidden: int = 64) -> "keras.Model":
    """Small conv net for tiny images: 3x3 convs, one 2x2 pool, a dense head."""
    c, h, w = image_shape(input_shape)
    layers: list = [keras.layers.Input(shape=input_shape), keras.layers.Reshape((c, h, w)),
                    keras.layers.Permute((2, 3, 1))]  # to channels-last, which CPU kernels support
    for out_ch in channels:
        layers.append(keras.layers.Conv2D(int(out_ch), 3, padding="same", activation="relu"))
    layers += [keras.layers.MaxPooling2D(2), keras.layers.Flatten(),
               keras.layers.Dense(int(hidden), activation="relu"), keras.layers.Dense(num_classes, dtype="float32")]
    return keras.Sequential(layers)


MODELS: Dict[str, Tuple[Callable[..., Any], Tuple[str, ...]]] = {
    "mlp": (mlp, ("hidden", "dropout")),
    "cnn": (cnn, ("channels", "hidden")),
}


def build_model(spec: JobSpec, input_shape: Tuple[int, ...], num_classes: Callable[[], int]) -> "keras.Model":
    return plugins.build_model(spec, MODELS, keras.Model, "tf.keras.Model", input_shape, num_classes)


_OPTIMIZER_ARGS = {"sgd": ("nesterov",), "adam": ("beta_1", "beta_2", "epsilon", "amsgrad"),
                   "adamw": ("beta_1", "beta_2", "epsilon", "amsgrad")}


def build_optimizer(spec: JobSpec, lr: float) -> Any:
    """The base optimizer (Horovod wraps it). Keras applies ``weight_decay`` decoupled, like AdamW."""
    train = train_of(spec)
    args = dict(train.optimizer_args)
    if plugins.is_reference(train.optimizer):
        fn = plugins.resolve(train.optimizer, "train.optimizer", spec)
        return plugins.call_checked(fn, (), {"lr": lr, **args}, "train.optimizer_args", train.optimizer)
    name = train.optimizer.lower()
    if name not in _OPTIMIZER_ARGS:
        raise plugins.unknown_builtin("train.optimizer", train.optimizer, tuple(_OPTIMIZER_ARGS))
    plugins.check_args("optimizer", name, args, _OPTIMIZER_ARGS[name])
    decay = train.weight_decay or None
    if name == "sgd":
        return keras.optimizers.SGD(learning_rate=lr, momentum=train.momentum, weight_decay=decay, **args)
    if name == "adam":
        return keras.optimizers.Adam(learning_rate=lr, weight_decay=decay, **args)
    return keras.optimizers.AdamW(learning_rate=lr, weight_decay=train.weight_decay, **args)


def _mse_on_classes(y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
    """MSE against one-hot targets when labels are class indices."""
    y_true = tf.one_hot(tf.cast(tf.reshape(y_true, [-1]), tf.int32), tf.shape(y_pred)[-1], dtype=y_pred.dtype)
    return tf.reduce_mean(tf.square(y_pred - y_true), axis=-1)


def build_loss(spec: JobSpec) -> Any:
    name = train_of(spec).loss
    if plugins.is_reference(name):
        return plugins.resolve(name, "train.loss", spec)
    if name == "cross_entropy":
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    if name == "mse":
        return _mse_on_classes
    raise plugins.unknown_builtin("train.loss", name, ("cross_entropy", "mse"))
