"""The Distiller: a Keras model that trains a student against a frozen teacher."""

from __future__ import annotations

import keras
import tensorflow as tf

from tf_distill import losses


class Distiller(keras.Model):
    """Trains `student` on `alpha * hard + (1 - alpha) * T^2 KL(teacher || student)`.

    The teacher is frozen: `trainable = False`, called with `training=False` outside
    the gradient tape, so its weights (and batch-norm statistics) never change and
    no gradient is computed for it. Batches are `(x, y)`, the teacher then runs on
    the same `x` as the student, or `(x, y, teacher_logits)` with logits computed
    beforehand; the two give the same loss on the same batch.

    Per-example losses are averaged over the global batch
    (`tf.nn.compute_average_loss`), so under a `tf.distribute` strategy the
    gradients summed across replicas are those of one replica seeing the whole
    batch.

    `call()` returns the student's logits; only the student is ever exported.
    """

    def __init__(
        self,
        *,
        student: keras.Model,
        teacher: keras.Model | None,
        temperature: float,
        alpha: float,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {alpha}")
        self.student = student
        self.teacher = teacher
        if teacher is not None:
            teacher.trainable = False
        self.temperature = float(temperature)
        self.alpha = float(alpha)
        # Tracker names are the keys of the logged history ("val_" + name too).
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.student_loss_tracker = keras.metrics.Mean(name="student_loss")
        self.distillation_loss_tracker = keras.metrics.Mean(name="distillation_loss")
        self.accuracy = keras.metrics.SparseCategoricalAccuracy(name="accuracy")

    @property
    def metrics(self):
        return [
            self.loss_tracker,
            self.student_loss_tracker,
            self.distillation_loss_tracker,
            self.accuracy,
        ]

    def call(self, x, training=False):
        return self.student(x, training=training)

    def _teacher_logits(self, data):
        """(x, y, teacher_logits) from a batch, running the teacher if needed."""
        if len(data) == 3:
            return data
        x, y = data
        if self.teacher is None:
            raise ValueError(
                "The Distiller has no teacher, so batches must carry teacher logits "
                "as (x, y, teacher_logits)"
            )
        return x, y, self.teacher(x, training=False)

    def _per_example_losses(self, y, teacher_logits, student_logits):
        return losses.distillation_loss(
            labels=y,
            teacher_logits=tf.stop_gradient(teacher_logits),
            student_logits=student_logits,
            temperature=self.temperature,
            alpha=self.alpha,
        )

    def _update_trackers(self, per_example, y, student_logits):
        for tracker in self.metrics[:3]:
            tracker.update_state(per_example[tracker.name])
        self.accuracy.update_state(y, student_logits)
        return {m.name: m.result() for m in self.metrics}

    def train_step(self, data):
        x, y, teacher_logits = self._teacher_logits(data)
        with tf.GradientTape() as tape:
            student_logits = self.student(x, training=True)
            per_example = self._per_example_losses(y, teacher_logits, student_logits)
            loss = tf.nn.compute_average_loss(per_example["loss"])
            if self.student.losses:  # weight regularisers, once per global batch
                loss += tf.nn.scale_regularization_loss(tf.add_n(self.student.losses))
            scaled_loss = self.optimizer.scale_loss(loss)  # mixed_float16 scaling
        variables = self.student.trainable_variables
        gradients = tape.gradient(scaled_loss, variables)
        self.optimizer.apply_gradients(zip(gradients, variables, strict=True))
        return self._update_trackers(per_example, y, student_logits)

    def test_step(self, data):
        x, y, teacher_logits = self._teacher_logits(data)
        student_logits = self.student(x, training=False)
        per_example = self._per_example_losses(y, teacher_logits, student_logits)
        return self._update_trackers(per_example, y, student_logits)
