"""The teacher's cached logits kept to their k largest (config.distill.cache_top_k).

FKD (Shen & Xing, ECCV 2022) stores each view's top-k soft labels instead of all of
them; this keeps, per example, the k largest logits, their classes and one *fill*
logit for every other class: the logit that spreads the probability the k leave
out evenly over the rest. So at temperature 1 the expanded logits give exactly the
teacher's probabilities of its k top classes and its total on the others; at
another temperature the others' share is approximate (they are taken as equal).
Its top-1 class, and so the agreement with the teacher, is always exact.

Memory: k + 1 numbers in config.distill.cache_dtype and k class indices (int16 up
to 32,768 classes) instead of `classes` numbers: for 1,000 classes at k = 10, 42
bytes instead of 2,000 in float16 per example and view.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf

# The fill logit is kept within this of the k-th largest logit: exp(-60) of its
# probability is far below what float32 sums resolve, and -inf would make the
# KL divergence 0 * -inf = NaN.
_FLOOR = 60.0


@dataclasses.dataclass(frozen=True)
class TopK:
    """Top-k logits of `n` examples (or (n, views)): `values[..., :k]` the k
    largest, `values[..., k]` the fill; `classes[..., j]` the class of value j."""

    values: np.ndarray  # (..., k + 1), the cache dtype
    classes: np.ndarray  # (..., k) int16 (int32 past 32,768 classes)
    num_classes: int

    @classmethod
    def of(cls, logits: np.ndarray, k: int, dtype: str = "float32") -> TopK:
        """The top-k form of (..., classes) logits; 0 < k < classes."""
        num_classes = logits.shape[-1]
        if not 0 < k < num_classes:
            raise ValueError(f"top-k needs 0 < k < {num_classes} classes, got {k}")
        z = np.asarray(logits, np.float64)
        classes = np.argsort(-z, axis=-1, kind="stable")[..., :k]
        top = np.take_along_axis(z, classes, axis=-1)
        peak = z.max(axis=-1, keepdims=True)
        log_total = peak + np.log(np.exp(z - peak).sum(axis=-1, keepdims=True))
        kept = np.exp(top - log_total).sum(axis=-1, keepdims=True)
        rest = np.maximum(1.0 - kept, 0.0)
        with np.errstate(divide="ignore"):
            fill = np.log(rest / (num_classes - k)) + log_total
        fill = np.maximum(fill, top[..., -1:] - _FLOOR)
        values = np.concatenate([top, fill], axis=-1).astype(dtype)
        index = np.int16 if num_classes <= np.iinfo(np.int16).max + 1 else np.int32
        return cls(values, classes.astype(index), num_classes)

    @property
    def k(self) -> int:
        return self.classes.shape[-1]

    def __len__(self) -> int:
        return len(self.values)

    @property
    def columns(self) -> tuple[np.ndarray, np.ndarray]:
        """The per-example arrays that travel through a pipeline
        (data.batches.pipeline's packed `extra`)."""
        return self.values, self.classes

    def expand_batch(self, values: tf.Tensor, classes: tf.Tensor) -> tf.Tensor:
        """A batch of `columns` as full float32 logits."""
        return expand(values, classes, self.num_classes)


def expand(values: tf.Tensor, classes: tf.Tensor, num_classes: int) -> tf.Tensor:
    """Full float32 (..., classes) logits from a batch of top-k values and classes:
    the fill everywhere, the k kept logits at their classes."""
    values = tf.cast(values, tf.float32)
    top, fill = values[..., :-1], values[..., -1:]
    hot = tf.one_hot(tf.cast(classes, tf.int32), num_classes, dtype=tf.float32)
    placed = tf.reduce_sum(hot * (top - fill)[..., None], axis=-2)
    return fill + placed
