"""A distillation method of your own: logit matching (Ba & Caruana, NeurIPS 2014,
"Do Deep Nets Really Need to be Deep?"): the student's logits regressed onto the
teacher's by their mean squared error, plus `label_weight` times the label loss.

    python main.py --model=all --config=examples/my_method_config.py

`config.distill.method = "examples.my_method:LogitMatching"` chooses it; its keys
live in its own section, `config.distill.logit_matching` (my_method_config.py).
"""

import keras
import tensorflow as tf

from tf_distill import Method, hard_loss


class LogitMatching(Method):
    name = "logit_matching"
    keys = ("logit_matching",)  # config.distill.logit_matching
    scalars = ("loss", "hard_loss", "logit_loss")  # logged; "loss" is minimised

    def __init__(self, *, label_weight: float):
        self.label_weight = float(label_weight)

    @classmethod
    def from_config(cls, distill):
        weight = distill.logit_matching.label_weight
        if not weight >= 0:
            raise ValueError(
                f"config.distill.logit_matching.label_weight={weight!r}: expected >= 0"
            )
        return cls(label_weight=weight)

    def check(self, *, teacher, student, num_classes):
        # Logits are regressed as they are, so the teacher's last layer must be
        # linear: a ReLU would clip every negative logit to 0. (A softmax teacher
        # is refused for every method before this check.)
        last = teacher.layers[-1]
        activation = getattr(last, "activation", keras.activations.linear)
        if activation is not keras.activations.linear:
            raise ValueError(
                f"method {self.name}: the teacher's last layer {last.name} has "
                f"activation {activation.__name__}; logit matching regresses raw "
                "logits"
            )

    def __call__(self, *, labels, teacher_logits, student_logits):
        error = tf.square(student_logits - tf.stop_gradient(teacher_logits))
        logit_loss = tf.reduce_mean(error, axis=-1)  # (batch,)
        hard = hard_loss(labels=labels, logits=student_logits)  # 0 if unlabelled
        total = logit_loss + self.label_weight * hard
        return {"loss": total, "hard_loss": hard, "logit_loss": logit_loss}

    def describe(self):
        return {"method": self.name, "label_weight": self.label_weight}
