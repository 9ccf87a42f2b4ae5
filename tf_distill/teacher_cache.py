"""The teacher's logits, computed once and reused by every distilled student;
`TeacherSignals` decides, per student, whether they are cached, cached on
augmented views (views.py) or computed in every step.

When the training images are not augmented, the teacher's outputs never change, so
one inference pass in large batches replaces a teacher pass in every training step
of every epoch; the logits then travel with their examples through the shuffled
pipeline (data.pipeline's `extra`). Both give the same loss on the same batch
(tests/test_train.py).
"""

from __future__ import annotations

import dataclasses
import time

import keras
import numpy as np
from absl import logging

from tf_distill import data, models, views


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


# How a distilled student gets the teacher's logits (metrics.json "teacher").
CACHED, VIEWS, PER_STEP = "cached", "cached_views", "per_step"


@dataclasses.dataclass(frozen=True)
class TeacherSignal:
    """What one distilled student trains with: the path, the validation batches
    (with the teacher's logits when cached), the training logits ((n, classes),
    or (n, K, classes) on views) and the views' parameters, the teacher's seconds."""

    path: str
    val_ds: object
    train_logits: np.ndarray | None = None
    params: np.ndarray | None = None
    seconds: float = 0.0
    views: int = 0

    def describe(self) -> dict:
        out = {"teacher": self.path}
        if self.path == VIEWS:
            out["cached_views"] = self.views
        return out


class TeacherSignals:
    """The teacher's logits for the distilled students of a run, computed once
    per teacher (a later generation's teacher is an earlier one's student)."""

    def __init__(self, settings, splits, x_train, strategy, val_ds):
        self.settings = settings
        self.splits = splits
        self.x_train = x_train  # what the distilled student trains on
        self.strategy = strategy
        self.val_ds = val_ds
        self._logits = self._logits_teacher = None
        self._views = self._views_teacher = None

    def of(self, teacher: keras.Model, features: bool = False) -> TeacherSignal:
        """Cached once per image (no augmentation), on K cached augmented views
        per image (settings.cached_views), or the teacher in every step
        (augmented images without views, a features method, caching off)."""
        s = self.settings
        augmented = s.augment.enabled_for(distilling=True)
        if not s.cache_teacher_logits or features or (augmented and not s.cached_views):
            why = ""
            if features:
                why = ": the method reads the teacher's features"
            elif augmented:
                why = ": the training images are augmented"
            logging.info("The teacher runs in every training step (not cached%s).", why)
            return TeacherSignal(PER_STEP, self.val_ds)
        (train_logits, val_logits), seconds = self._cached_logits(teacher)
        # The validation loss compares with the teacher's logits too.
        val_ds = data.pipeline(
            self.splits.x_val,
            self.splits.y_val,
            batch_size=s.batch_size,
            extra=val_logits,
        )
        if not augmented:
            return TeacherSignal(CACHED, val_ds, train_logits, seconds=seconds)
        params, logits, view_seconds = self._cached_views(teacher)
        return TeacherSignal(
            VIEWS,
            val_ds,
            logits,
            params=params,
            seconds=seconds + view_seconds,
            views=s.cached_views,
        )

    def _inference_copy(self, teacher):
        return models.teacher_for_inference(
            teacher, self.settings.teacher_dtype, self.strategy
        )

    def _cached_logits(self, teacher):
        """((train, val) logits, seconds) of the teacher on the raw images."""
        if self._logits is None or self._logits_teacher is not teacher:
            s = self.settings
            self._logits_teacher = teacher
            self._logits = compute(
                self._inference_copy(teacher),
                (self.x_train, self.splits.x_val),
                batch_size=s.teacher_batch_size,
                dtype=s.cache_dtype,
            )
        return self._logits

    def _cached_views(self, teacher):
        """(parameters, logits, seconds) of the teacher on the cached views."""
        if self._views is None or self._views_teacher is not teacher:
            s = self.settings
            params = views.draw_params(
                s.augment, len(self.x_train), s.cached_views, s.representative_seed
            )
            logits, seconds = views.teacher_logits(
                self._inference_copy(teacher),
                self.x_train,
                params,
                batch_size=s.teacher_batch_size,
                dtype=s.cache_dtype,
            )
            self._views_teacher = teacher
            self._views = (params, logits, seconds)
        return self._views
