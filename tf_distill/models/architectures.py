"""Model builders, picked by name from `MODELS` or imported from the user's code.

Every model takes raw pixels (float32 holding the uint8 values) and rescales them in
its first layer, so training, evaluation and the exported SavedModel all preprocess
the same way. Every model returns logits, computed in float32 even under a mixed
precision policy, because the distillation loss divides them by a temperature and
exponentiates.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
import tempfile
from collections.abc import Sequence

import keras

from tf_distill import imports
from tf_distill.models import loading
from tf_distill.outputs import files


def mlp(inputs, *, layers: Sequence[int], dropout: float):
    """Dense layers with ReLU (and dropout after each, if > 0): the features.

    Hinton et al. (2015) used 1200-1200 teachers and 800-800 students on MNIST;
    `layers` are the hidden widths.
    """
    x = keras.layers.Flatten()(inputs)
    for i, units in enumerate(layers):
        x = keras.layers.Dense(units, activation="relu", name=f"dense_{i}")(x)
        if dropout:
            x = keras.layers.Dropout(dropout, name=f"dropout_{i}")(x)
    return x


def cnn(inputs, *, layers: Sequence[int], dropout: float):
    """The keras.io distillation example's CNN; `layers` are the Conv2D filters.

    Each Conv2D is 3x3, stride 2, "same" padding; every conv but the last is
    followed by LeakyReLU(0.2) and a 2x2 max-pool with stride 1, the last goes
    straight to Flatten (as published, so its numbers can be reproduced).
    """
    x = inputs
    for i, filters in enumerate(layers):
        x = keras.layers.Conv2D(
            filters, 3, strides=2, padding="same", name=f"conv_{i}"
        )(x)
        if i < len(layers) - 1:
            x = keras.layers.LeakyReLU(negative_slope=0.2, name=f"leaky_relu_{i}")(x)
            x = keras.layers.MaxPooling2D(
                2, strides=1, padding="same", name=f"pool_{i}"
            )(x)
    x = keras.layers.Flatten()(x)
    if dropout:
        x = keras.layers.Dropout(dropout)(x)
    return x


def convnet(inputs, *, layers: Sequence[int], dropout: float):
    """A plain VGG-style CNN; `layers` are the Conv2D filters.

    Each Conv2D is 3x3, stride 1, "same" padding, ReLU, then a 2x2 max-pool; the
    features are flattened (dropout after, if > 0). Stronger than `cnn` for the
    same filters: it convolves at full resolution and every conv is nonlinear
    (configs/fashion_mnist_recommended.py's teacher).
    """
    x = inputs
    for i, filters in enumerate(layers):
        x = keras.layers.Conv2D(
            filters, 3, padding="same", activation="relu", name=f"conv_{i}"
        )(x)
        x = keras.layers.MaxPooling2D(2, name=f"pool_{i}")(x)
    x = keras.layers.Flatten()(x)
    if dropout:
        x = keras.layers.Dropout(dropout)(x)
    return x


def application(name: str):
    """A Keras Applications network by name, headless, as a features body.

    Built with `weights=None` (random initial weights) or a local weights file
    (`config.teacher.weights`; nothing is downloaded), average-pooled features
    out. It gets pixels scaled to 0..255, what MobileNetV3 and EfficientNet expect
    (their own preprocessing is inside them); ResNet50's ImageNet weights would
    expect caffe-style inputs, which are not applied: use it from random weights
    or with weights trained on 0..255 inputs.
    """

    def body(inputs, *, layers, dropout, weights=None):
        del layers  # the architecture is fixed by its name
        if weights is not None and not os.path.isfile(weights):
            raise FileNotFoundError(f"Weights file not found: {weights}")
        network = getattr(keras.applications, APPLICATIONS[name])(
            include_top=False,
            weights=weights,
            input_shape=tuple(inputs.shape[1:]),
            pooling="avg",
        )
        x = network(inputs)
        if dropout:
            x = keras.layers.Dropout(dropout)(x)
        return x

    return body


# Keras Applications usable as teacher or student, by config name.
APPLICATIONS = {
    "resnet50": "ResNet50",
    "mobilenet_v3_small": "MobileNetV3Small",
    "efficientnet_b0": "EfficientNetB0",
}
MODELS = {
    "mlp": mlp,
    "cnn": cnn,
    "convnet": convnet,
    **{name: application(name) for name in APPLICATIONS},
}


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """What to build: `arch` is a name in MODELS or `package.module:function`."""

    arch: str
    layers: tuple[int, ...] = ()  # Dense units (mlp) or Conv2D filters (cnn, convnet)
    dropout: float = 0.0
    weights: str | None = None  # a local weights file for a Keras Applications arch
    epochs: int = 1


def is_imported(arch: str) -> bool:
    """Whether `arch` names a user's builder, `package.module:function`."""
    return imports.is_named_import(arch)


def build(
    spec: ModelSpec,
    *,
    input_shape: Sequence[int],
    num_classes: int,
    input_scale: float,
    name: str,
) -> keras.Model:
    """Builds `spec.arch` as a Keras model from raw pixels to logits.

    A name in MODELS gets the rescaling first layer and float32 logits layer every
    built-in model has. `package.module:function` imports the user's builder and
    calls `function(input_shape, num_classes)` (with `input_scale=`, the largest
    raw pixel value, if it takes that keyword); the model it returns must map raw
    pixels of `input_shape` to `num_classes` logits.

    Raises:
        ValueError: an unknown or unimportable arch, or a user model that does not
            fit the data (the message names it).
    """
    if is_imported(spec.arch):
        return _build_imported(spec.arch, input_shape, num_classes, input_scale)
    if spec.arch not in MODELS:
        raise ValueError(
            f"Unknown model arch {spec.arch!r}; valid: {', '.join(MODELS)}, or "
            "package.module:function"
        )
    inputs = keras.Input(shape=tuple(input_shape), name="pixels")
    body_options = {"layers": tuple(spec.layers), "dropout": spec.dropout}
    if spec.arch in APPLICATIONS:
        scale = 255.0 / input_scale  # applications take 0..255
        body_options["weights"] = spec.weights
    elif spec.weights is not None:
        raise ValueError(
            f"A weights file ({spec.weights!r}) is for Keras Applications "
            f"({', '.join(APPLICATIONS)}), not arch {spec.arch!r}"
        )
    else:
        scale = 1.0 / input_scale
    x = keras.layers.Rescaling(scale, name="rescale")(inputs)
    # The body returns features; the float32 logits layer is common to all.
    x = MODELS[spec.arch](x, **body_options)
    logits = keras.layers.Dense(num_classes, dtype="float32", name="logits")(x)
    return keras.Model(inputs, logits, name=name)


def import_builder(arch: str):
    """The function `package.module:function` names.

    Raises:
        ValueError: naming `arch` and why it cannot be imported.
    """
    builder = imports.import_named(arch, what="Model builder", kind="function")
    if not callable(builder):
        raise ValueError(f"Model builder {arch!r} is not a function")
    return builder


def _build_imported(arch, input_shape, num_classes, input_scale):
    builder = import_builder(arch)
    options = {}
    if "input_scale" in inspect.signature(builder).parameters:
        options["input_scale"] = float(input_scale)
    try:
        model = builder(tuple(input_shape), int(num_classes), **options)
    except Exception as e:  # the user's code: say whose, and what a builder is
        raise ValueError(
            f"Model builder {arch!r} raised {type(e).__name__}: {e} (a builder is "
            "f(input_shape, num_classes, *, input_scale=...) returning a "
            "keras.Model)"
        ) from None
    if not isinstance(model, keras.Model):
        raise ValueError(
            f"Model builder {arch!r} returned {type(model).__name__}, not a keras.Model"
        )
    loading.check_fits(
        model, input_shape=input_shape, num_classes=num_classes, path=arch
    )
    with tempfile.TemporaryDirectory() as folder:  # before it trains, not after
        path = os.path.join(folder, "model.keras")
        files.save_keras(model, path, what=f"Model builder {arch!r}'s model")
    return model


def build_for(spec: ModelSpec, splits, *, name: str) -> keras.Model:
    """`build` for a data set's `Splits`: its input shape, classes and scale."""
    return build(
        spec,
        input_shape=splits.input_shape,
        num_classes=splits.num_classes,
        input_scale=splits.input_scale,
        name=name,
    )
