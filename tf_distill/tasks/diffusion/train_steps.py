"""The two training steps of progressive distillation, as Keras models.

`DiffusionTrainer` trains the many-step teacher (Salimans & Ho 2022, alg. 1):
t ~ U(0, 1), z_t = alpha_t x + sigma_t eps, the network's x_hat regressed on x with
the chosen weighting, an exponential moving average (EMA) of its weights kept for
sampling. `ProgressiveDistiller` trains an N-step student on a frozen 2N-step
teacher (alg. 2): t on the student's grid, the target x_tilde of two teacher DDIM
steps (progressive.teacher_target). Both follow the Distiller's shape: a
GradientTape `train_step`, a `test_step`, `Mean` trackers, losses averaged per
example over the global batch, gradients clipped to global norm 1 as in the
reference code. Batches are images scaled to [-1, 1].
"""

from __future__ import annotations

import keras
import tensorflow as tf

from tf_distill.tasks.diffusion import progressive, schedule
from tf_distill.training import distribute


class _Trainer(keras.Model):
    """What both steps share: the loss trackers, the seeded draws and the update."""

    def __init__(self, *, prediction: str, weighting: str, seed: int, **kwargs):
        super().__init__(**kwargs)
        if prediction not in progressive.PREDICTIONS:
            valid = ", ".join(progressive.PREDICTIONS)
            raise ValueError(
                f"prediction={prediction!r}; valid: {valid} (epsilon-prediction "
                "cannot be distilled: Salimans & Ho, Table 1)"
            )
        if weighting not in progressive.WEIGHTINGS:
            raise ValueError(
                f"weighting={weighting!r}; valid: {', '.join(progressive.WEIGHTINGS)}"
            )
        self.prediction = prediction
        self.weighting = weighting
        self.seeds = keras.random.SeedGenerator(seed)
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.x_error = keras.metrics.Mean(name="x_mse")  # unweighted, for reading

    @property
    def metrics(self):
        return [self.loss_tracker, self.x_error]

    def _loss(self, network, z, lam, x_true, training):
        x_hat, _ = progressive.predict(
            network([z, lam], training=training), z, lam, prediction=self.prediction
        )
        per_example = progressive.weighted_loss(
            x_hat, x_true, lam, weighting=self.weighting
        )
        x_mse = tf.reduce_mean(tf.square(x_hat - x_true), axis=[1, 2, 3])
        return per_example, x_mse

    def _update(self, network, z, lam, x_true):
        with tf.GradientTape() as tape:
            per_example, x_mse = self._loss(network, z, lam, x_true, training=True)
            loss = tf.nn.compute_average_loss(
                per_example, global_batch_size=distribute.global_batch_size(z)
            )
        variables = network.trainable_variables
        gradients = tape.gradient(loss, variables)
        gradients, _ = tf.clip_by_global_norm(gradients, 1.0)
        self.optimizer.apply_gradients(zip(gradients, variables, strict=True))
        return self._track(per_example, x_mse)

    def _track(self, per_example, x_mse):
        self.loss_tracker.update_state(per_example)
        self.x_error.update_state(x_mse)
        return {m.name: m.result() for m in self.metrics}

    def _noisy(self, x, t):
        eps = keras.random.normal(tf.shape(x), seed=self.seeds)
        lam = schedule.logsnr(t)
        return schedule.diffuse(x, eps, lam), lam


class DiffusionTrainer(_Trainer):
    """Trains `network` as a diffusion model; `ema` is the copy used to sample.

    ema <- decay * ema + (1 - decay) * network after every step (decay 0 makes
    the EMA the network itself, as in the reference's distillation rounds).
    """

    def __init__(self, network: keras.Model, *, ema_decay: float = 0.999, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1), got {ema_decay}")
        self.network = network
        self.ema = keras.models.clone_model(network)
        self.ema.set_weights(network.get_weights())
        self.ema.trainable = False
        self.ema_decay = ema_decay
        self.built = True

    def call(self, inputs, training=False):
        return self.network(inputs, training=training)

    def _times(self, x):
        return keras.random.uniform((tf.shape(x)[0],), seed=self.seeds)

    def train_step(self, x):
        z, lam = self._noisy(x, self._times(x))
        logs = self._update(self.network, z, lam, x)
        for average, weight in zip(self.ema.weights, self.network.weights, strict=True):
            average.assign(self.ema_decay * average + (1.0 - self.ema_decay) * weight)
        return logs

    def test_step(self, x):
        z, lam = self._noisy(x, self._times(x))
        return self._track(*self._loss(self.ema, z, lam, x, training=False))


class ProgressiveDistiller(_Trainer):
    """Trains `student` to do in `student_steps` DDIM steps what the frozen
    `teacher` does in twice as many: for i ~ U{0..N-1}, one student step from
    t = (i+1)/N matches two teacher steps to t - 1/N.

    The student should start from the teacher's (EMA) weights, with a fresh
    optimizer (Salimans & Ho, alg. 2).
    """

    def __init__(
        self,
        student: keras.Model,
        teacher: keras.Model,
        *,
        student_steps: int,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if student_steps < 1:
            raise ValueError(f"student_steps must be >= 1, got {student_steps}")
        self.student = student
        self.teacher = teacher
        teacher.trainable = False
        self.student_steps = student_steps
        self.built = True

    def call(self, inputs, training=False):
        return self.student(inputs, training=training)

    def _target(self, x):
        """(z_t, lam_t, x_tilde) for a batch of clean images."""
        i = keras.random.randint(
            (tf.shape(x)[0],), 0, self.student_steps, seed=self.seeds
        )
        t, _, _ = progressive.step_times(i, self.student_steps)
        z, _ = self._noisy(x, t)
        x_tilde, lam = progressive.teacher_target(
            lambda z, lam: self.teacher([z, lam], training=False),
            z,
            i,
            self.student_steps,
            prediction=self.prediction,
        )
        return z, lam, tf.stop_gradient(x_tilde)

    def train_step(self, x):
        z, lam, x_tilde = self._target(x)
        return self._update(self.student, z, lam, x_tilde)

    def test_step(self, x):
        z, lam, x_tilde = self._target(x)
        return self._track(*self._loss(self.student, z, lam, x_tilde, training=False))
