"""The teacher's logits, computed once and reused by every distilled student.

When the training images are not augmented, the teacher's outputs never change, so
one inference pass in large batches replaces a teacher pass in every training step
of every epoch; the logits then travel with their examples through the shuffled
pipeline (data.pipeline's `extra`). Both give the same loss on the same batch
(tests/test_train.py).
"""

from __future__ import annotations

import time

import keras
import numpy as np
from absl import logging

from tf_distill import data


def teacher_logits(
    teacher: keras.Model, x: np.ndarray, *, batch_size: int = 256, dtype="float32"
) -> np.ndarray:
    """The teacher's logits on `x` (raw pixels), in one pass of large batches."""
    ds = data.pipeline(x, batch_size=batch_size)
    return np.asarray(teacher.predict(ds, verbose=0)).astype(dtype)


def compute(
    teacher: keras.Model, splits: tuple[np.ndarray, ...], *, batch_size: int, dtype: str
) -> tuple[tuple[np.ndarray, ...], float]:
    """(the teacher's logits on each array of `splits`, the seconds it took)."""
    start = time.perf_counter()
    logits = tuple(
        teacher_logits(teacher, x, batch_size=batch_size, dtype=dtype) for x in splits
    )
    seconds = time.perf_counter() - start
    logging.info(
        "Cached the teacher's logits for %s examples in %.1f s (stored as %s)",
        " + ".join(str(len(x)) for x in logits),
        seconds,
        dtype,
    )
    return logits, seconds
