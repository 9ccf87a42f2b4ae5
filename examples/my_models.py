"""Your own model builders, used from the command line by name:

    python main.py --model=all \
        --config.teacher.arch=examples.my_models:wide_cnn \
        --config.student.arch=examples.my_models:small_cnn

A builder takes `(input_shape, num_classes)` and returns a `keras.Model` from the
data set's raw pixels (uint8 values as float32: 0..16 for digits, 0..255 for MNIST
and image folders) to logits. Taking an `input_scale` keyword, it is told the
largest raw value, to rescale in its first layer. tf-distill checks the model's
input shape and number of classes before training.
"""

import keras


def small_cnn(input_shape, num_classes, *, input_scale=255.0):
    """One small strided 3x3 convolution and the logits layer: a student."""
    inputs = keras.Input(input_shape)
    x = keras.layers.Rescaling(1.0 / input_scale)(inputs)
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(x)
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(num_classes)(x)
    return keras.Model(inputs, outputs, name="small_cnn")


def wide_cnn(input_shape, num_classes, *, input_scale=255.0):
    """Wider convolutions and dropout: a teacher."""
    inputs = keras.Input(input_shape)
    x = keras.layers.Rescaling(1.0 / input_scale)(inputs)
    x = keras.layers.Conv2D(32, 3, padding="same", activation="relu")(x)
    x = keras.layers.Conv2D(64, 3, strides=2, padding="same", activation="relu")(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dropout(0.3)(x)
    outputs = keras.layers.Dense(num_classes)(x)
    return keras.Model(inputs, outputs, name="wide_cnn")
