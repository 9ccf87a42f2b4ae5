"""Training-time augmentation (`config.augment`), in the training pipeline only.

Augmentation runs in tf.data on each training batch, before the batch reaches the
model, so:

- when distilling, the teacher and the student see the *same* augmented batch: the
  step gets one augmented `x` and the teacher runs on it inside the step. If each
  saw its own random version, the soft targets would describe another image than
  the one the student is learning from, and the KL term would be noise. (So with
  augmentation the teacher's logits cannot be cached: it runs in every step.)
- validation, test, the teacher's caching pass and every exported model see the
  raw images: augmentation is never part of a model.
"""

from __future__ import annotations

import dataclasses

import keras

FLIPS = ("none", "horizontal", "vertical", "horizontal_and_vertical")


@dataclasses.dataclass(frozen=True)
class AugmentSpec:
    """Which random augmentations the training images get; all off by default."""

    translate: int = 0  # pixels each way
    flip: str = "none"  # one of FLIPS
    rotation: float = 0.0  # degrees each way
    color_jitter: float = 0.0  # brightness / contrast fraction, RGB only
    mixup: float = 0.0  # Beta(mixup, mixup) mixing weight; the distilled student's

    def enabled_for(self, *, distilling: bool) -> bool:
        """Whether a model's training batches are augmented: mixup only for the
        distilled student (its images have no single label; the teacher's soft
        targets describe them)."""
        return bool(
            self.translate
            or self.flip != "none"
            or self.rotation
            or self.color_jitter
            or (distilling and self.mixup)
        )


def build(
    cfg: AugmentSpec,
    *,
    input_shape,
    input_scale: float,
    seed: int,
    distilling: bool = False,
) -> keras.Sequential | None:
    """The augmentation `cfg` asks for, on raw-valued float32 batches; None if off.

    - `translate`: random shifts of up to this many pixels each way (Hinton et al.
      2015 used +-2 px on MNIST); the uncovered border is filled with 0.
    - `flip`: one of FLIPS.
    - `rotation`: random rotations of up to this many degrees each way.
    - `color_jitter`: random brightness and contrast changes of up to this
      fraction (RGB images only).
    """
    if not cfg.enabled_for(distilling=distilling):
        return None
    height, width, channels = input_shape
    layers = []
    if cfg.translate:
        layers.append(
            keras.layers.RandomTranslation(
                height_factor=cfg.translate / height,
                width_factor=cfg.translate / width,
                fill_mode="constant",
                seed=seed,
            )
        )
    if cfg.flip != "none":
        layers.append(keras.layers.RandomFlip(cfg.flip, seed=seed))
    if cfg.rotation:
        layers.append(
            keras.layers.RandomRotation(
                cfg.rotation / 360.0, fill_mode="constant", seed=seed
            )
        )
    if cfg.color_jitter:
        if channels != 3:
            raise ValueError(
                f"config.augment.color_jitter={cfg.color_jitter} needs RGB images; "
                f"these have {channels} channel(s)"
            )
        value_range = (0.0, float(input_scale))
        layers += [
            keras.layers.RandomBrightness(
                cfg.color_jitter, value_range=value_range, seed=seed
            ),
            keras.layers.RandomContrast(
                cfg.color_jitter, value_range=value_range, seed=seed
            ),
        ]
    if distilling and cfg.mixup:
        layers.append(MixUp(cfg.mixup, seed=seed))
    return keras.Sequential(layers, name="augment")


class MixUp(keras.layers.Layer):
    """Zhang et al. (2018), "mixup: Beyond Empirical Risk Minimization":

        x' = lam * x + (1 - lam) * x_partner,   lam ~ Beta(alpha, alpha) per image

    the partner being the next image of the (shuffled) batch. Beyer et al. (2022,
    "Knowledge distillation: A good teacher is patient and consistent") mix the
    images teacher and student both see, and train on the teacher's soft targets
    alone: the labels are not mixed here, so validation.validate refuses mixup with a
    hard-loss weight (config.distill.alpha) above 0.
    """

    def __init__(self, alpha: float, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.alpha = float(alpha)
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, x, training=True):
        if not training:
            return x
        batch = keras.ops.shape(x)[0]
        # Beta(a, a) as g1 / (g1 + g2) with g1, g2 ~ Gamma(a).
        g1 = keras.random.gamma((batch,), self.alpha, seed=self.seed_generator)
        g2 = keras.random.gamma((batch,), self.alpha, seed=self.seed_generator)
        lam = keras.ops.reshape(g1 / (g1 + g2), (-1,) + (1,) * (len(x.shape) - 1))
        partner = keras.ops.roll(x, shift=1, axis=0)
        return lam * x + (1.0 - lam) * partner
