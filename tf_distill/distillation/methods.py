"""Distillation methods: what a student learns from its teacher, one object each.

Every method is a `Method`, which the Distiller calls once per batch:

    method(labels=..., teacher_logits=..., student_logits=...) -> {name: (batch,)}

It returns per-example losses keyed by the names the Distiller logs (`loss`, the
total that is minimised, first; `scalars` lists them). A method also owns its part
of the config and its checks, as keras' `DistillationLoss` owns
`validate_model_compatibility`:

- `keys`: the `config.distill` keys it reads, its own sub-section among them
  (`from_config(distill)` builds it from them and names a bad one);
- `check(teacher=, student=, num_classes=)`: refuses, before any training, a
  teacher, student or data it cannot work with;
- `needs`: "logits", or "features" for a method that reads named layers (`Hint`:
  the Distiller then builds its `feature_models` and trains its
  `trainable_variables` with the student; the teacher then runs in every step);
- `target_class`: True when every example needs one true class (mixup has none);
- `callbacks()`: Keras callbacks the Distiller's `fit` adds (DKD's warm-up).

KD and DKD live here, `Hint` in hint.py; registry.py chooses one by name, or
imports a user's `package.module:Class`.
"""

from __future__ import annotations

import math
from typing import ClassVar

import keras
import ml_collections
import tensorflow as tf

from tf_distill.checker import Checker, is_int, is_number
from tf_distill.distillation import losses


class Method:
    """The base class of every distillation method (see the module docstring)."""

    name: ClassVar[str] = ""
    keys: ClassVar[tuple[str, ...]] = ()
    needs: ClassVar[str] = "logits"
    target_class: ClassVar[bool] = False
    scalars: ClassVar[tuple[str, ...]] = ("loss",)

    @classmethod
    def from_config(cls, distill: ml_collections.ConfigDict) -> Method:
        """The method from `config.distill`; raises ValueError naming a bad key."""
        raise NotImplementedError(f"{cls.__name__}.from_config")

    def check(self, *, teacher: keras.Model, student: keras.Model, num_classes: int):
        """Raises ValueError when this pair or these classes cannot work."""

    def callbacks(self) -> list:
        return []

    @property
    def trainable_variables(self) -> list:
        """Weights of the method's own that train with the student (none here)."""
        return []

    def describe(self) -> dict:
        """What metrics.json and the report record of the method."""
        return {"method": self.name}

    def __call__(self, *, labels, teacher_logits, student_logits, **features):
        raise NotImplementedError(f"{type(self).__name__}.__call__")


def _check_temperature(temperature) -> None:
    if not math.isfinite(float(temperature)):
        raise ValueError(f"temperature must be finite, got {temperature}")
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")


class KD(Method):
    """Hinton, Vinyals & Dean (2015), arXiv:1503.02531, sec. 2: soft targets.

        loss = alpha * CE(labels, student)
               + (1 - alpha) * T^2 * KL(softmax(teacher / T) || softmax(student / T))

    `alpha` weighs the hard (label) loss; T^2 keeps the soft loss's gradients on
    the hard loss's scale as T changes (`losses.kd_loss`).
    """

    name = "kd"
    keys = ("temperature", "alpha")
    scalars = ("loss", "hard_loss", "soft_loss")

    def __init__(self, *, temperature: float, alpha: float):
        _check_temperature(temperature)
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {alpha}")
        self.temperature = float(temperature)
        self.alpha = float(alpha)

    @classmethod
    def from_config(cls, distill: ml_collections.ConfigDict) -> KD:
        return cls(temperature=distill.temperature, alpha=distill.alpha)

    def __call__(self, *, labels, teacher_logits, student_logits) -> dict:
        return losses.distillation_loss(
            labels=labels,
            teacher_logits=tf.stop_gradient(teacher_logits),
            student_logits=student_logits,
            temperature=self.temperature,
            alpha=self.alpha,
        )

    def describe(self) -> dict:
        return {
            "method": self.name,
            "temperature": self.temperature,
            "alpha": self.alpha,
        }


