"""SavedModel export for serving: one model alone, taking raw client pixels."""

from __future__ import annotations

from collections.abc import Sequence

import keras
import tensorflow as tf

from tf_distill import outputs

SIGNATURE = "serving_default"


def export_saved_model(
    model: keras.Model, path: str, *, input_shape: Sequence[int]
) -> None:
    """Writes `model` as a SavedModel at `path` with a `serving_default` signature.

    The signature takes `pixels`, uint8 of shape (batch, *input_shape) — the raw
    values, as in the data set — and returns `logits`, `probabilities` (softmax) and
    `class_id` (argmax). Rescaling is the model's first layer, so serving repeats
    training's preprocessing exactly. Only `model` is tracked: a student's export
    holds no teacher variable.
    """
    archive = keras.export.ExportArchive()
    archive.track(model)

    def serve(pixels):
        logits = tf.cast(model(tf.cast(pixels, tf.float32), training=False), tf.float32)
        return {
            "logits": logits,
            "probabilities": tf.nn.softmax(logits, axis=-1),
            "class_id": tf.argmax(logits, axis=-1, output_type=tf.int32),
        }

    spec = tf.TensorSpec((None, *input_shape), tf.uint8, name="pixels")
    archive.add_endpoint(SIGNATURE, serve, input_signature=[spec])
    with outputs.replacing_dir(path) as tmp:
        archive.write_out(tmp, verbose=False)
