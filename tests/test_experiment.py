"""The experiment layer's parts: mode dispatch, the run directory's names, and the
choice of weights a model ships; each in seconds, without a full run."""

import json

import keras
import numpy as np
import pytest

from configs import digits_diffusion as default_diffusion
from tests.conftest import fit_on_arrays
from tests.test_main import run_main
from tf_distill import experiment, tasks
from tf_distill.outputs.rundir import ModelKey, RunDir, runs_of
from tf_distill.training import fitting


def test_each_mode_dispatches_through_the_task_table(
    tiny_config, tmp_path, monkeypatch
):
    table = tasks.get("classifier").modes
    called = {}
    for name in table:
        monkeypatch.setitem(
            table,
            name,
            lambda config, run_dir, name=name: called.setdefault(name, run_dir),
        )
    for mode in experiment.MODES:
        experiment.run(
            tiny_config,
            workdir=str(tmp_path / "w"),
            mode=mode,
            tensorboard_dir=str(tmp_path / "tb"),
        )
    assert list(called) == list(experiment.MODES)
    assert set(called.values()) == {RunDir(str(tmp_path / "w"), str(tmp_path / "tb"))}


def test_a_task_refuses_the_modes_it_lacks_and_an_unknown_task_is_named(tiny_config):
    diffusion = default_diffusion.get_config()
    assert "sweep" not in tasks.get("diffusion").modes
    with pytest.raises(ValueError, match="--model=sweep is not a mode of the diff"):
        experiment.run(diffusion, workdir="/nonexistent/w", mode="sweep")
    tiny_config.task = "segmentation"
    with pytest.raises(ValueError, match="config.task='segmentation': valid: class"):
        experiment.run(tiny_config, workdir="/nonexistent/w", mode="teacher")


def test_main_offers_exactly_the_modes_of_the_table(tmp_path):
    proc = run_main(tmp_path, "--model=nonsense")
    assert proc.returncode != 0
    listed = proc.stderr.split("one of ")[1]
    for mode in experiment.MODES:
        assert mode in listed
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    "name, base, seed, role",
    [
        ("teacher", "teacher", None, "teacher"),
        ("student", "student", None, "student"),
        ("distilling_seed43", "distilling", 43, "student"),
        ("sweep/T4_alpha0.1", "sweep/T4_alpha0.1", None, "student"),
        ("sweep/student_seed-1", "sweep/student", -1, "student"),
    ],
)
def test_model_names_parse_and_round_trip(name, base, seed, role):
    key = ModelKey.parse(name)
    assert (key.base, key.seed, key.role) == (base, seed, role)
    assert key.name == name
    run_dir = RunDir("/w", "/tb")
    assert run_dir.model(key).keras == f"/w/{name}/model.keras"
    assert run_dir.model(key).tensorboard == f"/tb/{name}"
    assert run_dir.model(key).tflite("int8") == f"/w/{name}/{role}_int8.tflite"


def test_keys_of_the_first_seed_keep_the_fixed_names():
    assert ModelKey.of("student", 42, first_seed=42).name == "student"
    assert ModelKey.of("student", 43, first_seed=42).name == "student_seed43"
    cell = ModelKey.sweep_cell(4.0, 0.1, 44, first_seed=42)
    assert cell.name == "sweep/T4_alpha0.1_seed44"
    results = {n: {"n": n} for n in ("student_seed43", "teacher", "student", "st")}
    assert [r["n"] for r in runs_of(results, "student")] == [
        "student",
        "student_seed43",
    ]


def _two_weight_model():
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    last = [np.full((1, 1), 2.0, np.float32), np.zeros(1, np.float32)]
    best = [np.full((1, 1), 5.0, np.float32), np.zeros(1, np.float32)]
    model.set_weights(last)  # as fit leaves it: the last epoch's weights
    return model, last, best


