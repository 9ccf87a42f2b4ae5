"""FitNets hints (Romero et al., ICLR 2015): a method that reads named layers of
both networks (`needs = "features"`), with the regressor between them.

Kept apart from methods.py (the logit methods) because it is the one method with
its own trainable layer and feature models; registry.METHODS lists it as "hint".
"""

from __future__ import annotations

import math
from typing import NamedTuple

import keras
import ml_collections
import tensorflow as tf

from tf_distill.checker import Checker, is_number
from tf_distill.distillation.methods import KD, Method


class FeatureModels(NamedTuple):
    """Each network as a model returning (the named layer's output, logits)."""

    student: keras.Model
    teacher: keras.Model


class Hint(Method):
    """Romero et al. (ICLR 2015), "FitNets: Hints for Thin Deep Nets", sec. 2.2:
    the student's `student_layer` output h_s, through a learned regressor r, is
    pulled towards the teacher's `teacher_layer` output h_t:

        loss = KD(labels, teacher, student; T, alpha)
               + weight * mean_j (r(h_s)_j - h_t_j)^2

    r is a 1x1 convolution for feature maps of the same height and width, a dense
    layer for vectors, none when the shapes already match. FitNets trains the hint
    first, then KD; here both at once (one stage, as most frameworks do). r lives
    in the Distiller, not in the student: the exported student holds none of it.
    The teacher runs in every step (its features are not cached).
    """

    name = "hint"
    keys = ("temperature", "alpha", "hint")
    needs = "features"
    scalars = ("loss", "hard_loss", "soft_loss", "hint_loss")

    def __init__(
        self,
        *,
        temperature: float,
        alpha: float,
        teacher_layer: str,
        student_layer: str,
        weight: float = 1.0,
    ):
        self.kd = KD(temperature=temperature, alpha=alpha)
        if not (teacher_layer and student_layer):
            raise ValueError("hint needs a teacher_layer and a student_layer name")
        if not (math.isfinite(float(weight)) and weight >= 0):
            raise ValueError(f"hint weight must be >= 0 and finite, got {weight}")
        self.teacher_layer, self.student_layer = teacher_layer, student_layer
        self.weight = float(weight)
        self.regressor = None

    @classmethod
    def from_config(cls, distill: ml_collections.ConfigDict) -> Hint:
        c = Checker(distill, prefix="distill")
        for key in ("hint.teacher_layer", "hint.student_layer"):
            c.check(bool(c.get(key)), key, "method hint needs a layer name")
        weight = distill.hint.weight
        c.check(is_number(weight) and weight >= 0, "hint.weight", "expected >= 0")
        return cls(
            temperature=distill.temperature,
            alpha=distill.alpha,
            teacher_layer=distill.hint.teacher_layer,
            student_layer=distill.hint.student_layer,
            weight=weight,
        )

    def check(self, *, teacher, student, num_classes: int) -> None:
        """The layers exist and their shapes can be regressed."""
        try:
            self.feature_models(student=student, teacher=teacher)
        except ValueError as e:
            raise ValueError(f"config.distill.hint: {e}") from None
        finally:
            self.regressor = None  # the Distiller builds the one that trains

    def feature_models(self, *, student, teacher) -> FeatureModels:
        """The two feature models, and the regressor between their shapes."""
        models = []
        for role, model, layer in (
            ("student", student, self.student_layer),
            ("teacher", teacher, self.teacher_layer),
        ):
            names = [layer.name for layer in model.layers]
            if layer not in names:
                raise ValueError(
                    f"hint: the {role} has no layer {layer!r}; its layers: "
                    f"{', '.join(names)}"
                )
            models.append(
                keras.Model(model.input, [model.get_layer(layer).output, model.output])
            )
        s_shape = tuple(models[0].outputs[0].shape[1:])
        t_shape = tuple(models[1].outputs[0].shape[1:])
        self.regressor = _regressor(s_shape, t_shape)
        return FeatureModels(*models)

    @property
    def trainable_variables(self) -> list:
        return [] if self.regressor is None else self.regressor.trainable_variables

    def __call__(
        self,
        *,
        labels,
        teacher_logits,
        student_logits,
        teacher_features,
        student_features,
    ) -> dict:
        out = self.kd(
            labels=labels, teacher_logits=teacher_logits, student_logits=student_logits
        )
        h = student_features
        if self.regressor is not None:
            h = self.regressor(h)
        target = tf.stop_gradient(tf.cast(teacher_features, tf.float32))
        error = tf.square(tf.cast(h, tf.float32) - target)
        hint = tf.reduce_mean(tf.reshape(error, [tf.shape(error)[0], -1]), axis=-1)
        return {**out, "loss": out["loss"] + self.weight * hint, "hint_loss": hint}

    def describe(self) -> dict:
        return {
            **self.kd.describe(),
            "method": self.name,
            "teacher_layer": self.teacher_layer,
            "student_layer": self.student_layer,
            "hint_weight": self.weight,
        }


def _regressor(student_shape, teacher_shape):
    """None for equal shapes; a 1x1 convolution between feature maps of one
    height and width; a dense layer between vectors."""
    if student_shape == teacher_shape:
        return None
    if len(student_shape) == len(teacher_shape) == 3:
        if student_shape[:2] != teacher_shape[:2]:
            raise ValueError(
                f"hint: feature maps of {student_shape[:2]} (student) and "
                f"{teacher_shape[:2]} (teacher) differ in size; choose layers of one "
                "height and width"
            )
        layer = keras.layers.Conv2D(teacher_shape[-1], 1, name="hint_regressor")
    elif len(student_shape) == len(teacher_shape) == 1:
        layer = keras.layers.Dense(teacher_shape[-1], name="hint_regressor")
    else:
        raise ValueError(
            f"hint: student features {student_shape} and teacher features "
            f"{teacher_shape} are not both feature maps or both vectors"
        )
    layer.build((None, *student_shape))
    return layer
