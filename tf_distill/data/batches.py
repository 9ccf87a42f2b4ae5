"""The input pipeline: tf.data batches of a split's arrays, shuffled per epoch
from the run's seed alone (a resumed run continues in the same order), with the
teacher's cached logits travelling with their examples."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tf_distill.data.image_files import ImageFiles


def pipeline(
    x: np.ndarray,
    y: np.ndarray | None = None,
    *,
    batch_size: int,
    extra=None,
    shuffle_seed: int | None = None,
    epochs: range | None = None,
    augment=None,
) -> tf.data.Dataset:
    """Batches (x, y) — or (x, y, extra), or x alone — into a tf.data pipeline.

    Args:
        x: raw uint8 images, or image_files.ImageFiles (decoded and resized per
            batch, in parallel); cast to float32 per batch (the model rescales
            them).
        y: int labels; None for inputs alone (an inference pass).
        batch_size: the global batch size.
        extra: optional per-example array (e.g. cached teacher logits) that travels
            with its example through the shuffle; or a packed form of one (e.g.
            teacher.topk.TopK) with `columns` (per-example arrays) and
            `expand_batch(*batched columns)`, which each batch arrives through.
        shuffle_seed: with `epochs`, shuffle: the dataset then holds the batches
            of every epoch in `epochs`, epoch e in an order that depends on
            (shuffle_seed, e) alone; fit it with steps_per_epoch. None keeps the
            order, one epoch.
        epochs: the training epochs this dataset covers, e.g. range(2, 10) for a
            run resumed at its third epoch.
        augment: a Keras layer applied to each float32 batch of images with
            training=True (tf_distill/data/augment.py); None for evaluation pipelines.
    """
    packed = y is not None and hasattr(extra, "columns")
    files = x if isinstance(x, ImageFiles) else None
    if files is not None:
        x = files.paths
    if y is None:
        tensors = (x,)
    elif extra is None:
        tensors = (x, y)
    elif packed:
        tensors = (x, y, *extra.columns)
    else:
        tensors = (x, y, extra)
    if shuffle_seed is None:
        ds = tf.data.Dataset.from_tensor_slices(tensors).batch(batch_size)
    else:
        if epochs is None:
            raise ValueError("a shuffled pipeline needs the epochs it covers")
        ds = _shuffled(tensors, batch_size, shuffle_seed, epochs)

    # Cast after batching: one vectorised op per batch instead of one per example.
    def to_float(x, *rest):
        if files is not None:
            x = files.decode_batch(x)
        if packed:
            y, *columns = rest
            rest = (y, extra.expand_batch(*columns))
        return (tf.cast(x, tf.float32), *rest)

    ds = ds.map(to_float, num_parallel_calls=tf.data.AUTOTUNE)
    if augment is not None:
        # Sequential (no parallel calls): the random draws then come in the same
        # order in every run with the same seed.
        ds = ds.map(lambda x, *rest: (augment(x, training=True), *rest))
    # Decoded files are large batches: two in flight, not a buffer that grows.
    return finish(ds, buffer=2 if files is not None else tf.data.AUTOTUNE)


def _shuffled(tensors, batch_size, shuffle_seed, epochs) -> tf.data.Dataset:
    """Batches of `tensors` (equal-length columns) for every epoch in `epochs`,
    epoch e in the order `epoch_order` gives."""
    columns = tuple(tf.constant(t) for t in tensors)
    seed = tf.constant(shuffle_seed, tf.int64)

    def one_epoch(epoch):
        order = epoch_order(len(tensors[0]), seed, epoch)
        return tf.data.Dataset.from_tensor_slices(order).batch(batch_size)

    return over_epochs(epochs, one_epoch).map(
        lambda idx: tuple(tf.gather(c, idx) for c in columns),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )


def epoch_order(n: int, seed: tf.Tensor, epoch: tf.Tensor) -> tf.Tensor:
    """A permutation of range(n) that is a function of (seed, epoch) alone:
    stateless, whatever TensorFlow's global seed or how many epochs ran before,
    so a resumed run continues in the order it would have had."""
    return tf.random.experimental.stateless_shuffle(
        tf.range(n, dtype=tf.int64), seed=tf.stack([seed, epoch])
    )


def over_epochs(epochs: range, one_epoch) -> tf.data.Dataset:
    """`one_epoch(epoch)`'s datasets for every epoch in `epochs`, one after another."""
    return tf.data.Dataset.range(epochs.start, epochs.stop).flat_map(one_epoch)


def finish(ds: tf.data.Dataset, buffer: int = tf.data.AUTOTUNE) -> tf.data.Dataset:
    """Prefetched (`buffer` batches), with tf.data's autotuner off.

    On a 2-core machine the autotuner's background work can leave a core idle for
    whole passes, at random (benchmarks/README.md, "What closed the gap"). With it
    off, AUTOTUNE means as many parallel calls as cores and a prefetch buffer that
    grows by itself, which is all these light pipelines (gather, cast, a small
    augmentation) need. That buffer grows while the model waits for input, so a
    pipeline of decoded image files bounds it.
    """
    options = tf.data.Options()
    options.autotune.enabled = False
    return ds.prefetch(buffer).with_options(options)
