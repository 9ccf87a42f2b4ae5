"""The distillation loss against hand computations and its defining properties."""

import numpy as np
import pytest
import tensorflow as tf

from tf_distill.distillation import losses


def np_log_softmax(z):
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def np_kd(teacher, student, temperature):
    """T^2 * KL(softmax(teacher/T) || softmax(student/T)) per example, in float64."""
    log_p = np_log_softmax(teacher / temperature)
    log_q = np_log_softmax(student / temperature)
    return temperature**2 * (np.exp(log_p) * (log_p - log_q)).sum(axis=-1)


@pytest.fixture
def logits():
    rng = np.random.default_rng(0)
    teacher = rng.normal(scale=3.0, size=(16, 10)).astype(np.float32)
    student = rng.normal(scale=3.0, size=(16, 10)).astype(np.float32)
    labels = rng.integers(0, 10, size=16).astype(np.int32)
    return teacher, student, labels


def test_zero_when_student_equals_teacher(logits):
    teacher, _, _ = logits
    kd = losses.kd_loss(teacher_logits=teacher, student_logits=teacher, temperature=4.0)
    np.testing.assert_allclose(kd, np.zeros(16), atol=1e-6)


@pytest.mark.parametrize("temperature", [1.0, 2.5, 10.0])
def test_matches_numpy(logits, temperature):
    teacher, student, _ = logits
    kd = losses.kd_loss(
        teacher_logits=teacher, student_logits=student, temperature=temperature
    )
    assert kd.shape == (16,)
    np.testing.assert_allclose(
        kd,
        np_kd(teacher.astype(np.float64), student.astype(np.float64), temperature),
        rtol=1e-5,
        atol=1e-6,
    )


def test_t_squared_keeps_the_scale_at_high_temperature(logits):
    """Hinton et al. sec. 2.1: for large T, T^2 * KL -> mean squared logit gap / 2.

    Without the T^2 factor the loss would vanish like 1/T^2; with it, it tends to
    (1 / 2N) * sum_k (d_k - mean(d))^2, d = teacher - student logits.
    """
    teacher, student, _ = logits
    d = teacher.astype(np.float64) - student
    limit = ((d - d.mean(axis=-1, keepdims=True)) ** 2).mean(axis=-1) / 2
    kd = losses.kd_loss(
        teacher_logits=teacher, student_logits=student, temperature=300.0
    )
    np.testing.assert_allclose(kd, limit, rtol=2e-2)
    kd_10 = losses.kd_loss(
        teacher_logits=teacher, student_logits=student, temperature=10
    )
    kl_10 = np_kd(teacher.astype(np.float64), student, 10.0) / 100.0
    np.testing.assert_allclose(kd_10, 100.0 * kl_10, rtol=1e-5)


def test_alpha_one_is_cross_entropy_and_alpha_zero_is_kd(logits):
    teacher, student, labels = logits
    kwargs = dict(
        labels=labels, teacher_logits=teacher, student_logits=student, temperature=3.0
    )
    ce = -np_log_softmax(student.astype(np.float64))[np.arange(16), labels]
    pure_hard = losses.distillation_loss(alpha=1.0, **kwargs)
    np.testing.assert_allclose(pure_hard["loss"], ce, rtol=1e-5)
    pure_soft = losses.distillation_loss(alpha=0.0, **kwargs)
    np.testing.assert_allclose(
        pure_soft["loss"], np_kd(teacher, student, 3.0), rtol=1e-5
    )
    mixed = losses.distillation_loss(alpha=0.25, **kwargs)
    np.testing.assert_allclose(
        mixed["loss"], 0.25 * ce + 0.75 * np_kd(teacher, student, 3.0), rtol=1e-5
    )
    np.testing.assert_allclose(mixed["hard_loss"], ce, rtol=1e-5)


def test_swapping_teacher_and_student_changes_the_value(logits):
    teacher, student, _ = logits
    forward = losses.kd_loss(
        teacher_logits=teacher, student_logits=student, temperature=2
    )
    swapped = losses.kd_loss(
        teacher_logits=student, student_logits=teacher, temperature=2
    )
    assert np.abs(np.asarray(forward) - np.asarray(swapped)).max() > 1e-2


def test_arguments_are_keyword_only(logits):
    teacher, student, labels = logits
    with pytest.raises(TypeError):
        losses.kd_loss(teacher, student, 2.0)
    with pytest.raises(TypeError):
        losses.distillation_loss(labels, teacher, student, 2.0, 0.5)


def test_no_clipping_for_confident_teachers():
    """A near-one-hot teacher: keras' KLDivergence clips at 1e-7; ours is exact."""
    teacher = np.array([[40.0, 0.0, 0.0]], np.float32)
    student = np.array([[0.0, 5.0, 0.0]], np.float32)
    kd = losses.kd_loss(teacher_logits=teacher, student_logits=student, temperature=1.0)
    np.testing.assert_allclose(
        kd, np_kd(teacher.astype(np.float64), student, 1.0), rtol=1e-5
    )


def test_float16_logits_are_computed_in_float32(logits):
    teacher, student, _ = logits
    kd = losses.kd_loss(
        teacher_logits=tf.cast(teacher, tf.bfloat16),
        student_logits=tf.cast(student, tf.float16),
        temperature=2.0,
    )
    assert kd.dtype == tf.float32


def test_agrees_with_keras_logits_distillation_given_a_kl_instance(logits):
    """An independent reference: Keras 3's LogitsDistillation, with the loss passed as
    a KLDivergence *instance*. (Its default, loss="kl_divergence", becomes a plain
    function that skips the softmax, and gives a different, wrong value.)"""
    import keras

    teacher, student, _ = logits
    reference = keras.distillation.LogitsDistillation(
        temperature=4.0, loss=keras.losses.KLDivergence()
    ).compute_loss(teacher, student)
    ours = losses.kd_loss(
        teacher_logits=teacher, student_logits=student, temperature=4.0
    )
    assert float(np.mean(ours)) == pytest.approx(float(reference), rel=1e-4)
