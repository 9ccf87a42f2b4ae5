"""Distillation methods: what a student learns from its teacher, one object each.

A method is a small object that the Distiller calls once per batch:

    method(labels=..., teacher_logits=..., student_logits=...) -> {name: (batch,)}

It returns per-example losses keyed by the names the Distiller logs (`loss`, the
total that is minimised, first); `scalars` lists those names and `needs` says what
the method takes of teacher and student ("logits" today; feature-based methods will
ask for named layers). Choose one by name with `build(name, **options)`, as
`config.distill.method` does; `METHODS` lists them.
"""

from __future__ import annotations

import math

import tensorflow as tf

from tf_distill import losses


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
        if not math.isfinite(float(temperature)):
            raise ValueError(f"temperature must be finite, got {temperature}")
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
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


METHODS = {"kd": KD}


def build(name: str, **options) -> KD:
    """The method called `name`, with its options (e.g. temperature, alpha).

    Raises:
        ValueError: an unknown name (listing the valid ones) or a bad option value.
    """
    if name not in METHODS:
        raise ValueError(
            f"Unknown distillation method {name!r}; valid: {', '.join(METHODS)}"
        )
    return METHODS[name](**options)
