"""The Python API: distil your own Keras teacher into your own Keras student.

    import tf_distill
    result = tf_distill.distill(
        teacher=my_teacher, student=my_student, train_data=train_ds,
        validation_data=val_ds, epochs=30, temperature=4.0, alpha=0.1)
    result.student.save("student.keras")

Any `keras.Model` that maps a batch of inputs to logits works, on your own tf.data
pipeline of `(x, y)` batches (integer labels). The command line's classifier path
uses the same pieces: `Distiller`, `methods`, `fitting.cosine_adam` and
`batches.pipeline`'s cached-logit batches.
"""

from __future__ import annotations

import dataclasses
import math
import time

import keras
import numpy as np
import tensorflow as tf

from tf_distill.data import batches
from tf_distill.distillation import methods
from tf_distill.distillation.distiller import Distiller
from tf_distill.teacher import cache
from tf_distill.training import fitting


@dataclasses.dataclass
class DistillResult:
    student: keras.Model  # the trained student (the one passed in), teacher-free
    history: dict[str, list[float]]  # per-epoch logs: loss, hard_loss, soft_loss, ...
    teacher_pass_seconds: float  # the caching pass; 0 when the teacher ran per step
    cached: bool  # whether the teacher's logits were cached


def distill(
    *,
    teacher: keras.Model,
    student: keras.Model,
    train_data: tf.data.Dataset,
    epochs: int,
    validation_data: tf.data.Dataset | None = None,
    temperature: float = 4.0,
    alpha: float = 0.1,
    method: methods.Method | None = None,
    optimizer: keras.optimizers.Optimizer | None = None,
    cache_teacher_logits: bool = True,
    validation_teacher: bool = False,
    seed: int = 0,
    callbacks: list[keras.callbacks.Callback] | None = None,
    verbose: int | str = "auto",
) -> DistillResult:
    """Distils `teacher` into `student` on your data; the teacher stays frozen.

    Args:
        teacher, student: Keras models from the same inputs to logits of the same
            number of classes.
        train_data: a finite tf.data.Dataset of `(x, y)` batches, `y` integer
            labels; validation_data the same, or None.
        epochs: training epochs.
        temperature, alpha: Hinton et al.'s T and the weight of the hard (label)
            loss; or pass another `method` (a `tf_distill.Method`) instead.
        optimizer: default Adam at 3e-3 with cosine decay to a tenth over training.
        cache_teacher_logits: run the teacher once over `train_data` (and
            `validation_data`), keep its logits with each example in memory, and
            train on reshuffled batches of them every epoch (`seed`): one teacher
            pass instead of one per step. Only right when `train_data` is the same
            each pass: with random augmentation in your pipeline, pass False and
            the teacher runs in every step on the student's batch.
        validation_teacher: also run the teacher over `validation_data` (cached
            with the training logits, or per step), so the history holds
            `val_soft_loss` and `val_agreement`; False validates on the labels
            alone (`val_loss` is then the student's cross-entropy) and spares
            that pass.
        callbacks, verbose: passed to `keras.Model.fit`.

    Returns:
        A `DistillResult`; `result.student` is `student`, trained.

    Raises:
        ValueError: models that do not match, or a batch that is not `(x, y)`.
    """
    _check_pair(teacher, student)
    if method is None:
        method = methods.KD(temperature=temperature, alpha=alpha)
    train_ds, steps_per_epoch, val, teacher_seconds = _batches(
        teacher,
        train_data,
        validation_data,
        cache=cache_teacher_logits,
        validation_teacher=validation_teacher,
        epochs=epochs,
        seed=seed,
    )
    with tf.distribute.get_strategy().scope():
        distiller = Distiller(
            student=student,
            teacher=None if cache_teacher_logits else teacher,
            method=method,
            validation_teacher=validation_teacher,
        )
        distiller.compile(
            optimizer=optimizer
            or fitting.cosine_adam(
                learning_rate=3e-3, total_steps=epochs * steps_per_epoch
            )
        )
    history = distiller.fit(
        train_ds,
        validation_data=val,
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
        callbacks=callbacks,
        verbose=verbose,
    )
    return DistillResult(
        student=student,
        history={k: [float(v) for v in vs] for k, vs in history.history.items()},
        teacher_pass_seconds=teacher_seconds,
        cached=cache_teacher_logits,
    )


def _batches(
    teacher, train_data, validation_data, *, cache, validation_teacher, epochs, seed
):
    """(training batches, steps per epoch, validation batches, seconds of the
    teacher's pass): with `cache`, batches carrying the teacher's logits from one
    pass; else the user's pipelines as they are (the teacher runs in each step)."""
    if not cache:
        # Repeated: fit's steps_per_epoch counts the epochs.
        return train_data.repeat(), _count_batches(train_data), validation_data, 0.0
    start = time.perf_counter()
    train_ds, steps, val = _cached_batches(
        teacher,
        train_data,
        validation_data if validation_teacher else None,
        epochs=epochs,
        seed=seed,
    )
    if not validation_teacher:
        val = validation_data  # the labels alone: as the user gave it
    return train_ds, steps, val, time.perf_counter() - start


def _cached_batches(teacher, train_data, validation_data, *, epochs, seed):
    """(training batches with the teacher's logits for every epoch, steps per epoch,
    validation batches with logits or None), from one teacher pass over each."""
    (x, y, logits), batch_size = _with_logits(teacher, train_data, "train_data")
    train_ds = batches.pipeline(
        x,
        y,
        extra=logits,
        batch_size=batch_size,
        shuffle_seed=seed,
        epochs=range(epochs),
    )
    val = None
    if validation_data is not None:
        (x_val, y_val, val_logits), val_batch = _with_logits(
            teacher, validation_data, "validation_data"
        )
        val = batches.pipeline(x_val, y_val, extra=val_logits, batch_size=val_batch)
    return train_ds, math.ceil(len(y) / batch_size), val


def _check_pair(teacher, student):
    for name, model in (("teacher", teacher), ("student", student)):
        if not isinstance(model, keras.Model):
            raise ValueError(
                f"{name} must be a keras.Model, got {type(model).__name__}"
            )
    t_out, s_out = teacher.output_shape, student.output_shape
    if t_out[-1] != s_out[-1]:
        raise ValueError(
            f"The teacher has {t_out[-1]} outputs and the student {s_out[-1]}: "
            "both must give logits over the same classes"
        )


def _with_logits(teacher, dataset, name):
    """((x, y, teacher logits) as arrays, batch size): the examples of one pass
    over `dataset`, then the teacher's logits on them (teacher.cache.compute)."""
    xs, ys, batch_size = [], [], None
    for element in dataset:
        if not isinstance(element, tuple) or len(element) != 2:
            raise ValueError(
                f"{name} must yield (x, y) batches; it yields {dataset.element_spec}"
            )
        x, y = element
        batch_size = batch_size or int(tf.shape(y)[0])
        xs.append(x.numpy())
        ys.append(y.numpy())
    if batch_size is None:
        raise ValueError(f"{name} is empty")
    x = np.concatenate(xs)
    logits, _ = cache.compute(teacher, x, batch_size=batch_size, dtype="float32")
    return (x, np.concatenate(ys), logits), batch_size


def _count_batches(dataset) -> int:
    count = int(dataset.cardinality())
    if count == tf.data.INFINITE_CARDINALITY:
        raise ValueError("train_data must be finite: one epoch of (x, y) batches")
    if count < 0:  # unknown: count one pass
        count = sum(1 for _ in dataset)
    if count == 0:
        raise ValueError("train_data is empty")
    return count
