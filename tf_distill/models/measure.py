"""What the report says of a trained classifier: test loss and accuracy, agreement
with the teacher, inference speed.

`classification_metrics(logits, labels)` is the one definition of those measures:
a Keras model (`keras_logits`), a SavedModel and a LiteRT file (shipping/clients.py) all
produce logits and go through it, so their figures compare exactly.
"""

from __future__ import annotations

import dataclasses
import time

import keras
import numpy as np
import tensorflow as tf

from tf_distill.data import batches
from tf_distill.distillation import losses

# Inference speed is measured in batches of this size on up to this many test
# examples, repeated until at least MIN_SECONDS have passed after a warm-up.
INFERENCE_BATCH = 256
INFERENCE_EXAMPLES = 2048
INFERENCE_BYTES = 2**27  # 128 MiB of float32 images
MIN_SECONDS = 1.0


@dataclasses.dataclass(frozen=True)
class ClassMetrics:
    """A classifier's measures on a labelled split."""

    loss: float  # mean cross-entropy with the labels
    accuracy: float  # top-1
    logits: np.ndarray  # (examples, classes), float32
    agreement: float | None = None  # top-1 agreement with a teacher's logits

    @property
    def classes(self) -> np.ndarray:
        return np.argmax(self.logits, axis=-1)


def classification_metrics(
    logits: np.ndarray, labels: np.ndarray, *, teacher_logits: np.ndarray | None = None
) -> ClassMetrics:
    """Mean cross-entropy, accuracy and (given a teacher's logits) agreement."""
    logits = np.asarray(logits, np.float32)
    labels = np.asarray(labels)
    loss = losses.hard_loss(labels=labels, logits=logits)
    agreement = None
    if teacher_logits is not None:
        agreement = float(np.mean(losses.top1_agreement(teacher_logits, logits)))
    return ClassMetrics(
        loss=float(np.mean(loss)),
        accuracy=float(np.mean(np.argmax(logits, axis=-1) == labels)),
        logits=logits,
        agreement=agreement,
    )


def keras_logits(model: keras.Model, dataset: tf.data.Dataset) -> tuple:
    """(logits, labels) of `model` over a labelled dataset of (x, y) batches."""
    logits, labels = [], []
    for x, y, *_ in dataset:
        logits.append(np.asarray(model(x, training=False), np.float32))
        labels.append(y.numpy())
    return np.concatenate(logits), np.concatenate(labels)


def evaluate(
    model: keras.Model,
    dataset: tf.data.Dataset,
    *,
    teacher_logits: np.ndarray | None = None,
) -> ClassMetrics:
    """`classification_metrics` of a Keras model on a labelled dataset."""
    logits, labels = keras_logits(model, dataset)
    return classification_metrics(logits, labels, teacher_logits=teacher_logits)


def inference_examples_per_second(model: keras.Model, x: np.ndarray) -> float:
    """Examples per second of `model(x, training=False)` in a traced function,
    in batches of INFERENCE_BATCH on this machine (uint8 pixels in, logits out).
    The examples are cached as float32: at most INFERENCE_EXAMPLES, and at most
    INFERENCE_BYTES of them (one batch at least) for large images."""
    per_example = 4 * int(np.prod(x.shape[1:]))
    count = min(
        len(x), INFERENCE_EXAMPLES, max(INFERENCE_BATCH, INFERENCE_BYTES // per_example)
    )
    ds = batches.pipeline(x[:count], batch_size=INFERENCE_BATCH).cache()
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
            return passes * count / seconds
