"""The Python API: distil your own Keras teacher into your own Keras student.

    import tf_distill
    result = tf_distill.distill(
        teacher=my_teacher, student=my_student, train_data=train_ds,
        validation_data=val_ds, epochs=30, temperature=4.0, alpha=0.1)
    result.student.save("student.keras")

Any `keras.Model` that maps a batch of inputs to logits works, on your own tf.data
pipeline of `(x, y)` batches (integer labels). The command line's classifier path
uses the same `Distiller`, `methods` and `fitting.cosine_adam`; the teacher's
logits are cached by one pass over your pipeline, written to disk with its
examples and streamed back each epoch (teacher/stream.py).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import tempfile

import keras
import tensorflow as tf

from tf_distill import api_checks
from tf_distill.distillation import methods
from tf_distill.distillation.distiller import Distiller
from tf_distill.teacher import stream
from tf_distill.training import fitting, resume


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
    cache_dir: str | None = None,
    shuffle_buffer: int = 10_000,
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
        cache_teacher_logits: read `train_data` once, run the teacher on each
            batch and write (x, y, logits) to disk (teacher/stream.py); every
            epoch then streams them back, reshuffled within `shuffle_buffer`
            examples (`seed`): one teacher pass instead of one per step, and
            memory set by the batch and the buffer, not by the data. The student
            trains on the examples as that one pass yielded them, so with random
            augmentation in your pipeline pass False: the teacher then runs in
            every step on the student's batch.
        validation_teacher: also run the teacher over `validation_data` (cached
            with the training logits, or per step), so the history holds
            `val_soft_loss` and `val_agreement`; False validates on the labels
            alone (`val_loss` is then the student's cross-entropy) and spares
            that pass.
        cache_dir: where the cached examples go, in its `train/` and
            `validation/` sub-folders, which each call replaces (the pipeline's own
            size on disk, plus 4 bytes per class per example); None: a temporary
            folder, removed when `distill` returns.
        shuffle_buffer: examples shuffled together each epoch on the cached
            path (the shards are also read in a new order each epoch).
        callbacks, verbose: passed to `keras.Model.fit`.

    Returns:
        A `DistillResult`; `result.student` is `student`, trained.

    Raises:
        ValueError: before any training, naming the argument: models that do not
            match or share weights, a teacher that gives probabilities (remove
            its softmax), data that is not a finite tf.data.Dataset of `(x, y)`
            batches fitting both models (integer labels in range).
        resume.TrainingDiverged (a ValueError): the loss became NaN or infinite
            (lower the optimizer's learning rate); the student is then garbage.
    """
    api_checks.check_models(teacher, student)
    api_checks.check_epochs(epochs)
    api_checks.check_data(train_data, "train_data", teacher, student)
    if validation_data is not None:
        api_checks.check_data(validation_data, "validation_data", teacher, student)
    if method is None:
        method = methods.KD(temperature=temperature, alpha=alpha)
    with contextlib.ExitStack() as stack:
        if cache_dir is None and cache_teacher_logits:
            cache_dir = stack.enter_context(tempfile.TemporaryDirectory())
        train_ds, steps_per_epoch, val, teacher_seconds = _batches(
            teacher,
            train_data,
            validation_data,
            cache_dir=cache_dir if cache_teacher_logits else None,
            validation_teacher=validation_teacher,
            shuffle_buffer=shuffle_buffer,
            seed=seed,
        )
        history = _fit(
            student,
            teacher=None if cache_teacher_logits else teacher,
            method=method,
            optimizer=optimizer,
            train_ds=train_ds,
            steps_per_epoch=steps_per_epoch,
            val=val,
            epochs=epochs,
            validation_teacher=validation_teacher,
            callbacks=callbacks,
            verbose=verbose,
        )
    return DistillResult(
        student=student,
        history={k: [float(v) for v in vs] for k, vs in history.history.items()},
        teacher_pass_seconds=teacher_seconds,
        cached=cache_teacher_logits,
    )


def _fit(
    student,
    *,
    teacher,
    method,
    optimizer,
    train_ds,
    steps_per_epoch,
    val,
    epochs,
    validation_teacher,
    callbacks,
    verbose,
):
    """The Distiller over the batches `_batches` gave; its Keras history."""
    with tf.distribute.get_strategy().scope():
        distiller = Distiller(
            student=student,
            teacher=teacher,
            method=method,
            validation_teacher=validation_teacher,
        )
        distiller.compile(
            optimizer=optimizer
            or fitting.cosine_adam(
                learning_rate=3e-3, total_steps=epochs * steps_per_epoch
            )
        )
    # The cached stream ends with each epoch; the user's pipeline is repeated
    # and counted in steps.
    return distiller.fit(
        train_ds,
        validation_data=val,
        epochs=epochs,
        steps_per_epoch=None if teacher is None else steps_per_epoch,
        callbacks=[
            *(callbacks or []),
            resume.StopOnNaN("student", steps_per_epoch, "learning rate (optimizer=)"),
        ],
        verbose=verbose,
    )


def _batches(
    teacher,
    train_data,
    validation_data,
    *,
    cache_dir,
    validation_teacher,
    shuffle_buffer,
    seed,
):
    """(training batches, steps per epoch, validation batches, seconds of the
    teacher's pass): with a `cache_dir`, the examples and the teacher's logits
    streamed from one pass written there; else the user's pipelines as they are
    (the teacher runs in each step)."""
    if cache_dir is None:
        stream.check_finite(train_data, "train_data")
        # Repeated: fit's steps_per_epoch counts the epochs.
        return train_data.repeat(), _count_batches(train_data), validation_data, 0.0
    train = stream.save_with_logits(
        teacher, train_data, os.path.join(cache_dir, "train"), name="train_data"
    )
    train_ds = stream.read(train, shuffle_buffer=shuffle_buffer, seed=seed)
    seconds, val = train.seconds, validation_data
    if validation_teacher and validation_data is not None:
        saved = stream.save_with_logits(
            teacher,
            validation_data,
            os.path.join(cache_dir, "validation"),
            name="validation_data",
        )
        val, seconds = stream.read(saved), seconds + saved.seconds
    return train_ds, train.steps(), val, seconds


def _count_batches(dataset) -> int:
    count = int(dataset.cardinality())
    if count == tf.data.INFINITE_CARDINALITY:
        raise ValueError("train_data must be finite: one epoch of (x, y) batches")
    if count < 0:  # unknown: count one pass
        count = sum(1 for _ in dataset)
    if count == 0:
        raise ValueError("train_data is empty")
    return count