class DKD(Method):
    """Zhao, Cui, Song, Qiu & Liang (CVPR 2022), "Decoupled Knowledge
    Distillation", eq. (7), as in their code (mdistiller, DKD):

        p = softmax(z / T); b = [p_target, 1 - p_target]      (binary split)
        p^ = softmax(z / T) over the non-target classes alone
        TCKD = KL(b_teacher || b_student),   NCKD = KL(p^_teacher || p^_student)
        loss = CE(labels, student) + w * T^2 * (alpha TCKD + beta NCKD)
        w = min(epoch / warmup_epochs, 1), epochs counted from 1

    KD's soft loss is TCKD + (1 - p_target_teacher) NCKD: the more confident the
    teacher, the less the non-target knowledge counts; DKD weighs it by beta
    instead. It needs at least three classes (NCKD over one class is empty); an
    unlabelled example (transfer data) is split at the teacher's top class and has
    no cross-entropy term. The warm-up weight `w` is a variable
    that `callbacks()` sets at the start of each epoch (the Distiller adds them to
    its fit); outside a fit it is 1.
    """

    name = "dkd"
    keys = ("temperature", "dkd")
    target_class = True
    scalars = ("loss", "hard_loss", "tckd", "nckd")

    def __init__(
        self,
        *,
        temperature: float,
        alpha: float = 1.0,
        beta: float = 8.0,
        warmup_epochs: int = 20,
    ):
        _check_temperature(temperature)
        for key, value in (("alpha", alpha), ("beta", beta)):
            if not (math.isfinite(float(value)) and value >= 0):
                raise ValueError(f"dkd {key} must be >= 0 and finite, got {value}")
        if int(warmup_epochs) != warmup_epochs or warmup_epochs < 0:
            raise ValueError(f"dkd warmup_epochs must be >= 0, got {warmup_epochs}")
        self.temperature = float(temperature)
        self.alpha, self.beta = float(alpha), float(beta)
        self.warmup_epochs = int(warmup_epochs)
        self.warmup = tf.Variable(1.0, trainable=False, name="dkd_warmup")

    @classmethod
    def from_config(cls, distill: ml_collections.ConfigDict) -> DKD:
        c = Checker(distill, prefix="distill")
        for key in ("dkd.alpha", "dkd.beta"):
            value = c.get(key)
            c.check(is_number(value) and value >= 0, key, "expected a weight >= 0")
        warmup = distill.dkd.warmup_epochs
        c.check(
            is_int(warmup) and warmup >= 0,
            "dkd.warmup_epochs",
            "expected a whole number of epochs >= 0",
        )
        return cls(
            temperature=distill.temperature,
            alpha=distill.dkd.alpha,
            beta=distill.dkd.beta,
            warmup_epochs=warmup,
        )

    def check(self, *, teacher, student, num_classes: int) -> None:
        if num_classes < 3:
            raise ValueError(
                "config.distill.method='dkd' needs at least 3 classes (its "
                f"non-target term is over the other classes); the data has "
                f"{num_classes}"
            )

    def weight_at(self, epoch: int) -> float:
        """w for the Keras epoch index `epoch` (0 is the first epoch)."""
        if not self.warmup_epochs:
            return 1.0
        return min((epoch + 1) / self.warmup_epochs, 1.0)

    def callbacks(self) -> list:
        """Sets the warm-up weight at the start of every epoch (a resumed fit
        starts at its epoch index, so the weight resumes too)."""
        return [
            keras.callbacks.LambdaCallback(
                on_epoch_begin=lambda epoch, logs=None: self.warmup.assign(
                    self.weight_at(epoch)
                )
            )
        ]

    def __call__(self, *, labels, teacher_logits, student_logits) -> dict:
        classes = student_logits.shape[-1]
        if classes is not None and classes < 3:
            raise ValueError(
                f"dkd needs at least 3 classes (its non-target term is over the "
                f"others), got {classes}"
            )
        # An unlabelled transfer image (label -1) is split at the teacher's top
        # class; it has no cross-entropy term (losses.hard_loss).
        labels = tf.cast(labels, tf.int32)
        teacher_top = tf.argmax(teacher_logits, axis=-1, output_type=tf.int32)
        tckd, nckd = losses.decoupled_kd(
            labels=tf.where(labels >= 0, labels, teacher_top),
            teacher_logits=tf.stop_gradient(teacher_logits),
            student_logits=student_logits,
            temperature=self.temperature,
        )
        hard = losses.hard_loss(labels=labels, logits=student_logits)
        t2 = self.temperature**2
        soft = (
            tf.cast(self.warmup, tf.float32)
            * t2
            * (self.alpha * tckd + self.beta * nckd)
        )
        return {"loss": hard + soft, "hard_loss": hard, "tckd": tckd, "nckd": nckd}

    def describe(self) -> dict:
        return {
            "method": self.name,
            "temperature": self.temperature,
            "alpha": self.alpha,
            "beta": self.beta,
            "warmup_epochs": self.warmup_epochs,
        }
