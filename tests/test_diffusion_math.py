"""The formulas of progressive distillation (tf_distill/tasks/diffusion), each
against an independent NumPy float64 computation or a property that a wrong
formula breaks."""

import math

import numpy as np
import pytest
import tensorflow as tf

from tf_distill.tasks.diffusion import progressive, schedule


def _np_logsnr(t):
    # alpha = cos(pi t / 2) clipped to lambda in [-20, 20], from scratch.
    b = math.atan(math.exp(-10.0))
    a = math.atan(math.exp(10.0)) - b
    return -2.0 * np.log(np.tan(a * np.asarray(t, np.float64) + b))


def _np_alpha_sigma(lam):
    return np.sqrt(1 / (1 + np.exp(-lam))), np.sqrt(1 / (1 + np.exp(lam)))


def test_the_schedule_runs_from_clean_to_pure_noise():
    t = np.linspace(0, 1, 101)
    lam = schedule.logsnr(t).numpy()
    assert lam[0] == pytest.approx(20.0, abs=1e-3)
    assert lam[-1] == pytest.approx(-20.0, abs=2e-3)  # float32 near tan(pi/2)
    assert (np.diff(lam) < 0).all()
    np.testing.assert_allclose(lam, _np_logsnr(t), atol=2e-3)
    like = tf.zeros((101, 1, 1, 1))
    alpha, sigma = (v.numpy().ravel() for v in schedule.alpha_sigma(lam, like))
    np.testing.assert_allclose(alpha**2 + sigma**2, 1.0, atol=1e-6)
    assert alpha[-1] ** 2 < 1e-8  # sampling can start from N(0, I)
    # In the middle the schedule is the cosine one: alpha_t = cos(pi t / 2).
    np.testing.assert_allclose(alpha[10:91], np.cos(np.pi * t[10:91] / 2), atol=1e-4)


def test_parametrisations_convert_back_and_forth():
    rng = np.random.default_rng(0)
    x = tf.constant(rng.uniform(-1, 1, (5, 4, 4, 1)), tf.float32)
    eps = tf.constant(rng.normal(size=(5, 4, 4, 1)), tf.float32)
    lam = tf.constant([-15.0, -3.0, 0.0, 4.0, 15.0])
    z = schedule.diffuse(x, eps, lam)
    np.testing.assert_allclose(schedule.eps_from_x(z, x, lam), eps, atol=2e-3)
    np.testing.assert_allclose(
        schedule.x_from_eps(z[1:4], eps[1:4], lam[1:4]), x[1:4], atol=1e-4
    )
    v = schedule.v_from_x_eps(x, eps, lam)
    np.testing.assert_allclose(schedule.x_from_v(z, v, lam), x, atol=1e-5)
    x_hat, eps_hat = progressive.predict(v, z, lam, prediction="v")
    np.testing.assert_allclose(x_hat, x, atol=1e-5)


def test_the_sigma_ratio_is_computed_in_log_space_where_sigmas_underflow():
    like = tf.zeros((2, 1))
    ratio = schedule.sigma_ratio([19.0, 1.0], [18.0, -1.0], like).numpy().ravel()
    a_s, s_s = _np_alpha_sigma(np.array([19.0, 1.0]))
    a_t, s_t = _np_alpha_sigma(np.array([18.0, -1.0]))
    np.testing.assert_allclose(ratio, s_s / s_t, rtol=1e-5)


def _teacher(z, lam):
    """A fixed nonlinear x-predictor, so that two DDIM steps differ from one."""
    return tf.tanh(0.7 * z + 0.05 * schedule.broadcast(lam, z))


def _np_teacher(z, lam):
    return np.tanh(0.7 * z + 0.05 * lam.reshape(-1, *[1] * (z.ndim - 1)))


