"""The Distiller: what must hold for the student, the teacher and the trackers."""

import keras
import numpy as np
import pytest

from tf_distill import Distiller
from tf_distill.data import batches
from tf_distill.distillation.losses import distillation_loss

T, ALPHA = 3.0, 0.3


def make_models():
    keras.utils.set_random_seed(1)
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Flatten()(inputs)
    # BatchNorm and Dropout make `training=True` visible: the moving statistics
    # would move and the logits would be random.
    x = keras.layers.Dense(32)(x)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.Dropout(0.5)(keras.layers.ReLU()(x))
    teacher = keras.Model(inputs, keras.layers.Dense(10)(x), name="teacher")
    student = keras.Sequential(
        [keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(10)],
        name="student",
    )
    return teacher, student


@pytest.fixture
def examples():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 17, size=(96, 8, 8, 1)).astype(np.uint8)
    y = rng.integers(0, 10, size=96).astype(np.int32)
    return x, y


def make_distiller(teacher, student, **kwargs):
    distiller = Distiller(
        student=student, teacher=teacher, temperature=T, alpha=ALPHA, **kwargs
    )
    distiller.compile(optimizer=keras.optimizers.Adam(1e-2))
    return distiller


def test_one_epoch_moves_the_student_and_not_the_teacher(examples):
    teacher, student = make_models()
    teacher_before = [w.copy() for w in teacher.get_weights()]  # incl. BN statistics
    student_before = [w.copy() for w in student.get_weights()]
    distiller = make_distiller(teacher, student)
    distiller.fit(
        batches.pipeline(*examples, batch_size=32), epochs=1, verbose=0, shuffle=False
    )
    for before, after in zip(teacher_before, teacher.get_weights(), strict=True):
        np.testing.assert_array_equal(before, after)  # bit for bit
    moved = [
        np.abs(b - a).max()
        for b, a in zip(student_before, student.get_weights(), strict=True)
    ]
    assert min(moved) > 0, "every student variable should have been updated"


def test_only_student_variables_are_trainable():
    teacher, student = make_models()
    distiller = make_distiller(teacher, student)
    trainable = {id(v) for v in distiller.trainable_variables}
    assert trainable == {id(v) for v in student.trainable_variables}
    assert not teacher.trainable


def test_tracker_names_are_the_history_keys(examples):
    teacher, student = make_models()
    ds = batches.pipeline(*examples, batch_size=32)
    history = make_distiller(teacher, student).fit(
        ds, validation_data=ds, epochs=1, verbose=0, shuffle=False
    )
    names = ["loss", "hard_loss", "soft_loss", "accuracy", "agreement"]
    assert set(history.history) == set(names) | {f"val_{n}" for n in names}


def test_test_step_matches_a_hand_computation(examples):
    teacher, student = make_models()
    distiller = make_distiller(teacher, student)
    x, y = examples
    results = distiller.evaluate(
        batches.pipeline(x, y, batch_size=96), return_dict=True, verbose=0
    )
    xf = x.astype(np.float32)
    teacher_logits = teacher.predict(xf, verbose=0)
    student_logits = student.predict(xf, verbose=0)
    expected = distillation_loss(
        labels=y,
        teacher_logits=teacher_logits,
        student_logits=student_logits,
        temperature=T,
        alpha=ALPHA,
    )
    for name in ("loss", "hard_loss", "soft_loss"):
        assert results[name] == pytest.approx(float(np.mean(expected[name])), rel=1e-5)
    accuracy = np.mean(np.argmax(student_logits, axis=-1) == y)
    assert results["accuracy"] == pytest.approx(accuracy)
    same_class = np.argmax(student_logits, -1) == np.argmax(teacher_logits, -1)
    assert 0 < np.mean(same_class) < 1  # untrained nets: the check can fail
    assert results["agreement"] == pytest.approx(np.mean(same_class))


def test_validation_without_the_teacher_is_the_label_loss_and_never_calls_it(examples):
    teacher, student = make_models()
    x, y = examples

    def refuse(*args, **kwargs):
        raise AssertionError("the teacher ran on the validation split")

    teacher.call = refuse
    distiller = make_distiller(teacher, student, validation_teacher=False)
    results = distiller.evaluate(
        batches.pipeline(x, y, batch_size=32), return_dict=True, verbose=0
    )
    assert set(results) == {"loss", "hard_loss", "accuracy"}  # no zeros logged
    logits = student.predict(x.astype(np.float32), verbose=0)
    cross_entropy = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    assert results["loss"] == pytest.approx(float(cross_entropy(y, logits)), rel=1e-5)
    assert results["hard_loss"] == results["loss"]
    assert results["accuracy"] == pytest.approx(np.mean(logits.argmax(-1) == y))


def test_cached_teacher_logits_give_the_same_loss_as_the_online_teacher(examples):
    teacher, student = make_models()
    distiller = make_distiller(teacher, student)
    x, y = examples
    cached = teacher.predict(x.astype(np.float32), verbose=0)
    online = distiller.evaluate(
        batches.pipeline(x, y, batch_size=32), return_dict=True, verbose=0
    )
    offline = distiller.evaluate(
        batches.pipeline(x, y, batch_size=32, extra=cached), return_dict=True, verbose=0
    )
    for name in ("loss", "hard_loss", "soft_loss", "accuracy", "agreement"):
        assert offline[name] == pytest.approx(online[name], rel=1e-6)


def test_bad_hyperparameters_are_rejected():
    teacher, student = make_models()
    with pytest.raises(ValueError, match="temperature must be > 0, got 0"):
        Distiller(student=student, teacher=teacher, temperature=0, alpha=0.5)
    with pytest.raises(ValueError, match=r"alpha must be in \[0, 1\], got 1.5"):
        Distiller(student=student, teacher=teacher, temperature=2, alpha=1.5)


def test_training_on_cached_logits_equals_training_with_the_teacher(examples):
    """Same start, same batches: same per-epoch losses and same final student."""
    x, y = examples
    runs = []
    for cached in (False, True):
        teacher, student = make_models()  # same seed: identical initial weights
        extra = teacher.predict(x.astype(np.float32), verbose=0) if cached else None
        ds = batches.pipeline(x, y, batch_size=32, extra=extra)
        history = make_distiller(teacher, student).fit(
            ds, epochs=2, verbose=0, shuffle=False
        )
        runs.append((history.history, student.get_weights()))
    (online_history, online_weights), (cached_history, cached_weights) = runs
    for name in ("loss", "soft_loss"):
        np.testing.assert_allclose(
            online_history[name], cached_history[name], rtol=1e-5
        )
    for a, b in zip(online_weights, cached_weights, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
