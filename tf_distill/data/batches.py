"""The input pipeline: tf.data batches of a split's arrays, shuffled per epoch
from the run's seed alone (a resumed run continues in the same order), with the
teacher's cached logits travelling with their examples.

Images come as uint8 arrays (small data sets), as image files read by index
(data/image_files.py), or as TFRecord files read in order (data/records.py): an
epoch of records reads the files in an order drawn from (seed, epoch), a few at a
time, and shuffles windows of SHUFFLE_WINDOW records, each window's permutation
again a function of (seed, epoch, window) alone. Memory is then set by the window,
never by the number of records, and a resumed run reads the order an
uninterrupted one would.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tf_distill.data.image_files import ArrayThenFiles, ImageFiles
from tf_distill.data.records import RecordImages
from tf_distill.training.distribute import Share

# Records shuffled together in an epoch of TFRecord files (each record's bytes, a
# JPEG of some tens of KB, is held until its window is read out), and the files
# read at once.
SHUFFLE_WINDOW = 4096
INTERLEAVE = 16


def pipeline(
    x: np.ndarray,
    y: np.ndarray | None = None,
    *,
    batch_size: int,
    extra=None,
    shuffle_seed: int | None = None,
    epochs: range | None = None,
    augment=None,
    share: Share | None = None,
) -> tf.data.Dataset:
    """Batches (x, y) — or (x, y, extra), or x alone — into a tf.data pipeline.

    Args:
        x: raw uint8 images, image_files.ImageFiles (or ArrayThenFiles) or
            records.RecordImages
            (decoded and resized per batch, in parallel); cast to float32 per
            batch (the model rescales them).
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
        share: with a shuffle, this worker's replicas' slices of each global
            batch, one element per replica (take_share); None: whole batches.
    """
    packed = y is not None and hasattr(extra, "columns")
    files = x if isinstance(x, (ImageFiles, ArrayThenFiles)) else None
    if files is not None:
        x = files.column  # paths, or positions
    if y is None:
        tensors = (x,)
    elif extra is None:
        tensors = (x, y)
    elif packed:
        tensors = (x, y, *extra.columns)
    else:
        tensors = (x, y, extra)
    if shuffle_seed is not None and epochs is None:
        raise ValueError("a shuffled pipeline needs the epochs it covers")
    records = x if isinstance(x, RecordImages) else None
    if records is not None:
        ds = _record_batches(records, tensors[1:], batch_size, shuffle_seed, epochs)
        ds = take_share(ds, share)
    elif shuffle_seed is None:
        ds = tf.data.Dataset.from_tensor_slices(tensors).batch(batch_size)
    else:
        ds = _shuffled(tensors, batch_size, shuffle_seed, epochs, share)
    streamed = files if files is not None else records
    decode = None if streamed is None else streamed.decode_batch

    # Cast after batching: one vectorised op per batch instead of one per example.
    def to_float(x, *rest):
        if decode is not None:
            x = decode(x)
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
    return finish(ds, buffer=2 if decode is not None else tf.data.AUTOTUNE)


def _shuffled(tensors, batch_size, shuffle_seed, epochs, share) -> tf.data.Dataset:
    """Batches of `tensors` (equal-length columns) for every epoch in `epochs`,
    epoch e in the order `epoch_order` gives; `share`'s slices of them."""
    columns = tuple(tf.constant(t) for t in tensors)
    seed = tf.constant(shuffle_seed, tf.int64)

    def one_epoch(epoch):
        order = epoch_order(len(tensors[0]), seed, epoch)
        return tf.data.Dataset.from_tensor_slices(order).batch(batch_size)

    return take_share(over_epochs(epochs, one_epoch), share).map(
        lambda idx: tuple(tf.gather(c, idx) for c in columns),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )


def _record_batches(records, columns, batch_size, shuffle_seed, epochs):
    """Batches of (serialized records, *columns gathered at their positions):
    in file order without `shuffle_seed`, else every epoch of `epochs` shuffled."""
    columns = tuple(tf.constant(c) for c in columns)

    def gather(positions):
        return tuple(tf.gather(c, positions) for c in columns)

    return record_batches(
        records, batch_size, shuffle_seed, epochs, lambda epoch: gather
    )


def record_batches(records, batch_size, shuffle_seed, epochs, columns_at):
    """Batches of (serialized records, *columns_at(epoch)(positions)), where
    positions are the batch's records' places in the split: in file order
    without `shuffle_seed` (epoch 0), else every epoch of `epochs` shuffled.
    `columns_at(epoch)` is called once per epoch, so what it computes (a
    per-epoch draw) is not recomputed per batch."""
    files = len(records.needed_files())

    def with_columns(ds, epoch):
        at = columns_at(epoch)
        return ds.map(
            lambda positions, batch: (batch, *at(positions)),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )

    def one_epoch(epoch):
        seed = tf.stack([tf.constant(shuffle_seed, tf.int64), epoch])
        ds = records.stream(epoch_order(files, seed[0], epoch), cycle=INTERLEAVE)
        return with_columns(_shuffle_windows(ds, seed).batch(batch_size), epoch)

    if shuffle_seed is None:
        ds = with_columns(records.stream().batch(batch_size), tf.constant(0, tf.int64))
    else:
        ds = over_epochs(epochs, one_epoch)
    # The filter hides the count from tf.data; Keras warns of a dataset "out of
    # data" at the end of each evaluation when it does not know it.
    count = -(-len(records) // batch_size) * (
        1 if shuffle_seed is None else len(epochs)
    )
    ds = ds.apply(tf.data.experimental.assert_cardinality(count))
    # Under several workers each reads every file's bytes and decodes only its
    # share of each batch (take_share): sharding by file (tf.data's first choice
    # for a file reader) would give workers unequal numbers of batches and
    # global batches unlike one worker's. DATA is for a caller that distributes
    # this dataset with experimental_distribute_dataset instead.
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = (
        tf.data.experimental.AutoShardPolicy.DATA
    )
    return ds.with_options(options)


def take_share(ds: tf.data.Dataset, share: Share | None) -> tf.data.Dataset:
    """Global batches -> the per-replica batches of `share`'s replicas, one
    element each: replica r of R gets rows [r n // R, (r + 1) n // R) of a batch
    of n. Applied to positions (or serialized records) before images are read,
    so each worker reads and decodes only its own examples, and the replicas of
    all workers together hold exactly one worker's global batch."""
    if share is None:
        return ds

    def pieces(*batch):
        n = tf.shape(batch[0], out_type=tf.int64)[0]

        def piece(r):
            lo, hi = r * n // share.total, (r + 1) * n // share.total
            sliced = tuple(t[lo:hi] for t in batch)
            return sliced if len(sliced) > 1 else sliced[0]

        return tf.data.Dataset.range(share.first, share.first + share.count).map(piece)

    return ds.flat_map(pieces)


def _shuffle_windows(ds: tf.data.Dataset, seed: tf.Tensor) -> tf.data.Dataset:
    """`ds` of (position, record) with each window of SHUFFLE_WINDOW elements
    permuted by a function of (`seed`, window) alone."""

    def permute(window, batch):
        positions, records = batch
        order = tf.random.experimental.stateless_shuffle(
            tf.range(tf.shape(positions, out_type=tf.int64)[0]),
            seed=tf.random.experimental.stateless_fold_in(seed, window),
        )
        return tf.gather(positions, order), tf.gather(records, order)

    return ds.batch(SHUFFLE_WINDOW).enumerate().map(permute).unbatch()


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
