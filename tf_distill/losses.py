"""Distillation losses, per example, in float32.

Each function returns one value per example (shape (batch,)); the caller averages
over the *global* batch (`tf.nn.compute_average_loss`), so the loss does not change
with the number of replicas. Arguments are keyword-only: an early keras-io example
swapped teacher and student in a positional call, and KL is not symmetric.
"""

from __future__ import annotations

import tensorflow as tf

METHODS = ("kd",)


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

    An unlabelled example (label -1, tf_distill/transfer.py) has 0 hard loss: it
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
