"""DDIM sampling and progressive distillation (Salimans & Ho, ICLR 2022, alg. 2).

A network `model(z, lam) -> output` predicts x ("x") or v ("v") from the noisy
image z at log-SNR lam; `predict` turns its output into (x_hat, eps_hat).
Epsilon-prediction is not offered: with SNR weighting it cannot be distilled
(the paper's Table 1: x_hat = (z - sigma eps_hat) / alpha blows up as alpha -> 0).

Sampling with N steps visits t = 1, (N-1)/N, ..., 1/N; each step is one DDIM
update z_s = alpha_s x_hat + sigma_s eps_hat, and the last returns x_hat.

Distilling a teacher that samples in 2N steps into a student that samples in N:
for i uniform in 0..N-1, t = (i+1)/N, t' = t - 0.5/N, t'' = t - 1/N, two DDIM
steps of the (unclipped) teacher z_t -> z_t' -> z_t'' give the target

    x_tilde = (z_t'' - r z_t) / (alpha_t'' - r alpha_t),   r = sigma_t'' / sigma_t

the x whose one DDIM step from t lands on z_t'' exactly. At t'' = 0 (i = 0) the
sampler's last step returns x_hat, not a z: the target is then what the
teacher's last step returns, its x_hat(z_t'). The reference code (google-research
diffusion_distillation, dpm.py) computes the same, the sigma ratio in log space.
"""

from __future__ import annotations

import tensorflow as tf

from tf_distill.tasks.diffusion import schedule

PREDICTIONS = ("x", "v")
WEIGHTINGS = ("snr_trunc", "v_mse")


def predict(output, z, lam, *, prediction: str, clip: bool = False):
    """(x_hat, eps_hat) from a network's output; `clip` clips x_hat to [-1, 1]
    (the data range) and recomputes eps_hat from it, as the sampler does."""
    if prediction == "x":
        x_hat = output
    elif prediction == "v":
        x_hat = schedule.x_from_v(z, output, lam)
    else:
        raise ValueError(f"prediction={prediction!r}; valid: {', '.join(PREDICTIONS)}")
    if clip:
        x_hat = tf.clip_by_value(x_hat, -1.0, 1.0)
    return x_hat, schedule.eps_from_x(z, x_hat, lam)


def ddim_step(x_hat, eps_hat, lam_s):
    """One deterministic DDIM update to lam_s: alpha_s x_hat + sigma_s eps_hat."""
    return schedule.diffuse(x_hat, eps_hat, lam_s)


def _lam(t, batch):
    return tf.fill([batch], 1.0) * schedule.logsnr(t)


def sample(model, noise, num_steps: int, *, prediction: str):
    """DDIM from `noise` (z at t = 1) in `num_steps` steps: images in [-1, 1].

    x_hat is clipped to the data range at every step; the last returns x_hat.
    A tf.while_loop, so a traced sampler holds one copy of the network however
    many steps it takes.
    """
    if num_steps < 1:
        raise ValueError(f"num_steps must be >= 1, got {num_steps}")
    batch = tf.shape(noise)[0]

    def x_eps(z, i):
        lam_t = _lam(tf.cast(i + 1, tf.float32) / num_steps, batch)
        return predict(model(z, lam_t), z, lam_t, prediction=prediction, clip=True)

    def body(i, z):
        x_hat, eps_hat = x_eps(z, i)
        return i - 1, ddim_step(
            x_hat, eps_hat, _lam(tf.cast(i, tf.float32) / num_steps, batch)
        )

    # Steps i = N-1 .. 1 update z; step 0 (t = 1/N) returns x_hat.
    _, z = tf.while_loop(lambda i, z: i > 0, body, (tf.constant(num_steps - 1), noise))
    return x_eps(z, tf.constant(0))[0]


def step_times(i, num_steps: int):
    """(t, t', t'') of the student's step i in 0..num_steps-1 (per example)."""
    i = tf.cast(i, tf.float32)
    t = (i + 1.0) / num_steps
    return t, t - 0.5 / num_steps, t - 1.0 / num_steps


def x_target(z_t, z_s, lam_t, lam_s):
    """The x whose DDIM step from (z_t, lam_t) lands on z_s at lam_s:
    (z_s - r z_t) / (alpha_s - r alpha_t), r = sigma_s / sigma_t."""
    r = schedule.sigma_ratio(lam_s, lam_t, z_t)
    alpha_t, _ = schedule.alpha_sigma(lam_t, z_t)
    alpha_s, _ = schedule.alpha_sigma(lam_s, z_t)
    return (z_s - r * z_t) / (alpha_s - r * alpha_t)


def teacher_target(teacher, z_t, i, num_steps: int, *, prediction: str):
    """x_tilde: two unclipped DDIM steps of `teacher` (a 2N-step sampler), from
    t = (i+1)/N through t' to t'', as one x for the N-step student at t.

    Returns:
        (x_tilde, lam_t): the target and the student's log-SNR at t.
    """
    t, t_mid, t_s = step_times(i, num_steps)
    lam_t, lam_mid, lam_s = (
        schedule.logsnr(t),
        schedule.logsnr(t_mid),
        schedule.logsnr(t_s),
    )
    x1, eps1 = predict(teacher(z_t, lam_t), z_t, lam_t, prediction=prediction)
    z_mid = ddim_step(x1, eps1, lam_mid)
    x2, eps2 = predict(teacher(z_mid, lam_mid), z_mid, lam_mid, prediction=prediction)
    z_s = ddim_step(x2, eps2, lam_s)
    # At t'' = 0 the sampler's last step returns x_hat: so does the teacher's.
    last = schedule.broadcast(tf.equal(tf.cast(i, tf.int32), 0), z_t)
    return tf.where(last, x2, x_target(z_t, z_s, lam_t, lam_s)), lam_t


def weighted_loss(x_hat, x_true, lam, *, weighting: str):
    """Per-example loss: the mean squared x error over pixels, weighted by
    max(SNR, 1) ("snr_trunc", the paper's truncated SNR) or SNR + 1 ("v_mse",
    which equals the mean squared error in v)."""
    axes = list(range(1, x_hat.shape.rank))
    x_mse = tf.reduce_mean(tf.square(x_hat - x_true), axis=axes)
    snr = tf.exp(tf.cast(lam, x_mse.dtype))
    if weighting == "snr_trunc":
        return tf.maximum(snr, 1.0) * x_mse
    if weighting == "v_mse":
        return (snr + 1.0) * x_mse
    raise ValueError(f"weighting={weighting!r}; valid: {', '.join(WEIGHTINGS)}")
