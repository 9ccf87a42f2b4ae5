"""Images that stay in their files until a pipeline reads them (image folders).

`ImageFiles` holds the paths of a split, not its pixels: memory is then set by the
paths (about a hundred bytes an image) and the batches in flight, never by the
number of images. It answers what the pipelines and splits ask of the uint8
arrays the small sources return (`len`, `shape`, `dtype`, indexing by a slice, a
mask or indices), so `batches.pipeline` reads it in a parallel `map` that decodes
and resizes each batch, and the teacher's caching pass streams it the same way.
`load()` decodes a few into an array where an array is needed (int8 calibration
images, the inference-speed sample, a client's evaluation in chunks).

Decoding matches Keras' `image_dataset_from_directory`: `decode_image` to the
colour mode's channels, a bilinear resize, then rounding to uint8.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os

import numpy as np
import tensorflow as tf


@dataclasses.dataclass(frozen=True, eq=False)
class ImageFiles:
    """The image files of one split, each decoded to `image_shape` when read."""

    paths: np.ndarray  # (n,) str
    image_shape: tuple[int, int, int]  # (height, width, channels)

    dtype = np.dtype(np.uint8)

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.paths), *self.image_shape)

    def __getitem__(self, key) -> ImageFiles:
        """The files a slice, a boolean mask or an index array picks."""
        if isinstance(key, (int, np.integer)):
            key = slice(int(key), int(key) + 1 or None)
        return ImageFiles(np.asarray(self.paths)[key], self.image_shape)

    @property
    def column(self) -> np.ndarray:
        """What a pipeline carries per example: its path."""
        return self.paths

    def concatenate(self, other: ImageFiles) -> ImageFiles:
        if other.image_shape != self.image_shape:
            raise ValueError(
                f"images of shape {other.image_shape} cannot join {self.image_shape}"
            )
        return ImageFiles(np.concatenate([self.paths, other.paths]), self.image_shape)

    def decode(self, path: tf.Tensor) -> tf.Tensor:
        """One file's pixels: (height, width, channels) uint8."""
        return decode_bytes(tf.io.read_file(path), self.image_shape)

    def decode_batch(self, paths: tf.Tensor) -> tf.Tensor:
        """(batch, height, width, channels) uint8 from a batch of paths."""
        return tf.map_fn(
            self.decode,
            paths,
            fn_output_signature=tf.TensorSpec(self.image_shape, tf.uint8),
        )

    def load(self) -> np.ndarray:
        """Every image decoded: for a few only (the caller's choice)."""
        ds = tf.data.Dataset.from_tensor_slices(self.paths).map(
            self.decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
        )
        images = [image for image in ds.batch(256).as_numpy_iterator()]
        if not images:
            return np.zeros((0, *self.image_shape), np.uint8)
        return np.concatenate(images)

    def fingerprint(self) -> str:
        """Identifies the files: their paths, sizes and modification times."""
        digest = hashlib.sha256(repr(self.image_shape).encode())
        for path in self.paths:
            stat = os.stat(path)
            digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\0".encode())
        return digest.hexdigest()


