"""The Python API and users' own model builders, as a user calls them."""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import tf_distill
from tests.conftest import REPO, tiny_flags
from tests.test_main import run_main
from tf_distill import experiment
from tf_distill.training import resume


def _digits(batch_size=64, n=512):
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = digits.images[:n, ..., None].astype(np.float32)
    y = digits.target[:n].astype(np.int32)
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size)


def _mlp(units, seed):
    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Rescaling(1 / 16),
            keras.layers.Flatten(),
            keras.layers.Dense(units, activation="relu"),
            keras.layers.Dense(10),
        ]
    )


@pytest.mark.parametrize("cached, validation_teacher", [(True, False), (False, True)])
def test_distill_trains_the_student_and_leaves_the_teacher_alone(
    cached, validation_teacher
):
    train = _digits()
    teacher = _mlp(32, seed=0)
    teacher.compile(
        optimizer="adam",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    teacher.fit(train, epochs=3, verbose=0)
    teacher_before = [w.copy() for w in teacher.get_weights()]
    student = _mlp(8, seed=1)
    student_before = [w.copy() for w in student.get_weights()]

    result = tf_distill.distill(
        teacher=teacher,
        student=student,
        train_data=train,
        validation_data=_digits(n=128),
        epochs=3,
        cache_teacher_logits=cached,
        validation_teacher=validation_teacher,
        verbose=0,
    )
    assert result.student is student and result.cached == cached
    assert (result.teacher_pass_seconds > 0) == cached
    history = result.history
    assert len(history["loss"]) == 3 and history["loss"][-1] < history["loss"][0]
    assert {"hard_loss", "soft_loss", "agreement", "val_loss"} <= set(history)
    # The teacher sees the validation data only when asked to.
    assert ("val_soft_loss" in history) == validation_teacher
    assert ("val_agreement" in history) == validation_teacher
    for before, after in zip(teacher_before, teacher.get_weights(), strict=True):
        np.testing.assert_array_equal(before, after)
    assert any(
        not np.array_equal(b, a)
        for b, a in zip(student_before, student.get_weights(), strict=True)
    )


def test_distill_refuses_models_and_data_that_do_not_match():
    teacher, student = _mlp(8, seed=0), _mlp(8, seed=1)
    three = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Dense(3)])
    with pytest.raises(ValueError, match="teacher has 10 outputs and the student 3"):
        tf_distill.distill(
            teacher=teacher, student=three, train_data=_digits(), epochs=1
        )
    images_only = _digits().map(lambda x, y: x)
    with pytest.raises(ValueError, match="train_data must yield \\(x, y\\) batches"):
        tf_distill.distill(
            teacher=teacher, student=student, train_data=images_only, epochs=1
        )


@pytest.mark.slow
def test_the_python_api_example_runs():
    proc = subprocess.run(
        [sys.executable, os.path.join(REPO, "examples", "distil_your_own_models.py")]
        + ["--epochs=3"],
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES=""),
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    for label in ("teacher", "student alone", "distilled student"):
        line = next(x for x in lines if x.startswith(f"{label} test accuracy"))
        assert 0.0 <= float(line.split()[-1]) <= 1.0
    assert "teacher logits cached: True" in proc.stdout


