"""Drawing images from a network with DDIM, as grids, and as a SavedModel a client
can call with a seed and a count.

Every sampler of a run starts from the same noise: `noise(seed, count, shape)`
depends on (seed, count) alone, so DDIM at 8 steps and the distilled 8-step student
are compared on the very same starting points.
"""

from __future__ import annotations

import os

import keras
import numpy as np
import tensorflow as tf

from tf_distill.outputs import files
from tf_distill.tasks.diffusion import progressive


def noise(seed: int, count: int, image_shape) -> tf.Tensor:
    """z at t = 1: N(0, I), a function of (seed, count) alone."""
    return tf.random.stateless_normal((count, *image_shape), seed=(seed, 0))


def compiled(network: keras.Model, num_steps: int, prediction: str):
    """A tf.function noise -> images in [-1, 1], DDIM in `num_steps` steps."""

    @tf.function(reduce_retracing=True)
    def draw(z):
        return progressive.sample(
            lambda z, lam: network([z, lam], training=False),
            z,
            num_steps,
            prediction=prediction,
        )

    return draw


def draw(fn, z, *, batch: int = 500):
    """Images in [-1, 1] (NumPy) from the noise `z` with `fn` (`compiled`),
    `batch` at a time."""
    parts = [fn(z[i : i + batch]).numpy() for i in range(0, len(z), batch)]
    return np.concatenate(parts)


def to_uint8(images):
    """[-1, 1] floats to 0..255 uint8 pixels (rounded)."""
    scaled = (tf.clip_by_value(images, -1.0, 1.0) + 1.0) * 127.5
    return tf.cast(tf.round(scaled), tf.uint8)


def grid(images, columns: int = 8) -> np.ndarray:
    """The first rows x columns images as one uint8 (H, W, C) mosaic, 1-pixel gaps."""
    images = np.asarray(to_uint8(images))
    rows = max(1, len(images) // columns)
    images = images[: rows * columns]
    n, h, w, c = images.shape
    canvas = np.full((rows * (h + 1) + 1, columns * (w + 1) + 1, c), 255, np.uint8)
    for k in range(n):
        r, col = divmod(k, columns)
        canvas[1 + r * (h + 1) : 1 + r * (h + 1) + h, 1 + col * (w + 1) :][:, :w] = (
            images[k]
        )
    return canvas


def write_grid(images, path: str, *, columns: int = 8, zoom: int = 4) -> None:
    """A PNG of `grid(images)`, each pixel `zoom` x `zoom` (8x8 digits are tiny)."""
    mosaic = np.repeat(np.repeat(grid(images, columns), zoom, 0), zoom, 1)
    with files.replacing_file(path, suffix=".png") as tmp:
        tf.io.write_file(tmp, tf.io.encode_png(mosaic))


class Sampler(tf.Module):
    """The shipped sampler: DDIM in `num_steps` steps of `network`.

    serving_default(seed: int64, count: int32) -> {"images": uint8 (count, H, W,
    C)}; from_noise(noise: float32 (n, H, W, C)) -> the same from given noise.
    """

    def __init__(self, network, num_steps: int, prediction: str, image_shape):
        super().__init__(name="sampler")
        self.network = network
        self._draw = compiled(network, num_steps, prediction)
        self.image_shape = tuple(image_shape)
        self.num_steps = tf.constant(num_steps)

        @tf.function(
            input_signature=[
                tf.TensorSpec([], tf.int64, name="seed"),
                tf.TensorSpec([], tf.int32, name="count"),
            ]
        )
        def serve(seed, count):
            z = tf.random.stateless_normal(
                tf.concat([[count], self.image_shape], 0),
                seed=tf.stack([seed, tf.constant(0, tf.int64)]),
            )
            return {"images": to_uint8(self._draw(z))}

        @tf.function(
            input_signature=[
                tf.TensorSpec([None, *self.image_shape], tf.float32, name="noise")
            ]
        )
        def from_noise(z):
            return {"images": to_uint8(self._draw(z))}

        self.serve, self.from_noise = serve, from_noise


def export(network, path: str, *, num_steps: int, prediction: str) -> int:
    """Writes the sampler's SavedModel to `path` (replacing it whole); its bytes."""
    module = Sampler(network, num_steps, prediction, network.input_shape[0][1:])
    with files.replacing_dir(path) as tmp:
        tf.saved_model.save(
            module,
            tmp,
            signatures={
                "serving_default": module.serve,
                "from_noise": module.from_noise,
            },
        )
    return files.size_bytes(path)


def check_exported(path: str) -> None:
    """Loads the SavedModel with plain TensorFlow and draws two images from it."""
    loaded = tf.saved_model.load(path)
    images = loaded.signatures["serving_default"](
        seed=tf.constant(0, tf.int64), count=tf.constant(2)
    )["images"]
    if images.dtype != tf.uint8 or images.shape[0] != 2:
        raise RuntimeError(f"The exported sampler {path} returned {images!r}")


def write_tensorboard_grid(log_dir: str, name: str, images, step: int) -> None:
    """The grid as an image summary in `log_dir` (one per round)."""
    writer = tf.summary.create_file_writer(os.path.join(log_dir, "samples"))
    with writer.as_default():
        tf.summary.image(name, grid(images)[None], step=step)
    writer.close()