@pytest.mark.parametrize(
    "keep, kept_kernel, name",
    [
        ("best", 5.0, "best_validation"),
        ("last", 2.0, "last_epoch"),
        (2, 7.0, "epoch_2"),
    ],
)
def test_select_weights_measures_each_and_keeps_one(keep, kept_kernel, name):
    model, last, best = _two_weight_model()
    second = [np.full((1, 1), 7.0, np.float32), np.zeros(1, np.float32)]
    kept_epoch = dict(epoch_weights=second, kept_epoch=2) if keep == 2 else {}
    result = fitting.FitResult({}, 1.0, last, best, best_epoch=3, **kept_epoch)
    measured = []

    def evaluate():
        measured.append(float(model.get_weights()[0][0, 0]))
        return measured[-1]

    selection = fitting.select_weights(model, result, evaluate=evaluate, keep=keep)
    assert sorted(measured) == sorted([2.0, 5.0, *([7.0] if keep == 2 else [])])
    assert (selection.best, selection.last) == (5.0, 2.0)
    assert selection.kept == kept_kernel
    assert model.get_weights()[0][0, 0] == kept_kernel
    assert selection.weights == name


def test_select_weights_refuses_an_epoch_the_fit_did_not_keep():
    model, last, best = _two_weight_model()
    result = fitting.FitResult({}, 1.0, last, best, best_epoch=3)
    with pytest.raises(ValueError, match="kept no epoch 2"):
        fitting.select_weights(model, result, evaluate=lambda: 0.0, keep=2)


def test_select_weights_measures_once_when_the_last_epoch_was_best():
    model, last, _ = _two_weight_model()
    result = fitting.FitResult({}, 1.0, last, None, best_epoch=4)
    calls = []
    selection = fitting.select_weights(
        model, result, evaluate=lambda: calls.append(1) or len(calls), keep="best"
    )
    assert calls == [1] and selection.best is selection.last


@pytest.mark.slow
def test_early_stopping_ships_the_best_validation_epoch(tiny_config, tmp_path):
    """The default config's path: patience > 0 keeps the best-on-validation
    weights. The saved model must score the history's best val_accuracy."""

    tiny_config.early_stopping.patience = 3
    tiny_config.student.epochs = 8
    metrics = _noisy_run(tiny_config, tmp_path, "student")["student"]
    history = metrics["history"]["val_accuracy"]
    assert metrics["weights"] == "best_validation"
    assert metrics["best_epoch"] == int(np.argmax(history)) + 1
    assert metrics["test_accuracy"] == metrics["test_accuracy_best_validation"]
    assert metrics["validation_accuracy"] == pytest.approx(max(history))
    val_accuracy = _saved_accuracy(tiny_config, tmp_path / "run", "student", "val")
    assert val_accuracy == pytest.approx(max(history), abs=1e-6)
    on_disk = json.loads((tmp_path / "run" / "student" / "metrics.json").read_text())
    assert on_disk["test_accuracy"] == metrics["test_accuracy"]


def _noisy_run(config, tmp_path, mode):
    """experiment.run of `mode` at a learning rate high enough for a noisy
    validation curve (the last epoch is not the best), in tmp_path/run."""
    config.optimizer.learning_rate = 3e-2
    return experiment.run(
        config,
        workdir=str(tmp_path / "run"),
        mode=mode,
        tensorboard_dir=str(tmp_path / "tb"),
    )


def _saved_accuracy(config, run, model, split):
    """The accuracy of `run`/`model`/model.keras on the config's `split`."""
    from tf_distill.data import batches
    from tf_distill.models import measure
    from tf_distill.tasks.classifier import settings as config_lib

    splits = config_lib.load_data(config)
    x, y = getattr(splits, f"x_{split}"), getattr(splits, f"y_{split}")
    saved = keras.models.load_model(run / model / "model.keras")
    return measure.evaluate(saved, batches.pipeline(x, y, batch_size=64)).accuracy


@pytest.mark.slow
def test_a_teacher_keeps_an_earlier_epoch_and_teaches_with_it(tiny_config, tmp_path):
    """config.teacher.keep="2" of 5 epochs, early stopping on: the teacher trains
    all 5 (no early stop) and ships, and measures, the weights after epoch 2."""
    tiny_config.teacher.keep = "2"
    tiny_config.teacher.epochs = 5
    tiny_config.early_stopping.patience = 1
    results = _noisy_run(tiny_config, tmp_path, "teacher")  # epochs 2, 5 differ
    teacher = results["teacher"]
    assert teacher["weights"] == "epoch_2" and teacher["epochs_run"] == 5
    assert teacher["validation_accuracy"] == teacher["history"]["val_accuracy"][1]
    assert teacher["test_accuracy"] != teacher["test_accuracy_last_epoch"]
    test_accuracy = _saved_accuracy(tiny_config, tmp_path / "run", "teacher", "test")
    assert test_accuracy == pytest.approx(teacher["test_accuracy"], abs=1e-6)


