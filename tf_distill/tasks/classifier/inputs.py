"""What a classifier's fit trains on: its shuffled, augmented training batches.

Epoch e's order depends on (seed, e) alone, so the models of one seed see the same
batches and a resumed fit continues in that order. A distilled student's batches
carry the teacher's signal (teacher/cache.py: cached logits, cached views, or the
images alone for the teacher in every step); under several workers each worker
makes only its own share of every batch (training/distribute.worker_batches).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import tensorflow as tf

from tf_distill.data import augment, batches
from tf_distill.tasks.classifier.settings import Settings
from tf_distill.teacher import cache
from tf_distill.training import distribute


def training_batches(
    settings: Settings,
    splits,
    strategy: tf.distribute.Strategy,
    train,
    *,
    seed: int,
    signal: cache.TeacherSignal | None = None,
    distilling: bool = False,
) -> Callable[[range], tf.data.Dataset]:
    """fitting.fit's `make_train_ds`: the batches of `train` = (images, labels)
    for a range of epochs, augmented as settings.augment says for this model."""
    x, y = train
    augmentation = augment.build(
        settings.augment,
        input_shape=splits.input_shape,
        input_scale=splits.input_scale,
        seed=seed,
        distilling=distilling,
    )
    make = batches.pipeline if signal is None else signal.training_batches

    def for_epochs(epochs: range) -> tf.data.Dataset:
        return distribute.worker_batches(
            strategy,
            functools.partial(
                make,
                x,
                y,
                batch_size=settings.batch_size,
                shuffle_seed=seed,
                epochs=epochs,
                augment=augmentation,
            ),
        )

    return for_epochs
