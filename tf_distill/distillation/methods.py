"""Distillation methods: what a student learns from its teacher, one object each.

A method is a small object that the Distiller calls once per batch:

    method(labels=..., teacher_logits=..., student_logits=...) -> {name: (batch,)}

It returns per-example losses keyed by the names the Distiller logs (`loss`, the
total that is minimised, first); `scalars` lists those names and `needs` says what
the method takes of teacher and student: "logits", or "features" (`Hint`: the
Distiller then builds the method's `feature_models` and passes
`teacher_features=` and `student_features=` too, and trains the method's own
`trainable_variables` with the student). A method may also offer `callbacks()`
(DKD's warm-up), which the Distiller's `fit` adds. Choose one by name with
`build(name, **options)`, as `config.distill.method` does; `METHODS` lists them.
"""

from __future__ import annotations

import math

import keras
import tensorflow as tf

from tf_distill.distillation import losses
from tf_distill.distillation.hint import Hint


def _check_temperature(temperature) -> None:
    if not math.isfinite(float(temperature)):
        raise ValueError(f"temperature must be finite, got {temperature}")
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")


class KD:
    """Hinton, Vinyals & Dean (2015), arXiv:1503.02531, sec. 2: soft targets.

        loss = alpha * CE(labels, student)
               + (1 - alpha) * T^2 * KL(softmax(teacher / T) || softmax(student / T))

    `alpha` weighs the hard (label) loss; T^2 keeps the soft loss's gradients on
    the hard loss's scale as T changes (`losses.kd_loss`).
    """

    name = "kd"
    needs = "logits"
    scalars = ("loss", "hard_loss", "soft_loss")

    def __init__(self, *, temperature: float, alpha: float):
        _check_temperature(temperature)
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {alpha}")
        self.temperature = float(temperature)
        self.alpha = float(alpha)

    def __call__(self, *, labels, teacher_logits, student_logits) -> dict:
        return losses.distillation_loss(
            labels=labels,
            teacher_logits=tf.stop_gradient(teacher_logits),
            student_logits=student_logits,
            temperature=self.temperature,
            alpha=self.alpha,
        )

    def describe(self) -> dict:
        """What metrics.json and the report record of the method."""
        return {
            "method": self.name,
            "temperature": self.temperature,
            "alpha": self.alpha,
        }


class DKD:
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
    needs = "logits"
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


METHODS = {"kd": KD, "dkd": DKD, "hint": Hint}


def build(name: str, **options):
    """The method called `name`, with its options (e.g. temperature, alpha).

    Raises:
        ValueError: an unknown name (listing the valid ones) or a bad option value.
    """
    if name not in METHODS:
        raise ValueError(
            f"Unknown distillation method {name!r}; valid: {', '.join(METHODS)}"
        )
    return METHODS[name](**options)
