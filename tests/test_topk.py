"""Top-k cached logits (tf_distill/teacher/topk.py): what the expanded logits keep
exactly (the top classes' probabilities and the rest's total at T=1, the top-1
class), and the pipelines hand the student each example's own expanded logits."""

import numpy as np
import pytest
import tensorflow as tf

from tf_distill.data import batches
from tf_distill.teacher import topk, views


def _softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


@pytest.mark.parametrize("shape", [(50, 10), (6, 3, 10)])  # examples; views
def test_expanded_logits_keep_the_top_classes_and_the_rests_total(shape):
    rng = np.random.default_rng(0)
    logits = rng.normal(scale=4.0, size=shape).astype(np.float32)
    k = 3
    compact = topk.TopK.of(logits, k)
    assert compact.values.shape == (*shape[:-1], k + 1) and compact.k == k
    assert compact.classes.dtype == np.int16  # 2 bytes a kept class
    expanded = topk.expand(compact.values, compact.classes, shape[-1]).numpy()
    exact, approx = _softmax(logits.astype(np.float64)), _softmax(expanded)
    top = np.argsort(-logits, axis=-1)[..., :k]
    np.testing.assert_allclose(
        np.take_along_axis(approx, top, -1),
        np.take_along_axis(exact, top, -1),
        rtol=1e-4,
    )
    rest = 1 - np.take_along_axis(exact, top, -1).sum(-1)
    rest_approx = 1 - np.take_along_axis(approx, top, -1).sum(-1)
    np.testing.assert_allclose(rest_approx, rest, rtol=1e-3, atol=1e-6)
    np.testing.assert_array_equal(expanded.argmax(-1), logits.argmax(-1))
    # The others are taken as equal: the approximation the docstring admits.
    others = np.ones(shape, bool)
    np.put_along_axis(others, top, False, -1)
    spread = approx[others].reshape(*shape[:-1], -1)
    np.testing.assert_allclose(spread, spread[..., :1] * np.ones_like(spread))


def test_a_teacher_sure_of_its_classes_gives_finite_logits():
    logits = np.array([[200.0, 0.0, -200.0, -300.0]], np.float32)
    compact = topk.TopK.of(logits, 1, "float16")
    expanded = topk.expand(compact.values, compact.classes, 4).numpy()
    assert np.isfinite(expanded).all() and expanded.argmax() == 0
    with pytest.raises(ValueError, match="0 < k < 4 classes, got 4"):
        topk.TopK.of(logits, 4)


def test_the_pipelines_carry_each_examples_own_expanded_logits():
    rng = np.random.default_rng(1)
    n, classes = 12, 10
    x = rng.integers(0, 17, (n, 8, 8, 1)).astype(np.uint8)
    y = np.arange(n, dtype=np.int32)
    logits = rng.normal(size=(n, 2, classes)).astype(np.float32)
    compact = topk.TopK.of(logits, 4)
    expected = topk.expand(compact.values, compact.classes, classes).numpy()

    flat = topk.TopK(compact.values[:, 0], compact.classes[:, 0], classes)
    ds = batches.pipeline(
        x, y, batch_size=5, extra=flat, shuffle_seed=0, epochs=range(1)
    )
    for _, labels, teacher in ds:
        np.testing.assert_allclose(teacher.numpy(), expected[labels.numpy(), 0])

    params = views.draw_params(views_spec(), n, 2, seed=0)
    ds = views.pipeline(
        x, y, params, compact, batch_size=5, shuffle_seed=0, epochs=range(1)
    )
    for _, labels, teacher in ds:
        for label, row in zip(labels.numpy(), teacher.numpy(), strict=True):
            matches = [v for v in range(2) if np.allclose(row, expected[label, v])]
            assert matches, "a row that is no view of its own image"
    assert tf.is_tensor(teacher) and teacher.dtype == tf.float32


def views_spec():
    from tf_distill.data import augment

    return augment.AugmentSpec(translate=1)