@dataclasses.dataclass(frozen=True, eq=False)
class ArrayThenFiles:
    """A small data set's images, held in memory, then image files streamed after
    them: a folder of unlabelled images (config.distill.transfer_data) beside
    digits or IDX data. The pipelines carry each example's position; a batch of
    positions gathers rows of the array and decodes the files. Memory: the small
    array (as a constant in the graph) and the paths, never the folder's pixels."""

    array: np.ndarray  # (n, height, width, channels) uint8
    files: ImageFiles

    dtype = np.dtype(np.uint8)

    def __post_init__(self):
        if self.array.shape[1:] != self.files.image_shape:
            raise ValueError(
                f"images of shape {self.files.image_shape} cannot join "
                f"{self.array.shape[1:]}"
            )

    def __len__(self) -> int:
        return len(self.array) + len(self.files)

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self), *self.files.image_shape)

    @property
    def column(self) -> np.ndarray:
        """What a pipeline carries per example: its position."""
        return np.arange(len(self), dtype=np.int64)

    def __getitem__(self, key) -> ArrayThenFiles | np.ndarray | ImageFiles:
        """The images a slice, a mask or increasing indices pick, in order."""
        picked = np.arange(len(self))[key]
        if np.any(np.diff(picked) < 0):
            raise IndexError("ArrayThenFiles takes increasing indices only")
        n = len(self.array)
        return ArrayThenFiles(
            self.array[picked[picked < n]], self.files[picked[picked >= n] - n]
        )

    def decode_batch(self, positions: tf.Tensor) -> tf.Tensor:
        """(batch, height, width, channels) uint8 from a batch of positions."""
        array, n = tf.constant(self.array), len(self.array)
        paths = tf.constant(self.files.paths)

        def one(position):
            return tf.cond(
                position < n,
                lambda: tf.gather(array, position),
                lambda: self.files.decode(tf.gather(paths, position - n)),
            )

        return tf.map_fn(
            one,
            positions,
            fn_output_signature=tf.TensorSpec(self.files.image_shape, tf.uint8),
        )

    def load(self) -> np.ndarray:
        """Every image decoded: for a few only (the caller's choice)."""
        return np.concatenate([self.array, self.files.load()])

    def fingerprint(self) -> str:
        digest = hashlib.sha256(np.ascontiguousarray(self.array).tobytes())
        digest.update(self.files.fingerprint().encode())
        return digest.hexdigest()


def decode_bytes(data: tf.Tensor, image_shape) -> tf.Tensor:
    """An encoded image (JPEG, PNG, BMP, GIF) as (height, width, channels) uint8,
    resized to `image_shape`."""
    height, width, channels = image_shape
    image = tf.io.decode_image(data, channels=channels, expand_animations=False)
    image = tf.image.resize(image, (height, width), method="bilinear")
    return tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)


def streams(images) -> bool:
    """Whether `images` stay in their files (ImageFiles, records.RecordImages,
    ArrayThenFiles) rather than in a uint8 array."""
    return not isinstance(images, np.ndarray)


def random_access(images) -> bool:
    """Whether any image of `images` can be read by its index (`fetcher`): an
    array's rows, image files; not TFRecord files, which are read in order."""
    return isinstance(images, np.ndarray) or hasattr(images, "column")


def fetcher(images):
    """A function from a batch of int64 indices to those images, uint8 (batch,
    height, width, channels), for use inside tf.data or tf.function: a gather
    from an array, or a decode of the files (ImageFiles, ArrayThenFiles)."""
    if isinstance(images, np.ndarray):
        array = tf.constant(images)
        return lambda idx: tf.gather(array, idx)
    if not random_access(images):
        raise ValueError(f"{type(images).__name__} cannot be read by index")
    column = tf.constant(images.column)
    return lambda idx: images.decode_batch(tf.gather(column, idx))


def as_array(images, limit: int | None = None) -> np.ndarray:
    """The first `limit` (all by default) of `images` as a uint8 array: decoded
    from their files for streamed images, as they are for an array."""
    picked = images if limit is None else images[:limit]
    return picked.load() if streams(picked) else picked


def hashed_split(relative_paths, fraction: float) -> np.ndarray:
    """True for the paths that go to the validation split: `fraction` of them,
    picked by a hash of each relative path, so the split depends neither on the
    order the files are listed in nor on the machine, and adding images leaves
    the others where they were."""
    buckets = np.array(
        [
            int.from_bytes(hashlib.sha256(p.encode()).digest()[:8], "big") % 1_000_000
            for p in relative_paths
        ]
    )
    return buckets < round(fraction * 1_000_000)


def unreadable(files: ImageFiles) -> list[str]:
    """The files that cannot be decoded, found by decoding each once (in parallel;
    the pass an image folder makes before any training)."""
    ds = tf.data.Dataset.from_tensor_slices(files.paths)
    channels = files.image_shape[-1]

    def decoded_size(path):
        # The raw decode's size: its shape is only known by decoding, so the
        # decode cannot be optimised away (the resized shape is static).
        image = tf.io.decode_image(
            tf.io.read_file(path), channels=channels, expand_animations=False
        )
        return path, tf.size(image)

    ok = ds.map(
        decoded_size,
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    ).ignore_errors()
    readable = {path.decode() for path, _ in ok.as_numpy_iterator()}
    return [str(p) for p in files.paths if str(p) not in readable]
