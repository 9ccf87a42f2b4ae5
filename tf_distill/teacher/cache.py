"""The teacher's logits, computed once and reused by every distilled student;
`TeacherSignals` decides, per student, whether they are cached, cached on
augmented views (views.py) or computed in every step.

When the training images are not augmented, the teacher's outputs never change, so
one inference pass in large batches replaces a teacher pass in every training step
of every epoch; the logits then travel with their examples through the shuffled
pipeline (batches.pipeline's `extra`). Both give the same loss on the same batch
(tests/test_train.py).
"""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from tf_distill.data import batches
from tf_distill.models import loading
from tf_distill.teacher import store, topk, views
from tf_distill.training import distribute


def teacher_logits(
    teacher: keras.Model,
    x: np.ndarray,
    *,
    batch_size: int = 256,
    dtype="float32",
    local: bool = False,
) -> np.ndarray:
    """The teacher's logits on `x` (raw pixels), in one pass of large batches.

    `local`: on this process's devices alone. Under several workers `predict`
    is collective (each worker computes part of every batch and gathers the
    rest), so workers that each run their own part of a split pass
    (store.Part) call the model directly instead.
    """
    ds = batches.pipeline(x, batch_size=batch_size)
    if not local:
        return np.asarray(teacher.predict(ds, verbose=0)).astype(dtype)
    logits = tf.function(lambda images: teacher(images, training=False))
    return np.concatenate([np.asarray(logits(b)) for b in ds]).astype(dtype)


def compact(logits: np.ndarray, top_k: int) -> np.ndarray | topk.TopK:
    """`logits` kept to their `top_k` largest (topk.TopK); as they are when top_k
    is 0 or covers every class."""
    if not 0 < top_k < logits.shape[-1]:
        return logits
    return topk.TopK.of(logits, top_k, logits.dtype.name)


def per_step_reason(
    *, cache: bool, features: bool, augmented: bool, views: int
) -> str | None:
    """Why the teacher must run in every training step, or None when its logits
    are cached (once per image, or on cached views): the one place that decides,
    for TeacherSignals.of and for the config's validation."""
    if not cache:
        return "caching is off (distill.cache_teacher_logits)"
    if features:
        return "the method reads the teacher's features"
    if augmented and not views:
        return "the training images are augmented (and distill.cached_views is 0)"
    return None


# How a distilled student gets the teacher's logits (metrics.json "teacher").
CACHED, VIEWS, PER_STEP = "cached", "cached_views", "per_step"


@dataclasses.dataclass(frozen=True)
class TeacherSignal:
    """What one distilled student trains with: the path, the validation batches
    (with the teacher's logits when cached), the training logits ((n, classes),
    or (n, K, classes) on views, or their topk.TopK form) and the views'
    parameters, the teacher's seconds."""

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
        if isinstance(self.train_logits, topk.TopK):
            out["cache_top_k"] = self.train_logits.k
        return out

    def training_batches(
        self, x, y, *, batch_size, shuffle_seed, epochs, augment, share
    ):
        """The distilled student's training batches for `epochs` (a range):
        (pixels, labels, the teacher's logits) from the cache or the views, or
        (pixels, labels) for the teacher in every step; the other arguments as
        batches.pipeline's."""
        if self.path == VIEWS:
            return views.pipeline(
                x,
                y,
                self.params,
                self.train_logits,
                batch_size=batch_size,
                shuffle_seed=shuffle_seed,
                epochs=epochs,
                share=share,
            )
        return batches.pipeline(
            x,
            y,
            batch_size=batch_size,
            extra=self.train_logits,
            shuffle_seed=shuffle_seed,
            epochs=epochs,
            augment=augment,
            share=share,
        )