def _np_target(z_t, i, n, *, mid=0.5, end=1.0):
    """The paper's x_tilde from scratch in float64: t = (i+1)/N, t' = t - mid/N,
    t'' = t - end/N (0.5 and 1: swapping them is the bug to catch); the teacher's
    x_hat(z_t') at i = 0."""
    bc = lambda v: v.reshape(-1, 1, 1, 1)  # noqa: E731
    t = (i + 1) / n
    lam_t, lam_m, lam_s = (
        _np_logsnr(t),
        _np_logsnr(t - mid / n),
        _np_logsnr(t - end / n),
    )
    (a_t, s_t), (a_m, s_m), (a_s, s_s) = map(_np_alpha_sigma, (lam_t, lam_m, lam_s))
    x1 = _np_teacher(z_t, lam_t)
    z_m = bc(a_m) * x1 + bc(s_m) * (z_t - bc(a_t) * x1) / bc(s_t)
    x2 = _np_teacher(z_m, lam_m)
    z_s = bc(a_s) * x2 + bc(s_s) * (z_m - bc(a_m) * x2) / bc(s_m)
    r = bc(s_s / s_t)
    x_tilde = (z_s - r * z_t) / (bc(a_s) - r * bc(a_t))
    return np.where(bc(i == 0), x2, x_tilde), z_s


def test_the_target_matches_the_paper_and_one_student_step_lands_on_the_teachers():
    n = 4
    i = np.array([0, 1, 2, 3, 3, 1])
    z_t = np.random.default_rng(1).normal(size=(6, 3, 3, 1))
    x_tilde, lam_t = progressive.teacher_target(
        _teacher, tf.constant(z_t, tf.float32), tf.constant(i), n, prediction="x"
    )
    expected, z_s = _np_target(z_t, i, n)
    np.testing.assert_allclose(x_tilde, expected, atol=1e-4)
    # The student's one DDIM step from t with x_hat = x_tilde reaches the teacher's
    # z_t'' after two steps (i > 0; at i = 0 the student's last step is x_hat).
    eps = schedule.eps_from_x(tf.constant(z_t, tf.float32), x_tilde, lam_t)
    t, _, t_s = progressive.step_times(tf.constant(i), n)
    landed = progressive.ddim_step(x_tilde, eps, schedule.logsnr(t_s))
    np.testing.assert_allclose(landed.numpy()[i > 0], z_s[i > 0], atol=1e-3)


@pytest.mark.parametrize("swap", ["t_mid_and_t_s", "two_steps_as_one"])
def test_a_swapped_or_missing_teacher_step_is_caught(swap):
    n = 4
    i = np.array([1, 2, 3])
    z_t = np.random.default_rng(2).normal(size=(3, 3, 3, 1))
    got = progressive.teacher_target(
        _teacher, tf.constant(z_t, tf.float32), tf.constant(i), n, prediction="x"
    )[0].numpy()
    if swap == "t_mid_and_t_s":  # stop at t'' first, then t'
        wrong, _ = _np_target(z_t, i, n, mid=1.0, end=0.5)
    else:  # one teacher step straight to t'': the teacher's own x_hat at t
        wrong = _np_teacher(z_t, _np_logsnr((i + 1) / n))
    assert np.abs(got - wrong).max() > 1e-2  # the test can tell them apart
    np.testing.assert_allclose(got, _np_target(z_t, i, n)[0], atol=1e-4)


def test_a_student_equal_to_the_teachers_two_step_map_has_zero_loss():
    n = 2
    i = tf.constant([0, 1, 1, 0])
    z_t = tf.random.stateless_normal((4, 3, 3, 1), seed=(3, 4))

    def student(z, lam):  # x_hat = the target: what two teacher steps give
        return progressive.teacher_target(_teacher, z, i, n, prediction="x")[0]

    x_tilde, lam_t = progressive.teacher_target(_teacher, z_t, i, n, prediction="x")
    x_hat, _ = progressive.predict(student(z_t, lam_t), z_t, lam_t, prediction="x")
    for weighting in progressive.WEIGHTINGS:
        loss = progressive.weighted_loss(x_hat, x_tilde, lam_t, weighting=weighting)
        np.testing.assert_array_equal(loss.numpy(), 0.0)
    off = progressive.weighted_loss(x_hat + 0.1, x_tilde, lam_t, weighting="snr_trunc")
    snr = np.exp(lam_t.numpy())
    np.testing.assert_allclose(off, np.maximum(snr, 1) * 0.01, rtol=1e-4)


