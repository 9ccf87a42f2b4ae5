"""Cached augmented views: the teacher runs K times in all, not once per step.

With augmentation on, the teacher must see the student's augmented pixels, so its
logits cannot be cached per image and it runs in every training step (what
keras.distillation pays). Following FKD (Shen & Xing, ECCV 2022, "A Fast
Knowledge Distillation Framework for Visual Recognition") and Ridnik et al. 2022
("Solving ImageNet"), `config.distill.cached_views = K` instead:

1. draws, for each training image, K sets of augmentation parameters from a
   seeded generator (`draw_params`: a shift, flips, a rotation, a mixup partner
   and weight, as config.augment allows);
2. runs the teacher once over each of the K views (`render` makes the pixels)
   and keeps the parameters and the logits (in config.distill.cache_dtype);
3. in each epoch trains the student on one stored view per image, chosen from
   (seed, epoch), re-creating with `render` exactly the pixels the teacher saw.

The parameters depend on the run's first seed alone, so every seed's student and
a resumed run use the same views; each student's seed picks among them. The
augmentations are this module's own (integer shifts, bilinear rotation about the
centre with zeros outside, flips, mixup with the partner's raw image), not Keras'
random layers, which cannot replay a given draw; colour jitter is not offered.

Images read by index (arrays, image files) offer every augmentation. TFRecord
files, read in order, stream their views without mixup (a partner would be
read by its index): the teacher's pass decodes each record once for its K
views, and each epoch a record shows the view an array's image would.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from tf_distill.data import augment, batches, image_files
from tf_distill.teacher import topk
from tf_distill.training import distribute

# The columns of a view's parameters.
PARAMS = ("dy", "dx", "flip_h", "flip_v", "angle", "partner", "mix")
_DY, _DX, _FLIP_H, _FLIP_V, _ANGLE, _PARTNER, _MIX = range(len(PARAMS))


def views_bytes(
    images: int, views_per_image: int, num_classes: int, dtype: str, top_k: int
) -> int:
    """What cached views hold in memory (and about as much on disk): each view's
    logits (or top-k values and int16 classes) and its parameters (PARAMS)."""
    item = np.dtype(dtype).itemsize
    if 0 < top_k < num_classes:
        logits = (top_k + 1) * item + top_k * 2
    else:
        logits = num_classes * item
    return images * views_per_image * (logits + len(PARAMS) * 4)


def draw_params(spec: augment.AugmentSpec, n: int, k: int, seed: int) -> np.ndarray:
    """(n, k, len(PARAMS)) float32 parameters, a function of (spec, n, k, seed)."""
    rng = np.random.default_rng([seed, n, k])
    params = np.zeros((n, k, len(PARAMS)), np.float32)
    if spec.translate:
        shift = rng.integers(-spec.translate, spec.translate + 1, (n, k, 2))
        params[..., _DY], params[..., _DX] = shift[..., 0], shift[..., 1]
    if spec.flip in ("horizontal", "horizontal_and_vertical"):
        params[..., _FLIP_H] = rng.random((n, k)) < 0.5
    if spec.flip in ("vertical", "horizontal_and_vertical"):
        params[..., _FLIP_V] = rng.random((n, k)) < 0.5
    if spec.rotation:
        degrees = rng.uniform(-spec.rotation, spec.rotation, (n, k))
        params[..., _ANGLE] = np.deg2rad(degrees)
    params[..., _PARTNER] = np.arange(n)[:, None]  # itself: no mixing
    params[..., _MIX] = 1.0
    if spec.mixup:
        params[..., _PARTNER] = rng.integers(0, n, (n, k))
        params[..., _MIX] = rng.beta(spec.mixup, spec.mixup, (n, k))
    return params


def render(x, partner, params):
    """The views' pixels: float32 (b, h, w, c) from raw images `x`, their mixup
    partners' raw images and (b, len(PARAMS)) parameters. Per image, so a view's
    pixels do not depend on the batch it comes in."""
    x = tf.cast(x, tf.float32)
    partner = tf.cast(partner, tf.float32)
    column = lambda i: tf.reshape(params[:, i], (-1, 1, 1, 1))  # noqa: E731
    mix = column(_MIX)
    x = mix * x + (1.0 - mix) * partner
    x = tf.where(column(_FLIP_H) > 0.5, tf.reverse(x, axis=[2]), x)
    x = tf.where(column(_FLIP_V) > 0.5, tf.reverse(x, axis=[1]), x)
    height, width = x.shape[1], x.shape[2]
    cy, cx = (height - 1) / 2.0, (width - 1) / 2.0
    angle, dy, dx = params[:, _ANGLE], params[:, _DY], params[:, _DX]
    cos, sin = tf.cos(angle), tf.sin(angle)
    # Output pixel (u, v) reads input R(-angle) ((u, v) - centre - shift) + centre.
    transforms = tf.stack(
        [
            cos,
            sin,
            cx - cos * (cx + dx) - sin * (cy + dy),
            -sin,
            cos,
            cy + sin * (cx + dx) - cos * (cy + dy),
            tf.zeros_like(cos),
            tf.zeros_like(cos),
        ],
        axis=1,
    )
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=x,
        transforms=transforms,
        output_shape=tf.constant([height, width]),
        fill_value=0.0,
        interpolation="BILINEAR",
        fill_mode="CONSTANT",
    )


def teacher_logits(
    teacher: keras.Model,
    x,
    params: np.ndarray,
    *,
    batch_size: int,
    dtype: str,
    rows: range | None = None,
) -> np.ndarray:
    """(len(rows), k, classes) logits of the teacher on every view of the images
    `rows` (all by default; a mixup partner may be any image of `x`)."""
    rows = range(len(x)) if rows is None else rows
    if not image_files.random_access(x):
        return _streamed_logits(teacher, x, params, batch_size, dtype, rows)
    k = params.shape[1]
    fetch = image_files.fetcher(x)  # rows of an array, or decoded image files

    @tf.function
    def view_logits(idx, p):
        partner = fetch(tf.cast(p[:, _PARTNER], tf.int64))
        return teacher(render(fetch(idx), partner, p), training=False)

    out = None
    for view in range(k):
        for first in range(rows.start, rows.stop, batch_size):
            idx = np.arange(first, min(rows.stop, first + batch_size))
            logits = view_logits(
                tf.constant(idx, tf.int64), tf.constant(params[idx, view])
            )
            if out is None:
                out = np.zeros((len(rows), k, logits.shape[-1]), dtype)
            out[idx - rows.start, view] = np.asarray(logits).astype(dtype)
    return out


def _streamed_logits(teacher, x, params, batch_size, dtype, rows) -> np.ndarray:
    """teacher_logits for images read in order (TFRecord files): each batch is
    decoded once and the teacher runs on its K views. Without mixup only: a
    view's partner is the image itself (check_partners)."""
    check_partners(params)
    part = x[rows.start : rows.stop]
    ds = part.stream().batch(batch_size)
    ds = ds.map(
        lambda positions, records: (positions, part.decode_batch(records)),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
    view_logits = tf.function(
        lambda images, p: teacher(render(images, images, p), training=False)
    )
    out = None
    for positions, images in batches.finish(ds, buffer=2):
        idx = positions.numpy()
        for view in range(params.shape[1]):
            p = tf.constant(params[rows.start + idx, view])
            logits = np.asarray(view_logits(images, p))
            if out is None:
                out = np.zeros((len(rows), params.shape[1], logits.shape[-1]), dtype)
            out[idx, view] = logits.astype(dtype)
    return out


def check_partners(params: np.ndarray) -> None:
    """Refuses views mixed with a partner image, which only images read by
    index (arrays, image files) can fetch."""
    own = np.arange(len(params), dtype=np.float32)[:, None]
    if not np.all(params[..., _PARTNER] == own):
        raise ValueError(
            "cached views with mixup need images read by index (an array or "
            "image files), not TFRecord files read in order"
        )


def _view_pick(n: int, k: int, seed: tf.Tensor, epoch: tf.Tensor) -> tf.Tensor:
    """(n,) int64: the view each image shows in `epoch`, from (seed, epoch) alone."""
    return tf.random.stateless_uniform(
        [n], seed=tf.stack([seed + 1, epoch]), maxval=k, dtype=tf.int64
    )


def pipeline(
    x,
    y: np.ndarray,
    params: np.ndarray,
    logits: np.ndarray | topk.TopK,
    *,
    batch_size: int,
    shuffle_seed: int,
    epochs: range,
    share: distribute.Share | None = None,
) -> tf.data.Dataset:
    """(view pixels, labels, the teacher's logits on that view) batches.

    Epoch e's order and each image's view depend on (shuffle_seed, e) alone, so a
    resumed run continues with the views it would have had. `share`: this
    worker's replicas' slices of each batch (batches.take_share).
    """
    n, k = params.shape[:2]
    labels, params_t = tf.constant(y), tf.constant(params)
    if isinstance(logits, topk.TopK):
        columns = (tf.constant(logits.values), tf.constant(logits.classes))
    else:
        columns = (tf.constant(logits),)
    seed = tf.constant(shuffle_seed, tf.int64)

    def teacher_of(*column_rows):
        if isinstance(logits, topk.TopK):
            return topk.expand(*column_rows, logits.num_classes)
        return tf.cast(column_rows[0], tf.float32)

    if not image_files.random_access(x):
        check_partners(params)
        tables = (labels, params_t, columns)
        return _streamed_pipeline(
            x, tables, teacher_of, batch_size, shuffle_seed, epochs, share
        )
    fetch = image_files.fetcher(x)

    def one_epoch(epoch):
        order = batches.epoch_order(n, seed, epoch)
        pick = _view_pick(n, k, seed, epoch)
        pairs = (order, tf.gather(pick, order))  # image i keeps its view pick[i]
        return tf.data.Dataset.from_tensor_slices(pairs).batch(batch_size)

    def to_batch(idx, view):
        where = tf.stack([idx, view], axis=1)
        p = tf.gather_nd(params_t, where)
        partner = fetch(tf.cast(p[:, _PARTNER], tf.int64))
        pixels = render(fetch(idx), partner, p)
        teacher = teacher_of(*(tf.gather_nd(column, where) for column in columns))
        return pixels, tf.gather(labels, idx), teacher

    ds = batches.take_share(batches.over_epochs(epochs, one_epoch), share)
    ds = ds.map(to_batch, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return batches.finish(ds)


def _streamed_pipeline(
    records, tables, teacher_of, batch_size, shuffle_seed, epochs, share
):
    """pipeline() for TFRecord files (records.RecordImages), read in the order
    batches.record_batches shuffles them: each record's view is the one
    _view_pick gives its image in that epoch, as for an array, and its
    pixels need no partner (check_partners)."""
    labels, params, columns = tables
    n, k = params.shape[:2]
    seed = tf.constant(shuffle_seed, tf.int64)

    def columns_at(epoch):
        pick = _view_pick(n, k, seed, epoch)

        def at(positions):
            positions = tf.cast(positions, tf.int64)
            where = tf.stack([positions, tf.gather(pick, positions)], axis=1)
            rows = (tf.gather_nd(c, where) for c in (params, *columns))
            return (tf.gather(labels, positions), *rows)

        return at

    def to_batch(serialized, y, p, *column_rows):
        images = records.decode_batch(serialized)
        return render(images, images, p), y, teacher_of(*column_rows)

    ds = batches.record_batches(records, batch_size, shuffle_seed, epochs, columns_at)
    ds = batches.take_share(ds, share)
    ds = ds.map(to_batch, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return batches.finish(ds, buffer=2)