def test_the_summary_gives_each_model_over_its_seeds(tmp_path):
    """What the verdict is computed over (the mean of the seeds), not seed one."""
    from tf_distill.outputs.rundir import RunDir
    from tf_distill.tasks.classifier import modes

    results = {
        "teacher": {"test_accuracy": 0.95},
        "student": {"test_accuracy": 0.90},
        "student_seed43": {"test_accuracy": 0.92},
        "student_seed44": {"test_accuracy": 0.94},
    }
    lines = modes.summary("student", results, RunDir(str(tmp_path), str(tmp_path)))
    assert lines[0].startswith("  teacher: test accuracy 0.9500 (1 seed), model ")
    assert lines[1].startswith(
        "  student: test accuracy 0.9200 ± 0.0200 over 3 seeds, model "
    )
    assert len(lines) == 2  # the later seeds are in the student's line


def _small_fit(tmp_path, *, epochs, validation_every, patience, learning_rate):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4)).astype("float32")
    y = (x[:, 0] > 0).astype("int32")
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return fit_on_arrays(
        model,
        x,
        y,
        tmp_path,
        epochs=epochs,
        early_stopping=fitting.EarlyStopping("val_accuracy", patience),
        validation_every=validation_every,
    )


def _steps_of(folder, tag):
    import os

    import tensorflow as tf

    return [
        event.step
        for name in os.listdir(folder)
        for event in tf.compat.v1.train.summary_iterator(os.path.join(folder, name))
        for value in event.summary.value
        if value.tag == tag
    ]


def test_validation_every_third_epoch_and_after_the_last(tmp_path):
    result = _small_fit(
        tmp_path, epochs=7, validation_every=3, patience=0, learning_rate=0.1
    )
    history = result.history
    assert all(v is not None for v in history["loss"]) and len(history["loss"]) == 7
    validated = [i + 1 for i, v in enumerate(history["val_loss"]) if v is not None]
    assert validated == [3, 6, 7]
    assert result.best_epoch in (3, 6, 7)
    # TensorBoard's epoch scalars at the same epochs (Keras counts them from 0).
    for split in ("train", "validation"):
        steps = _steps_of(tmp_path / "tb" / split, "epoch_loss")
        assert steps == [2, 5, 6], (split, steps)


def test_patience_stays_in_epochs_when_validation_is_sparser(tmp_path):
    """No learning: epoch 3's validation stays the best; a patience of 6 epochs
    (2 validations of every 3rd epoch) stops the fit after epoch 9."""
    result = _small_fit(
        tmp_path, epochs=30, validation_every=3, patience=6, learning_rate=0.0
    )
    assert result.epochs_run == 9 and result.best_epoch == 3


def test_teacher_keep_is_the_teachers_alone():
    """config.teacher.keep chooses the teacher's weights; every other model
    keeps early stopping's choice (the best with a patience, else the last)."""
    from tf_distill.tasks.classifier.settings import Settings, kept_weights

    settings = Settings(
        teacher_keep="3",
        early_stopping=fitting.EarlyStopping(patience=5),
        distill_early_stopping=fitting.EarlyStopping(patience=0),
    )
    # An epoch runs the whole schedule: no early stop.
    assert kept_weights(settings, teacher=True) == (
        3,
        fitting.EarlyStopping(patience=0),
    )
    assert kept_weights(settings, teacher=False)[0] == "best"
    assert kept_weights(settings, teacher=False, distilling=True)[0] == "last"
    auto = Settings(early_stopping=fitting.EarlyStopping(patience=0))
    assert kept_weights(auto, teacher=True)[0] == "last"
    keep, stopping = kept_weights(Settings(teacher_keep="best"), teacher=True)
    assert keep == "best" and stopping.patience == 20  # early stopping's default