class TeacherSignals:
    """The teacher's logits for the distilled students of a run, computed once
    per teacher (a later generation's teacher is an earlier one's student) and
    kept on disk in `cache_dir(name)` (teacher/store.py), where a later run with
    the same teacher, images and settings reads them back."""

    def __init__(self, settings, splits, x_train, strategy, val_ds, cache_dir):
        self.settings = settings
        self.cache_dir = cache_dir
        self.splits = splits
        self.x_train = x_train  # what the distilled student trains on
        self.strategy = strategy
        self.val_ds = val_ds
        self._teacher, self._logits = None, {}  # split -> (logits, seconds)
        self._views = self._views_teacher = None
        index, workers = distribute.worker_index(strategy)
        self.part = None  # the whole pass here, or this worker's part of it
        if settings.split_teacher_pass and workers > 1:
            self.part = store.Part(index, workers, settings.worker_patience)

    def of(self, teacher: keras.Model, features: bool = False) -> TeacherSignal:
        """Cached once per image (no augmentation), on K cached augmented views
        per image (settings.cached_views), or the teacher in every step
        (augmented images without views, a features method, caching off). The
        validation split gets the teacher's logits only with
        settings.validation_teacher."""
        s = self.settings
        augmented = s.augment.enabled_for(distilling=True)
        why = per_step_reason(
            cache=s.cache_teacher_logits,
            features=features,
            augmented=augmented,
            views=s.cached_views,
        )
        if why:
            logging.info(
                "The teacher runs in every training step (not cached: %s).", why
            )
            return TeacherSignal(PER_STEP, self.val_ds)
        val_ds, val_seconds = self._validation(teacher)
        if not augmented:
            train_logits, seconds = self._cached(teacher, "train")
            return TeacherSignal(
                CACHED, val_ds, train_logits, seconds=seconds + val_seconds
            )
        params, logits, view_seconds = self._cached_views(teacher)
        return TeacherSignal(
            VIEWS,
            val_ds,
            logits,
            params=params,
            seconds=view_seconds + val_seconds,
            views=s.cached_views,
        )

    def _validation(self, teacher):
        """(validation batches, with the teacher's logits if asked for; seconds)."""
        if not self.settings.validation_teacher:
            logging.info(
                "Validation on the labels alone: the teacher does not see the "
                "validation split (config.distill.validation_teacher=False)"
            )
            return self.val_ds, 0.0
        val_logits, seconds = self._cached(teacher, "validation")
        val_ds = batches.pipeline(
            self.splits.x_val,
            self.splits.y_val,
            batch_size=self.settings.batch_size,
            extra=val_logits,
        )
        return val_ds, seconds

    def _inference_copy(self, teacher):
        return loading.teacher_for_inference(
            teacher, self.settings.teacher_dtype, self.strategy
        )

    def _cached(self, teacher, split):
        """(the teacher's logits on the raw images of `split`, "train" or
        "validation", and the seconds they took), computed once per teacher."""
        if self._teacher is not teacher:
            self._teacher, self._logits = teacher, {}
        if split not in self._logits:
            s = self.settings
            x = self.x_train if split == "train" else self.splits.x_val
            copy = self._inference_copy(teacher)

            def rows(start, stop):
                logits = teacher_logits(
                    copy,
                    x[start:stop],
                    batch_size=s.teacher_batch_size,
                    dtype=s.cache_dtype,
                    local=self.part is not None,
                )
                return _packed(compact(logits, s.cache_top_k))

            stored, seconds = store.cached_rows(
                self.cache_dir(split),
                made_from=self._made_from(teacher, x),
                count=len(x),
                compute=rows,
                what=f"the teacher's logits on {len(x)} {split} images",
                part=self.part,
            )
            self._logits[split] = (_unpacked(stored, self.splits.num_classes), seconds)
        return self._logits[split]

    def _made_from(self, teacher, x, *extra) -> dict[str, str]:
        """What cached logits depend on (store.cached_rows' `made_from`)."""
        s = self.settings
        return {
            "teacher": store.fingerprint(teacher),
            "data": store.fingerprint(x),
            "settings": store.fingerprint(
                s.cache_dtype, s.cache_top_k, s.teacher_dtype, *extra
            ),
        }

    def _cached_views(self, teacher):
        """(parameters, logits, seconds) of the teacher on the cached views."""
        if self._views is None or self._views_teacher is not teacher:
            s = self.settings
            x = self.x_train
            params = views.draw_params(s.augment, len(x), s.cached_views, s.seed)
            copy = self._inference_copy(teacher)

            def rows(start, stop):
                logits = views.teacher_logits(
                    copy,
                    x,
                    params,
                    batch_size=s.teacher_batch_size,
                    dtype=s.cache_dtype,
                    rows=range(start, stop),
                )
                return _packed(compact(logits, s.cache_top_k))

            stored, seconds = store.cached_rows(
                self.cache_dir("views"),
                made_from=self._made_from(teacher, x, store.fingerprint(params)),
                count=len(x),
                compute=rows,
                what=f"the teacher's logits on {s.cached_views} views of "
                f"{len(x)} images",
                part=self.part,
            )
            self._views_teacher = teacher
            self._views = (params, _unpacked(stored, self.splits.num_classes), seconds)
        return self._views


def _packed(logits: np.ndarray | topk.TopK) -> dict[str, np.ndarray]:
    """Logits as the named arrays a cache file holds."""
    if isinstance(logits, topk.TopK):
        return {"values": logits.values, "classes": logits.classes}
    return {"logits": logits}


def _unpacked(rows: dict[str, np.ndarray], num_classes: int) -> np.ndarray | topk.TopK:
    if "logits" in rows:
        return rows["logits"]
    return topk.TopK(rows["values"], rows["classes"], num_classes)
