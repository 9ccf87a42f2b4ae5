"""A user's tf.data pipeline with the teacher's logits, written to disk once and
streamed back every epoch (the Python API's cached path, api.py).

`save_with_logits` reads the pipeline once, runs the teacher on each batch and
writes (x, y, logits) batches to TFRecord shards; `read` streams them back, the
shards in a new order each epoch and the examples shuffled within a bounded
buffer. Memory is then set by the batch and the shuffle buffer, never by the
length of the pipeline, and an example cannot meet another's logits: they are one
record on disk. The shards cost the pipeline's own size on disk (its x as it
yields them, float32 pixels four times their uint8 size) plus 4 bytes per class
per example.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import time

import keras
import tensorflow as tf

BATCHES_PER_SHARD = 64
_COLUMNS = ("x", "y", "logits")


@dataclasses.dataclass(frozen=True)
class Saved:
    """What `save_with_logits` wrote: its shard files, how many examples, the
    largest batch (the batch size the student trains with), the element spec and
    the seconds."""

    shards: tuple[str, ...]
    examples: int
    batch_size: int
    spec: tuple[tf.TensorSpec, ...]
    seconds: float

    def steps(self) -> int:
        """Batches per epoch."""
        return -(-self.examples // self.batch_size)


def check_finite(dataset: tf.data.Dataset, name: str) -> None:
    """Refuses a dataset that never ends (a `.repeat()` without a count)."""
    if dataset.cardinality() == tf.data.INFINITE_CARDINALITY:
        raise ValueError(
            f"{name} is infinite (a .repeat() without a count?): pass one epoch "
            "of (x, y) batches; distill repeats it `epochs` times"
        )


def save_with_logits(
    teacher: keras.Model, dataset: tf.data.Dataset, folder: str, *, name: str
) -> Saved:
    """Writes every (x, y) batch of `dataset` with the teacher's logits on x.

    Raises:
        ValueError: an infinite or empty dataset, or one that does not yield
            (x, y) batches (naming `name`, the argument).
    """
    check_finite(dataset, name)
    spec = dataset.element_spec
    if not isinstance(spec, tuple) or len(spec) != 2:
        raise ValueError(f"{name} must yield (x, y) batches; it yields {spec}")
    predict = tf.function(lambda x: teacher(x, training=False), reduce_retracing=True)
    shutil.rmtree(folder, ignore_errors=True)  # an earlier call's shards
    os.makedirs(folder)
    start = time.perf_counter()
    examples = batch_size = batches = 0
    writer, shards = None, []
    for x, y in dataset:
        if batches % BATCHES_PER_SHARD == 0:
            if writer is not None:
                writer.close()
            shards.append(
                os.path.join(
                    folder, f"shard_{batches // BATCHES_PER_SHARD:06d}.tfrecord"
                )
            )
            writer = tf.io.TFRecordWriter(shards[-1])
        logits = tf.cast(predict(x), tf.float32)
        writer.write(_record(x, y, logits))
        examples += int(tf.shape(y)[0])
        batch_size = max(batch_size, int(tf.shape(y)[0]))
        batches += 1
    if writer is not None:
        writer.close()
    if not examples:
        raise ValueError(f"{name} is empty")
    logits_spec = tf.TensorSpec((None, teacher.output_shape[-1]), tf.float32)
    return Saved(
        tuple(shards),
        examples,
        batch_size,
        (*spec, logits_spec),
        time.perf_counter() - start,
    )


def _record(*tensors) -> bytes:
    feature = {
        column: tf.train.Feature(
            bytes_list=tf.train.BytesList(value=[tf.io.serialize_tensor(t).numpy()])
        )
        for column, t in zip(_COLUMNS, tensors, strict=True)
    }
    return tf.train.Example(
        features=tf.train.Features(feature=feature)
    ).SerializeToString()


def read(saved: Saved, *, shuffle_buffer: int = 0, seed: int = 0) -> tf.data.Dataset:
    """The saved (x, y, logits) examples in batches of `saved.batch_size`: in the
    order written, or, with a `shuffle_buffer`, the shards in a new order each
    epoch (from `seed`) and the examples shuffled within the buffer."""
    shards = list(saved.shards)
    parse_spec = {c: tf.io.FixedLenFeature([], tf.string) for c in _COLUMNS}

    def parse(record):
        fields = tf.io.parse_single_example(record, parse_spec)
        return tuple(
            tf.ensure_shape(tf.io.parse_tensor(fields[c], s.dtype), s.shape)
            for c, s in zip(_COLUMNS, saved.spec, strict=True)
        )

    files = tf.data.Dataset.from_tensor_slices(shards)
    if shuffle_buffer:
        files = files.shuffle(len(shards), seed=seed, reshuffle_each_iteration=True)
    ds = files.interleave(
        tf.data.TFRecordDataset, cycle_length=2 if shuffle_buffer else 1
    ).map(parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds = ds.unbatch()
    if shuffle_buffer:
        ds = ds.shuffle(shuffle_buffer, seed=seed + 1, reshuffle_each_iteration=True)
    # Known to Keras, which then counts the epoch's steps without running out.
    steps = tf.data.experimental.assert_cardinality(saved.steps())
    return ds.batch(saved.batch_size).apply(steps).prefetch(tf.data.AUTOTUNE)
