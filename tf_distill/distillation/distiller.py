"""The Distiller: a Keras model that trains a student against a frozen teacher."""

from __future__ import annotations

import keras
import tensorflow as tf

from tf_distill.distillation import losses, methods
from tf_distill.training import distribute


class Distiller(keras.Model):
    """Trains `student` against a frozen `teacher` with a distillation method.

    The method (distillation/methods.py) gives the per-example losses; by default
    `methods.KD(temperature, alpha)`: `alpha * hard + (1 - alpha) * T^2
    KL(teacher || student)`, so `Distiller(student=s, teacher=t, temperature=4,
    alpha=0.1)` is the classic distiller and `method=` takes any other.

    The teacher is frozen: `trainable = False`, called with `training=False` outside
    the gradient tape, so its weights (and batch-norm statistics) never change and
    no gradient is computed for it. Batches are `(x, y)`, the teacher then runs on
    the same `x` as the student, or `(x, y, teacher_logits)` with logits computed
    beforehand; the two give the same loss on the same batch.

    Per-example losses are averaged over the global batch
    (`tf.nn.compute_average_loss` with the number of examples summed across
    replicas, so also for a last batch that splits unevenly), so under a
    `tf.distribute` strategy the gradients summed across replicas are those of one
    replica seeing the whole batch (tests/test_distribute.py).

    Validation (`test_step`) runs the same loss against the teacher, or, with
    `validation_teacher=False`, the student alone on the labels: `val_loss` is then
    the cross-entropy a student trained alone reports, `val_accuracy` the same as
    ever, and no `val_soft_loss` or `val_agreement` is logged; the teacher never
    sees the validation split (no caching pass over it, no forward pass per
    validation step).

    `call()` returns the student's logits; only the student is ever exported.
    """

    def __init__(
        self,
        *,
        student: keras.Model,
        teacher: keras.Model | None,
        method=None,
        temperature: float | None = None,
        alpha: float | None = None,
        validation_teacher: bool = True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if method is None:
            if temperature is None or alpha is None:
                raise ValueError("Give a method, or a temperature and an alpha for KD")
            method = methods.KD(temperature=temperature, alpha=alpha)
        elif temperature is not None or alpha is not None:
            raise ValueError("Give either a method or temperature and alpha, not both")
        if not isinstance(method, methods.Method):
            raise ValueError(
                f"method must be a tf_distill Method (tf_distill/distillation/"
                f"methods.py), got {type(method).__name__}"
            )
        self.method = method
        self.validation_teacher = validation_teacher
        self.student = student
        self.teacher = teacher
        if teacher is not None:
            teacher.trainable = False
        # A feature method (hint.Hint) reads named layers of both networks.
        self.features = None
        if method.needs == "features":
            if teacher is None:
                raise ValueError(
                    f"method {method.name!r} reads the teacher's features: it needs "
                    "the teacher itself, not cached logits"
                )
            self.features = method.feature_models(student=student, teacher=teacher)
            self.regressor = method.regressor  # tracked: saved in the backups
        # Tracker names are the keys of the logged history ("val_" + name too).
        self.loss_trackers = [keras.metrics.Mean(name=n) for n in method.scalars]
        self.accuracy = keras.metrics.SparseCategoricalAccuracy(name="accuracy")
        # How often the student's top-1 class is the teacher's (val_agreement on
        # the validation split): what distillation transfers, label errors and all.
        self.agreement = keras.metrics.Mean(name="agreement")
        # Its only weights are the (built) student's and teacher's; saying so lets
        # BackupAndRestore save and restore it before the first step.
        self.built = True

    def fit(self, *args, callbacks=None, **kwargs):
        """keras.Model.fit, with the method's own callbacks (e.g. DKD's warm-up)."""
        extra = self.method.callbacks()
        return super().fit(*args, callbacks=[*(callbacks or []), *extra], **kwargs)

    @property
    def metrics(self):
        return [*self.loss_trackers, self.accuracy, self.agreement]

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

    def _teacher_side(self, data):
        """(x, y, teacher logits, teacher features or None), outside the tape."""
        if self.features is None:
            return (*self._teacher_logits(data), None)
        x, y = data[0], data[1]
        teacher_features, teacher_logits = self.features.teacher(x, training=False)
        return x, y, teacher_logits, teacher_features

    def _student_side(self, x, training):
        """(student logits, student features or None)."""
        if self.features is None:
            return self.student(x, training=training), None
        student_features, logits = self.features.student(x, training=training)
        return logits, student_features

    def _per_example_losses(
        self, y, teacher_logits, student_logits, t_features=None, s_features=None
    ):
        extra = {}
        if self.features is not None:
            extra = {"teacher_features": t_features, "student_features": s_features}
        return self.method(
            labels=y,
            teacher_logits=teacher_logits,
            student_logits=student_logits,
            **extra,
        )

    def _update_trackers(self, per_example, y, teacher_logits, student_logits):
        for tracker in self.loss_trackers:
            tracker.update_state(per_example[tracker.name])
        # Unlabelled examples (label -1, tf_distill/data/unlabelled.py) have no
        # accuracy.
        self.accuracy.update_state(
            tf.maximum(y, 0), student_logits, sample_weight=tf.cast(y >= 0, tf.float32)
        )
        self.agreement.update_state(
            losses.top1_agreement(teacher_logits, student_logits)
        )
        return {m.name: m.result() for m in self.metrics}

    def train_step(self, data):
        x, y, teacher_logits, t_features = self._teacher_side(data)
        with tf.GradientTape() as tape:
            student_logits, s_features = self._student_side(x, training=True)
            per_example = self._per_example_losses(
                y, teacher_logits, student_logits, t_features, s_features
            )
            loss = tf.nn.compute_average_loss(
                per_example["loss"], global_batch_size=distribute.global_batch_size(y)
            )
            if self.student.losses:  # weight regularisers, once per global batch
                loss += tf.nn.scale_regularization_loss(tf.add_n(self.student.losses))
            scaled_loss = self.optimizer.scale_loss(loss)  # mixed_float16 scaling
        # A feature method's own layers (a hint's regressor) train too; they
        # live here, not in the student, so the exported student holds none.
        variables = [
            *self.student.trainable_variables,
            *self.method.trainable_variables,
        ]
        gradients = tape.gradient(scaled_loss, variables)
        self.optimizer.apply_gradients(zip(gradients, variables, strict=True))
        return self._update_trackers(per_example, y, teacher_logits, student_logits)

    def test_step(self, data):
        if not self.validation_teacher:
            return self._labels_only_step(data[0], data[1])
        x, y, teacher_logits, t_features = self._teacher_side(data)
        student_logits, s_features = self._student_side(x, training=False)
        per_example = self._per_example_losses(
            y, teacher_logits, student_logits, t_features, s_features
        )
        return self._update_trackers(per_example, y, teacher_logits, student_logits)

    def _labels_only_step(self, x, y):
        """Validation without the teacher: the label loss (as `loss` and
        `hard_loss`) and the accuracy; the trackers it cannot fill stay out of the
        logs rather than log zeros."""
        student_logits = self.student(x, training=False)
        hard = losses.hard_loss(labels=y, logits=student_logits)
        logged = [t for t in self.loss_trackers if t.name in ("loss", "hard_loss")]
        for tracker in logged:
            tracker.update_state(hard)
        self.accuracy.update_state(y, student_logits)
        return {m.name: m.result() for m in (*logged, self.accuracy)}
