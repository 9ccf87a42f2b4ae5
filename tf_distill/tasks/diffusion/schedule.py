"""The continuous-time diffusion process of Salimans & Ho (2022), sec. 2.

    z_t = alpha_t x + sigma_t eps,   eps ~ N(0, I),   t in [0, 1]
    alpha_t^2 = sigmoid(lambda_t),   sigma_t^2 = sigmoid(-lambda_t)

where lambda_t = log(alpha_t^2 / sigma_t^2) is the log signal-to-noise ratio. The
"cosine" schedule is alpha_t = cos(pi t / 2) clipped to lambda in [-20, 20], as in
the reference code (google-research diffusion_distillation, schedules.py):

    lambda(t) = -2 log tan(a t + b),  b = arctan(exp(-lambda_max / 2)),
                                      a = arctan(exp(-lambda_min / 2)) - b

so lambda(0) = lambda_max (almost clean) and lambda(1) = lambda_min, where
alpha^2 = sigmoid(-20) ~ 2e-9: sampling starts from pure N(0, I) noise.

The conversions between the network's prediction (x, eps or v = alpha eps - sigma
x) are written with lambda alone, in forms that stay finite at both ends
(1 / alpha = sqrt(1 + exp(-lambda)), 1 / sigma = sqrt(1 + exp(lambda))). Every
function takes per-example log-SNRs of shape (batch,) and broadcasts them over
the image axes.
"""

from __future__ import annotations

import math

import tensorflow as tf

LOGSNR_MIN = -20.0
LOGSNR_MAX = 20.0


def logsnr(t, *, logsnr_min: float = LOGSNR_MIN, logsnr_max: float = LOGSNR_MAX):
    """lambda(t) of the clipped cosine schedule, for t in [0, 1]."""
    b = math.atan(math.exp(-0.5 * logsnr_max))
    a = math.atan(math.exp(-0.5 * logsnr_min)) - b
    t = tf.convert_to_tensor(t, tf.float32)
    return -2.0 * tf.math.log(tf.math.tan(a * t + b))


def broadcast(values, like):
    """(batch,) values as (batch, 1, ..., 1), to scale images like `like`
    (numbers in its dtype; booleans, for tf.where, stay booleans)."""
    values = tf.convert_to_tensor(values)
    if values.dtype != tf.bool:
        values = tf.cast(values, like.dtype)
    return tf.reshape(
        values, tf.concat([tf.shape(values), [1] * (like.shape.rank - 1)], 0)
    )


def alpha_sigma(lam, like):
    """(alpha, sigma) for log-SNRs `lam`, shaped to scale images like `like`."""
    lam = broadcast(lam, like)
    return tf.sqrt(tf.sigmoid(lam)), tf.sqrt(tf.sigmoid(-lam))


def diffuse(x, eps, lam):
    """z = alpha x + sigma eps: the noisy image at log-SNR `lam`."""
    alpha, sigma = alpha_sigma(lam, x)
    return alpha * x + sigma * eps


def x_from_eps(z, eps, lam):
    """x = (z - sigma eps) / alpha."""
    lam = broadcast(lam, z)
    return tf.sqrt(1.0 + tf.exp(-lam)) * (z - eps * tf.math.rsqrt(1.0 + tf.exp(lam)))


def eps_from_x(z, x, lam):
    """eps = (z - alpha x) / sigma."""
    lam = broadcast(lam, z)
    return tf.sqrt(1.0 + tf.exp(lam)) * (z - x * tf.math.rsqrt(1.0 + tf.exp(-lam)))


def x_from_v(z, v, lam):
    """x = alpha z - sigma v (v = alpha eps - sigma x)."""
    alpha, sigma = alpha_sigma(lam, z)
    return alpha * z - sigma * v


def v_from_x_eps(x, eps, lam):
    """v = alpha eps - sigma x."""
    alpha, sigma = alpha_sigma(lam, x)
    return alpha * eps - sigma * x


def sigma_ratio(lam_s, lam_t, like):
    """sigma_s / sigma_t, in log space: log sigma^2 = -softplus(lambda), so the
    ratio is exp((softplus(lambda_t) - softplus(lambda_s)) / 2), finite where
    sigma_s or sigma_t alone would underflow."""
    lam_s, lam_t = broadcast(lam_s, like), broadcast(lam_t, like)
    return tf.exp(0.5 * (tf.nn.softplus(lam_t) - tf.nn.softplus(lam_s)))
