"""Several teachers as one: a committee distilled into one deployable student.

Hinton, Vinyals & Dean (2015) distilled an ensemble into a single model. The
committee's soft targets average its members' temperature-softened probabilities,
in probability space (not logit space: the mean of logits is a product of experts,
not a committee):

    p_ens = (1 / M) sum_i softmax(z_i / T)

To the distillation methods, which soften the teacher's logits by T themselves,
the ensemble hands z_ens = T log p_ens: softmax(z_ens / T) = p_ens exactly. Its
top-1 class, and so its accuracy and the students' agreement with it, is the
argmax of p_ens at that T.
"""

from __future__ import annotations

import keras
import tensorflow as tf


class ProbabilityAverage(keras.layers.Layer):
    """[z_1, ..., z_M] -> T log mean_i softmax(z_i / T)."""

    def __init__(self, temperature: float, **kwargs):
        super().__init__(**kwargs)
        self.temperature = float(temperature)

    def call(self, logits):
        t = self.temperature
        stacked = tf.stack([tf.cast(z, tf.float32) / t for z in logits], axis=0)
        log_p = tf.nn.log_softmax(stacked, axis=-1)
        count = tf.math.log(tf.cast(len(logits), tf.float32))
        return t * (tf.reduce_logsumexp(log_p, axis=0) - count)

    def get_config(self):
        return {**super().get_config(), "temperature": self.temperature}


def build(members: list[keras.Model], temperature: float) -> keras.Model:
    """The members as one frozen model whose logits are z_ens at `temperature`.

    Raises:
        ValueError: fewer than two members, or members of different inputs or
            classes.
    """
    if len(members) < 2:
        raise ValueError(f"an ensemble needs >= 2 teachers, got {len(members)}")
    shapes = {tuple(m.input_shape[1:]) for m in members}
    classes = {m.output_shape[-1] for m in members}
    if len(shapes) > 1 or len(classes) > 1:
        raise ValueError(
            f"the teachers differ: input shapes {sorted(shapes)}, classes "
            f"{sorted(classes)}"
        )
    inputs = keras.Input(shapes.pop(), name="pixels")
    for i, member in enumerate(members):
        member.trainable = False
        member.name = f"member_{i}"  # loaded teachers may share a name
    logits = ProbabilityAverage(temperature, name="average")(
        [m(inputs, training=False) for m in members]
    )
    return keras.Model(inputs, logits, name="ensemble")
