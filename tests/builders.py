"""Model builders for the tests of `--config.<role>.arch=package.module:function`."""

import keras


def tiny_dense(input_shape, num_classes, *, input_scale=255.0):
    inputs = keras.Input(input_shape)
    x = keras.layers.Rescaling(1.0 / input_scale)(inputs)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(8, activation="relu")(x)
    return keras.Model(inputs, keras.layers.Dense(num_classes)(x))


def wrong_classes(input_shape, num_classes):
    inputs = keras.Input(input_shape)
    x = keras.layers.Flatten()(inputs)
    return keras.Model(inputs, keras.layers.Dense(num_classes + 1)(x))


def not_a_model(input_shape, num_classes):
    return "a model"


def raises(input_shape, num_classes):
    raise ValueError("bad value inside the builder")


def one_argument(input_shape):
    return tiny_dense(input_shape, 10)


class Unregistered(keras.layers.Layer):
    """A custom layer without @keras.saving.register_keras_serializable()."""

    def call(self, x):
        return x * 2.0


def unregistered_layer(input_shape, num_classes):
    inputs = keras.Input(input_shape)
    x = keras.layers.Flatten()(Unregistered()(inputs))
    return keras.Model(inputs, keras.layers.Dense(num_classes)(x))


def int_outputs(input_shape, num_classes):
    inputs = keras.Input(input_shape)
    x = keras.layers.Dense(num_classes)(keras.layers.Flatten()(inputs))
    return keras.Model(inputs, keras.ops.cast(x, "int32"))