@pytest.mark.slow
def test_your_own_builders_from_the_command_line(tmp_path):
    proc = run_main(
        tmp_path,
        "--model=all",
        "--workdir=run",
        *tiny_flags(),
        "--config.teacher.arch=tests.builders:tiny_dense",
        "--config.student.arch=examples.my_models:small_cnn",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    student = keras.models.load_model(tmp_path / "run" / "distilling" / "model.keras")
    assert student.name == "small_cnn"
    assert (tmp_path / "run" / "distilling" / "saved_model" / "saved_model.pb").exists()
    assert (tmp_path / "run" / "report.md").exists()


@pytest.mark.parametrize(
    "arch, message",
    [
        ("tests.nowhere:f", "cannot import 'tests.nowhere': ModuleNotFoundError"),
        ("tests.builders:nothing", "module 'tests.builders' has no function 'nothing'"),
        ("tests.builders:not_a_model", "returned str, not a keras.Model"),
        (
            "tests.builders:wrong_classes",
            "maps (None, 8, 8, 1) -> (None, 11), but the data needs (None, 8, 8, 1) "
            "-> (None, 10)",
        ),
        ("tests.builders:raises", "raised ValueError: bad value inside the builder"),
        ("tests.builders:one_argument", "raised TypeError: one_argument() takes 1"),
        ("tests.builders:int_outputs", "outputs int32; logits are floating point"),
        (
            "tests.builders:unregistered_layer",
            "cannot be loaded back from a .keras file",
        ),
    ],
)
def test_a_bad_builder_fails_before_any_work(tiny_config, tmp_path, arch, message):
    """In-process (main.py turns these errors into one line, tests/test_main.py)."""
    tiny_config.student.arch = arch
    with pytest.raises(ValueError) as error:
        experiment.run(
            tiny_config,
            workdir=str(tmp_path / "run"),
            mode="student",
            tensorboard_dir=str(tmp_path / "tb"),
        )
    text = str(error.value)
    assert text.startswith(f"config.student.arch: Model builder {arch!r}") or (
        text.startswith(f"config.student.arch: Model {arch}")
    ), text
    assert message in str(error.value)
    assert not (tmp_path / "run").exists()


def test_the_cached_stream_pairs_every_example_with_its_logits(tmp_path, monkeypatch):
    """More examples than the shuffle buffer, in several shards, a first batch
    smaller than the rest: each epoch holds every example once, with the
    teacher's own logits on it, in a new order."""
    from tf_distill.teacher import stream

    monkeypatch.setattr(stream, "BATCHES_PER_SHARD", 3)
    ids = np.arange(300, dtype=np.float32)
    x = np.zeros((300, 8, 8, 1), np.float32)
    x[:, 0, 0, 0] = ids  # each image says which example it is
    y = (np.arange(300) % 10).astype(np.int32)
    first = tf.data.Dataset.from_tensor_slices((x[:5], y[:5])).batch(5)
    rest = tf.data.Dataset.from_tensor_slices((x[5:], y[5:])).batch(32)
    teacher = _mlp(16, seed=0)
    saved = stream.save_with_logits(
        teacher, first.concatenate(rest), str(tmp_path / "c"), name="train_data"
    )
    assert (saved.examples, saved.batch_size, saved.steps()) == (300, 32, 10)
    assert len(os.listdir(tmp_path / "c")) == 4  # 11 batches, 3 a shard
    ds = stream.read(saved, shuffle_buffer=50, seed=3)
    orders = []
    for _ in range(2):
        seen = []
        for images, labels, logits in ds:
            np.testing.assert_allclose(
                logits.numpy(), teacher(images).numpy(), rtol=1e-5, atol=1e-5
            )
            example = images.numpy()[:, 0, 0, 0].astype(int)
            np.testing.assert_array_equal(labels.numpy(), y[example])
            seen.extend(example)
        assert sorted(seen) == list(range(300))
        orders.append(seen)
    assert orders[0] != orders[1]
    assert orders[0] != list(range(300))


@pytest.mark.parametrize("cached", [True, False])
def test_distill_refuses_an_infinite_dataset_in_one_line(cached):
    teacher, student = _mlp(8, seed=0), _mlp(8, seed=1)
    with pytest.raises(ValueError, match=r"train_data is infinite \(a .repeat\(\)"):
        tf_distill.distill(
            teacher=teacher,
            student=student,
            train_data=_digits().repeat(),
            epochs=1,
            cache_teacher_logits=cached,
        )


def _softmax_teacher():
    return keras.Sequential([_mlp(8, seed=0), keras.layers.Softmax()])


def _sharing_student(teacher):
    """A student that reuses the teacher's first Dense layer."""
    inputs = keras.Input((8, 8, 1))
    hidden = teacher.layers[2](
        keras.layers.Flatten()(keras.layers.Rescaling(1 / 16)(inputs))
    )
    return keras.Model(inputs, keras.layers.Dense(10)(hidden))


_one_hot = _digits().map(lambda x, y: (x, tf.one_hot(y, 10)))
_flat = _digits().map(lambda x, y: (tf.reshape(x, (-1, 64)), y))


@pytest.mark.parametrize(
    "change, message",
    [
        (
            {"train_data": (np.zeros((4, 8, 8, 1)), np.zeros(4))},
            "must be a tf.data.Dataset",
        ),
        (
            {"train_data": _digits().unbatch()},
            r"shape \(batch,\), got \(\) \(unbatched",
        ),
        ({"train_data": _one_hot}, r"integer class indices, got float32 \(one-hot"),
        (
            {"train_data": _digits().map(lambda x, y: (x, y + 5))},
            r"labels \[10, 11, 12, 13, 14\] outside 0..9",
        ),
        (
            {"validation_data": _flat},
            r"validation_data yields x of shape \(None, 64\), but the teacher "
            r"takes \(None, 8, 8, 1\)",
        ),
        ({"epochs": 0}, "epochs must be >= 1, got 0"),
        ({"teacher": _softmax_teacher()}, "gives probabilities, not logits"),
        ({"student": "shared"}, r"shares 2 weight\(s\) with the teacher"),
    ],
)
def test_the_api_refuses_bad_arguments_in_one_line(change, message):
    arguments = {
        "teacher": _mlp(8, seed=0),
        "student": _mlp(8, seed=1),
        "train_data": _digits(),
        "epochs": 1,
        "verbose": 0,
        **change,
    }
    if arguments["student"] == "shared":
        arguments["student"] = _sharing_student(arguments["teacher"])
    with pytest.raises(ValueError, match=message):
        tf_distill.distill(**arguments)


def test_the_api_stops_at_the_first_nan_loss():
    with pytest.raises(
        resume.TrainingDiverged, match=r"lower learning rate \(optimizer=\)"
    ):
        tf_distill.distill(
            teacher=_mlp(8, seed=0),
            student=_mlp(8, seed=1),
            train_data=_digits(),
            epochs=2,
            optimizer=keras.optimizers.SGD(1e30),
            verbose=0,
        )


def test_a_small_first_batch_does_not_set_the_batch_size():
    small_first = _digits(n=3).concatenate(_digits(n=512).skip(1).unbatch().batch(64))
    steps = []
    tf_distill.distill(
        teacher=_mlp(8, seed=0),
        student=_mlp(8, seed=1),
        train_data=small_first,
        epochs=1,
        verbose=0,
        callbacks=[
            keras.callbacks.LambdaCallback(
                on_train_batch_end=lambda b, logs: steps.append(b)
            )
        ],
    )
    assert len(steps) == -(-(3 + 448) // 64)  # the examples over the largest batch
