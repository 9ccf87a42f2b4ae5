"""Distillation losses, per example, in float32.

Each function returns one value per example (shape (batch,)); the caller averages
over the *global* batch (`tf.nn.compute_average_loss`), so the loss does not change
with the number of replicas. Arguments are keyword-only: an early keras-io example
swapped teacher and student in a positional call, and KL is not symmetric.
"""

from __future__ import annotations

import tensorflow as tf


def kd_loss(*, teacher_logits, student_logits, temperature: float) -> tf.Tensor:
    """Hinton et al. (2015), "Distilling the Knowledge in a Neural Network".

    Forward KL from the teacher's softened distribution to the student's, times T^2
    so that its gradients keep the same scale as the hard loss when T changes::

        p_t = softmax(teacher_logits / T),  p_s = softmax(student_logits / T)
        kd  = T^2 * sum_k p_t[k] * (log p_t[k] - log p_s[k])

    Computed with log-softmax, so no probability is clipped (keras.losses.KLDivergence
    clips to 1e-7, which biases the loss when the teacher is confident).

    Args:
        teacher_logits: (batch, classes), treated as a constant target.
        student_logits: (batch, classes).
        temperature: T > 0.

    Returns:
        (batch,) float32 per-example loss.
    """
    t = tf.constant(temperature, tf.float32)
    log_p_teacher = tf.nn.log_softmax(tf.cast(teacher_logits, tf.float32) / t, axis=-1)
    log_p_student = tf.nn.log_softmax(tf.cast(student_logits, tf.float32) / t, axis=-1)
    kl = tf.reduce_sum(tf.exp(log_p_teacher) * (log_p_teacher - log_p_student), axis=-1)
    return kl * t * t


def hard_loss(*, labels, logits) -> tf.Tensor:
    """Cross-entropy with the true labels: -log softmax(logits)[label], (batch,).

    An unlabelled example (label -1, tf_distill/data/unlabelled.py) has 0 hard loss: it
    learns from the teacher alone, and the caller's average over the global batch
    stays the same for any number of replicas.
    """
    labels = tf.cast(labels, tf.int32)
    labelled = labels >= 0
    ce = tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=tf.where(labelled, labels, 0), logits=tf.cast(logits, tf.float32)
    )
    return tf.where(labelled, ce, 0.0)


def distillation_loss(
    *, labels, teacher_logits, student_logits, temperature: float, alpha: float
) -> dict[str, tf.Tensor]:
    """alpha * hard + (1 - alpha) * kd, per example (Hinton et al. 2015, sec. 2).

    Returns:
        {"loss": total, "hard_loss": hard, "soft_loss": kd}, each
        (batch,) float32; the keys are the names the Distiller's trackers log.
    """
    hard = hard_loss(labels=labels, logits=student_logits)
    soft = kd_loss(
        teacher_logits=teacher_logits,
        student_logits=student_logits,
        temperature=temperature,
    )
    return {
        "loss": alpha * hard + (1.0 - alpha) * soft,
        "hard_loss": hard,
        "soft_loss": soft,
    }


def decoupled_kd(*, labels, teacher_logits, student_logits, temperature: float):
    """Zhao et al. (2022), "Decoupled Knowledge Distillation": (TCKD, NCKD), each
    (batch,) float32, before the T^2 and the weights (methods.DKD).

        p = softmax(z / T),  b = [p_target, 1 - p_target]
        TCKD = KL(b_teacher || b_student)
        NCKD = KL(softmax(z_teacher / T)[others] || softmax(z_student / T)[others])

    In log space: log(1 - p_target) is the log-sum-exp of the other classes' log
    probabilities, so nothing is clipped; the target class is masked out of the
    non-target softmax with -inf-like logits (its probability there is 0).
    """
    t = tf.constant(temperature, tf.float32)
    z_t = tf.cast(teacher_logits, tf.float32) / t
    z_s = tf.cast(student_logits, tf.float32) / t
    target = tf.one_hot(tf.cast(labels, tf.int32), tf.shape(z_s)[-1]) > 0
    masked = tf.constant(-1e9, tf.float32)

    def binary(z):  # (log p_target, log (1 - p_target))
        log_p = tf.nn.log_softmax(z, axis=-1)
        on = tf.reduce_sum(tf.where(target, log_p, 0.0), axis=-1)
        off = tf.reduce_logsumexp(tf.where(target, masked, log_p), axis=-1)
        return tf.stack([on, off], axis=-1)

    def non_target(z):
        return tf.nn.log_softmax(tf.where(target, masked, z), axis=-1)

    def kl(log_p, log_q):
        return tf.reduce_sum(tf.exp(log_p) * (log_p - log_q), axis=-1)

    tckd = kl(binary(z_t), binary(z_s))
    log_nt_t, log_nt_s = non_target(z_t), non_target(z_s)
    nckd = tf.reduce_sum(
        tf.where(target, 0.0, tf.exp(log_nt_t) * (log_nt_t - log_nt_s)), axis=-1
    )
    return tckd, nckd


def top1_agreement(teacher_logits, student_logits) -> tf.Tensor:
    """1.0 where the student's most likely class is the teacher's, else 0.0; (batch,).

    The Distiller's `agreement` metric and the report's test agreement both use it.
    """
    return tf.cast(
        tf.equal(
            tf.argmax(teacher_logits, axis=-1), tf.argmax(student_logits, axis=-1)
        ),
        tf.float32,
    )