def test_gradients_stay_finite_at_both_ends_of_the_schedule():
    z_t = tf.random.stateless_normal((2, 3, 3, 1), seed=(5, 6))
    scale = tf.Variable(0.7)

    def teacher(z, lam):
        return tf.tanh(scale * z)

    for n in (1, 512):  # t = 1 (lambda -20) and t'' = 0 with lambda_t near 20
        i = tf.constant([0, n - 1])
        with tf.GradientTape() as tape:
            x_tilde, lam_t = progressive.teacher_target(
                teacher, z_t, i, n, prediction="v"
            )
            x_hat, _ = progressive.predict(
                teacher(z_t, lam_t), z_t, lam_t, prediction="v"
            )
            loss = progressive.weighted_loss(x_hat, x_tilde, lam_t, weighting="v_mse")
            total = tf.reduce_sum(loss)
        grad = tape.gradient(total, scale)
        assert np.isfinite(loss.numpy()).all() and np.isfinite(grad.numpy())


def test_ddim_with_a_perfect_denoiser_returns_the_data_in_any_number_of_steps():
    x0 = tf.constant(np.linspace(-0.9, 0.9, 9).reshape(1, 3, 3, 1), tf.float32)
    noise = tf.random.stateless_normal((2, 3, 3, 1), seed=(7, 8))
    for steps in (1, 2, 8):
        out = progressive.sample(
            lambda z, lam: tf.broadcast_to(x0, tf.shape(z)),
            noise,
            steps,
            prediction="x",
        )
        np.testing.assert_allclose(out, np.broadcast_to(x0, (2, 3, 3, 1)), atol=1e-6)


def test_the_sampler_clips_to_the_data_range_and_refuses_bad_choices():
    noise = tf.random.stateless_normal((1, 2, 2, 1), seed=(9, 9))
    out = progressive.sample(
        lambda z, lam: 5.0 * tf.ones_like(z), noise, 2, prediction="x"
    )
    np.testing.assert_array_equal(out, 1.0)
    with pytest.raises(ValueError, match="prediction='eps'"):
        progressive.predict(noise, noise, [0.0], prediction="eps")
    with pytest.raises(ValueError, match="weighting='snr'"):
        progressive.weighted_loss(noise, noise, [0.0], weighting="snr")


def test_ddim_sampling_matches_numpy_step_by_step():
    """The sampler's time grid (t = 1, (N-1)/N, ..., 1/N), clipping and last step
    against a float64 NumPy DDIM with a nonlinear x-predictor."""
    noise = tf.random.stateless_normal((3, 4, 4, 1), seed=(1, 2))
    for n in (1, 3, 8):
        out = progressive.sample(_teacher, noise, n, prediction="x").numpy()
        z = noise.numpy().astype(np.float64)
        for i in reversed(range(n)):
            lam_t = np.full(3, _np_logsnr((i + 1) / n))
            a_t, s_t = (v.reshape(-1, 1, 1, 1) for v in _np_alpha_sigma(lam_t))
            x_hat = np.clip(_np_teacher(z, lam_t), -1, 1)
            if i == 0:
                break
            eps = (z - a_t * x_hat) / s_t
            a_s, s_s = (
                v.reshape(-1, 1, 1, 1) for v in _np_alpha_sigma(_np_logsnr(i / n))
            )
            z = a_s * x_hat + s_s * eps
        np.testing.assert_allclose(out, x_hat, atol=2e-4)
