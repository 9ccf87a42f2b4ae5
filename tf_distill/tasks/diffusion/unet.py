"""A small U-Net for diffusion on small images (8x8 digits, 28x28 MNIST).

The shape of Ho et al.'s and Salimans & Ho's network (google-research
diffusion_distillation, unet.py), scaled down: residual blocks with group
normalisation and swish, the noise level fed in as a sinusoidal embedding of
t = arctan(exp(-lambda / 2)) / (pi / 2) (the time the cosine schedule gives that
log-SNR, in [0, 1]) through two dense layers, and applied to each block as a scale
and shift after its second normalisation. Average-pool down, nearest-neighbour up,
skip connections concatenated; the last convolution of each block and of the
network starts at zero, so a fresh network predicts 0. No attention: at 8x8 and
28x28 with a few blocks the receptive field already covers the image.

    network = build(image_shape=(8, 8, 1), channels=32, multipliers=(1, 2))
    prediction = network([z, logsnr])   # z: (batch, 8, 8, 1), logsnr: (batch,)
"""

from __future__ import annotations

import math

import keras
import tensorflow as tf

from tf_distill.tasks.diffusion import schedule


def _embedding(lam, dim: int):
    """Sinusoidal embedding of the cosine-schedule time of log-SNR `lam`."""
    lam = tf.clip_by_value(tf.cast(lam, tf.float32), schedule.LOGSNR_MIN, 20.0)
    t = tf.math.atan(tf.exp(-0.5 * lam)) / (0.5 * math.pi)  # in [0, 1]
    half = dim // 2
    freqs = tf.exp(-math.log(10000.0) * tf.range(half, dtype=tf.float32) / (half - 1))
    angles = 1000.0 * t[:, None] * freqs[None, :]
    return tf.concat([tf.sin(angles), tf.cos(angles)], axis=-1)


@keras.saving.register_keras_serializable(package="tf_distill")
class TimeEmbedding(keras.layers.Layer):
    """log-SNR (batch,) -> sinusoidal features (batch, dim)."""

    def __init__(self, dim: int, **kwargs):
        super().__init__(**kwargs)
        self.dim = dim

    def call(self, lam):
        return _embedding(lam, self.dim)

    def get_config(self):
        return {**super().get_config(), "dim": self.dim}


def _groups(channels: int) -> int:
    return math.gcd(channels, 8)


def _res_block(h, emb, channels: int, dropout: float, name: str):
    skip = h
    h = keras.layers.GroupNormalization(_groups(h.shape[-1]), name=f"{name}_norm1")(h)
    h = keras.layers.Activation("swish")(h)
    h = keras.layers.Conv2D(channels, 3, padding="same", name=f"{name}_conv1")(h)
    scale_shift = keras.layers.Dense(2 * channels, name=f"{name}_emb")(
        keras.layers.Activation("swish")(emb)
    )
    scale_shift = keras.layers.Reshape((1, 1, 2 * channels))(scale_shift)
    scale, shift = keras.ops.split(scale_shift, 2, axis=-1)
    h = keras.layers.GroupNormalization(_groups(channels), name=f"{name}_norm2")(h)
    h = h * (1.0 + scale) + shift
    h = keras.layers.Activation("swish")(h)
    if dropout:
        h = keras.layers.Dropout(dropout)(h)
    h = keras.layers.Conv2D(
        channels, 3, padding="same", kernel_initializer="zeros", name=f"{name}_conv2"
    )(h)
    if skip.shape[-1] != channels:
        skip = keras.layers.Conv2D(channels, 1, name=f"{name}_skip")(skip)
    return skip + h


def build(
    *,
    image_shape: tuple[int, int, int],
    channels: int = 32,
    multipliers: tuple[int, ...] = (1, 2),
    blocks: int = 2,
    dropout: float = 0.0,
    name: str = "unet",
) -> keras.Model:
    """The network: inputs [z (batch, H, W, C), logsnr (batch,)], output like z.

    H and W must divide by 2 ** (len(multipliers) - 1).

    Raises:
        ValueError: an image size the levels cannot halve.
    """
    height, width, image_channels = image_shape
    factor = 2 ** (len(multipliers) - 1)
    if height % factor or width % factor:
        raise ValueError(
            f"images of {height}x{width} cannot be halved {len(multipliers) - 1} "
            f"time(s) (multipliers {tuple(multipliers)}): use fewer levels"
        )
    z = keras.Input(image_shape, name="z")
    lam = keras.Input((), name="logsnr")
    emb = TimeEmbedding(channels, name="time")(lam)
    emb = keras.layers.Dense(4 * channels, activation="swish", name="emb_dense0")(emb)
    emb = keras.layers.Dense(4 * channels, name="emb_dense1")(emb)

    h = keras.layers.Conv2D(channels, 3, padding="same", name="conv_in")(z)
    skips = [h]
    for level, mult in enumerate(multipliers):
        for b in range(blocks):
            h = _res_block(h, emb, channels * mult, dropout, f"down{level}_{b}")
            skips.append(h)
        if level < len(multipliers) - 1:
            h = keras.layers.AveragePooling2D(2, name=f"down{level}_pool")(h)
            skips.append(h)
    h = _res_block(h, emb, h.shape[-1], dropout, "mid0")
    h = _res_block(h, emb, h.shape[-1], dropout, "mid1")
    for level in reversed(range(len(multipliers))):
        for b in range(blocks + 1):
            h = keras.layers.Concatenate()([h, skips.pop()])
            h = _res_block(
                h, emb, channels * multipliers[level], dropout, f"up{level}_{b}"
            )
        if level > 0:
            h = keras.layers.UpSampling2D(2, name=f"up{level}_upsample")(h)
    h = keras.layers.GroupNormalization(_groups(h.shape[-1]), name="norm_out")(h)
    h = keras.layers.Activation("swish")(h)
    out = keras.layers.Conv2D(
        image_channels, 3, padding="same", kernel_initializer="zeros", name="conv_out"
    )(h)
    return keras.Model([z, lam], out, name=name)
