"""What the report says of a trained model: test loss and accuracy, agreement with
the teacher, inference speed. The same measures for the teacher, the student
alone and the distilled student, whatever loss each was trained with."""

from __future__ import annotations

import time

import keras
import numpy as np
import tensorflow as tf

from tf_distill import data, losses

# Inference speed is measured in batches of this size on up to this many test
# examples, repeated until at least MIN_SECONDS have passed after a warm-up.
INFERENCE_BATCH = 256
INFERENCE_EXAMPLES = 2048
MIN_SECONDS = 1.0


def test_metrics(model: keras.Model, dataset: tf.data.Dataset) -> dict:
    """{"loss": mean cross-entropy, "accuracy", "classes": top-1 per example}."""
    total_loss, classes, labels = 0.0, [], []
    for x, y in dataset:
        logits = model(x, training=False)
        total_loss += float(tf.reduce_sum(losses.hard_loss(labels=y, logits=logits)))
        classes.append(np.argmax(logits, axis=-1))
        labels.append(y.numpy())
    classes, labels = np.concatenate(classes), np.concatenate(labels)
    return {
        "loss": total_loss / len(labels),
        "accuracy": float(np.mean(classes == labels)),
        "classes": classes,
    }


def evaluate(model: keras.Model, dataset: tf.data.Dataset) -> tuple[float, float]:
    """(mean cross-entropy, accuracy) of `model`'s logits on a labelled dataset."""
    metrics = test_metrics(model, dataset)
    return metrics["loss"], metrics["accuracy"]


def inference_examples_per_second(model: keras.Model, x: np.ndarray) -> float:
    """Examples per second of `model(x, training=False)` in a traced function,
    in batches of INFERENCE_BATCH on this machine (uint8 pixels in, logits out)."""
    ds = data.pipeline(x[:INFERENCE_EXAMPLES], batch_size=INFERENCE_BATCH).cache()
    predict = tf.function(
        lambda images: model(images, training=False), reduce_retracing=True
    )

    def one_pass():
        for (images,) in ds:
            out = predict(images)
        out.numpy()  # wait for the last batch

    one_pass()  # traces (a last, smaller batch too) and fills the cache
    passes, start = 0, time.perf_counter()
    while True:
        one_pass()
        passes += 1
        seconds = time.perf_counter() - start
        if seconds >= MIN_SECONDS:
            return passes * min(len(x), INFERENCE_EXAMPLES) / seconds
