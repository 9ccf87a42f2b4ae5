"""TFRecord files: images that stay in their records until a pipeline streams them.

A record is a `tf.train.Example` holding an encoded image (JPEG, PNG, ...) under
`image_feature` and an integer label under `label_feature`: what
tensorflow-datasets writes, and what most TensorFlow data pipelines already have.
Records cannot be read by index, only in order, so where an image folder's
`ImageFiles` is indexed by path, the records of a split are streamed file by file
(data/batches.py):

- every record has an id, its place among the files read one after another (file
  i's records are ids starts[i] .. starts[i + 1] - 1); a split is the ids it holds,
  increasing, so reading the files in order reads the split in its own order (the
  teacher's caching pass, evaluation);
- each streamed record carries its position in the split, through which its label
  and its cached teacher logits are gathered: arrays of a few bytes per image, the
  only memory that grows with the data.

data/record_loading.py reads every record once before any training: the number
per file, the labels, and the records whose image cannot be decoded.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os

import numpy as np
import tensorflow as tf

from tf_distill.data.image_files import decode_bytes


@dataclasses.dataclass(frozen=True, eq=False)
class RecordImages:
    """The records of one split, each decoded to `image_shape` when streamed."""

    files: tuple[str, ...]
    starts: np.ndarray  # (len(files) + 1,) int64: file i's first id; then the total
    ids: np.ndarray  # (n,) int64, increasing: the records of this split
    image_shape: tuple[int, int, int]  # (height, width, channels)
    image_feature: str = "image"

    dtype = np.dtype(np.uint8)

    def __post_init__(self):
        ids = np.asarray(self.ids, np.int64)
        if len(ids) > 1 and not np.all(np.diff(ids) > 0):
            # Reading the files in order must read the split in its own order.
            raise ValueError("RecordImages: the ids of a split must increase")
        object.__setattr__(self, "ids", ids)

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.ids), *self.image_shape)

    def __getitem__(self, key) -> RecordImages:
        """The records a slice, a boolean mask or increasing indices pick."""
        if isinstance(key, (int, np.integer)):
            key = slice(int(key), int(key) + 1 or None)
        return dataclasses.replace(self, ids=self.ids[key])

    def merge(self, other: RecordImages) -> tuple[RecordImages, np.ndarray]:
        """The records of both (of the same files) in file order, and `order`:
        the concatenation's positions in that order, for labels concatenated
        the same way."""
        if other.files != self.files or other.image_shape != self.image_shape:
            raise ValueError("records of other files cannot join this split")
        ids = np.concatenate([self.ids, other.ids])
        order = np.argsort(ids, kind="stable")
        return dataclasses.replace(self, ids=ids[order]), order

    def positions(self) -> np.ndarray:
        """(total records,) int32: each id's position in this split, else -1."""
        positions = np.full(int(self.starts[-1]), -1, np.int32)
        positions[self.ids] = np.arange(len(self.ids), dtype=np.int32)
        return positions

    def needed_files(self) -> np.ndarray:
        """The indices of the files holding at least one of this split's records."""
        return np.unique(np.searchsorted(self.starts, self.ids, side="right") - 1)

    def decode_batch(self, records: tf.Tensor) -> tf.Tensor:
        """(batch, height, width, channels) uint8 from a batch of records."""
        feature = {self.image_feature: tf.io.FixedLenFeature([], tf.string)}
        data = tf.io.parse_example(records, feature)[self.image_feature]
        return tf.map_fn(
            lambda d: decode_bytes(d, self.image_shape),
            data,
            fn_output_signature=tf.TensorSpec(self.image_shape, tf.uint8),
        )

    def stream(self, file_order: tf.Tensor | None = None, cycle: int = 1):
        """A tf.data.Dataset of (position, serialized record) of this split's
        records: the files holding them read in order, or in `file_order`
        (indices into needed_files()) `cycle` at a time, interleaved."""
        positions = tf.constant(self.positions())
        needed = self.needed_files()
        paths = tf.constant([self.files[i] for i in needed])
        starts = tf.constant(self.starts[needed])
        if file_order is not None:
            paths, starts = tf.gather(paths, file_order), tf.gather(starts, file_order)
        files = tf.data.Dataset.from_tensor_slices((paths, starts))

        def read(path, start):  # (record id, record) of one file
            return tf.data.TFRecordDataset(path).enumerate(start)

        if cycle == 1:
            ds = files.flat_map(read)
        else:
            ds = files.interleave(
                read,
                cycle_length=min(cycle, len(needed)),
                num_parallel_calls=tf.data.AUTOTUNE,
                deterministic=True,
            )
        ds = ds.map(lambda i, record: (tf.gather(positions, i), record))
        return ds.filter(lambda position, _: position >= 0)

    def load(self) -> np.ndarray:
        """Every image decoded: for a few only (the caller's choice)."""
        ds = self.stream().batch(256).map(lambda _, records: self.decode_batch(records))
        images = list(ds.as_numpy_iterator())
        if not images:
            return np.zeros((0, *self.image_shape), np.uint8)
        return np.concatenate(images)

    def keys(self) -> list[str]:
        """`file name:index in file` of each record: what the validation split is
        hashed from, the same on every machine and in every listing order."""
        which = np.searchsorted(self.starts, self.ids, side="right") - 1
        names = [os.path.basename(f) for f in self.files]
        return [
            f"{names[f]}:{i - self.starts[f]}"
            for f, i in zip(which, self.ids, strict=True)
        ]

    def fingerprint(self) -> str:
        """Identifies the records: the files' paths, sizes and modification
        times, the split's ids and how images are decoded."""
        digest = hashlib.sha256(repr((self.image_shape, self.image_feature)).encode())
        for path in self.files:
            stat = os.stat(path)
            digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\0".encode())
        digest.update(self.ids.tobytes())
        return digest.hexdigest()
