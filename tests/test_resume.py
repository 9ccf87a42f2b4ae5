"""Surviving a crash: a killed run resumes where it stopped; NaN losses stop a run."""

import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.conftest import fit_on_arrays, tiny_flags, whole_and_resumed
from tests.test_distribute import ENV
from tests.test_main import MAIN, run_main
from tests.test_train import run_in
from tf_distill.training import backups, resume


def _student_command(workdir):
    # Batch 2: ~650 steps an epoch, so an epoch lasts long enough to stop the run
    # between two backups.
    return [
        "--model=student",
        f"--workdir={workdir}",
        *tiny_flags(),
        "--config.student.epochs=4",  # later flags override the tiny ones
        "--config.batch_size=2",
        "--config.deterministic=True",
        "--config.backup_every_seconds=0",  # a backup after every epoch
    ]


def _backed_up_epoch(workdir):
    path = workdir / ".backup" / "student" / "training_metadata.json"
    try:
        return json.loads(path.read_text())["epoch"]
    except (FileNotFoundError, json.JSONDecodeError):
        return 0


@pytest.mark.slow
def test_a_killed_run_resumes_at_its_next_epoch_with_the_same_result(tmp_path):
    run = tmp_path / "crashed"
    proc = subprocess.Popen(
        [sys.executable, MAIN, *_student_command(run)],
        cwd=tmp_path,
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 300
        while _backed_up_epoch(run) < 2 and proc.poll() is None:
            assert time.monotonic() < deadline, "no backup of epoch 2 in 300 s"
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert _backed_up_epoch(run) == 2, "the run was not stopped after epoch 2"
    assert not (run / "student" / "model.keras").exists()

    resumed = run_main(tmp_path, *_student_command(run))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "Resuming student at epoch 3 of 4" in (run / "run.log").read_text()
    uninterrupted = run_main(tmp_path, *_student_command(tmp_path / "whole"))
    assert uninterrupted.returncode == 0, uninterrupted.stderr[-3000:]
    assert "Resuming" not in (tmp_path / "whole" / "run.log").read_text()

    import keras

    got = keras.models.load_model(run / "student" / "model.keras").get_weights()
    want = keras.models.load_model(
        tmp_path / "whole" / "student" / "model.keras"
    ).get_weights()
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(g, w)
    history = json.loads((run / "student" / "metrics.json").read_text())["history"]
    whole = json.loads((tmp_path / "whole" / "student" / "metrics.json").read_text())
    assert len(history["loss"]) == 4
    np.testing.assert_allclose(history["loss"], whole["history"]["loss"], rtol=1e-6)
    assert not (run / ".backup").exists()  # a finished run removes its backup


def test_a_nan_loss_stops_with_the_loss_and_step_and_saves_nothing(tmp_path):
    proc = run_main(
        tmp_path,
        "--model=student",
        "--workdir=run",
        *tiny_flags(),
        "--config.optimizer.learning_rate=1e38",
    )
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "error: student: loss became nan at epoch 1, step" in proc.stderr, (
        proc.stderr[-3000:]
    )
    assert "Nothing was saved for this model" in proc.stderr
    assert not (tmp_path / "run" / "student").exists()
    assert not (tmp_path / "run" / ".backup" / "student").exists()


def test_a_rerun_reuses_the_models_an_interrupted_run_finished(tiny_config, tmp_path):
    run_in(tmp_path, tiny_config, "all", "run")
    teacher = tmp_path / "run" / "teacher" / "model.keras"
    trained_at = teacher.stat().st_mtime_ns
    # As a run killed after its teacher leaves it (train.py writes the same record).
    state = resume.RunState(
        str(tmp_path / "run" / ".backup"), config=tiny_config.to_dict(), mode="all"
    )
    state.mark_finished("teacher")

    results = run_in(tmp_path, tiny_config, "all", "run")
    assert teacher.stat().st_mtime_ns == trained_at  # reused, not retrained
    assert set(results) == {"teacher", "student", "distilling"}
    assert not (tmp_path / "run" / ".backup").exists()


def test_a_backup_from_another_config_is_discarded(tiny_config, tmp_path):
    stale = tmp_path / "run" / ".backup" / "student"
    stale.mkdir(parents=True)
    (stale / "training_metadata.json").write_text('{"epoch": 1, "batch": 0}')
    other = tiny_config.to_dict()
    other["seed"] += 1
    (tmp_path / "run" / ".backup" / "run.json").write_text(
        json.dumps({"config": other, "mode": "student", "finished": []})
    )
    results = run_in(tmp_path, tiny_config, "student", "run")
    assert results["student"]["epochs_run"] == 2  # trained from epoch 1, not 2
    assert not (tmp_path / "run" / ".backup").exists()


def test_early_stopping_keeps_its_best_weights_and_patience_across_a_resume(
    tmp_path,
):
    import keras

    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    x, y = np.ones((8, 1), np.float32), np.zeros((8, 1), np.float32)
    # The loss falls every epoch, so with mode="max" the first epoch stays the best.

    def stopper():
        return backups.ResumableEarlyStopping(
            str(tmp_path),
            monitor="loss",
            mode="max",
            patience=10,
            restore_best_weights=True,
        )

    first = stopper()
    model.fit(x, y, epochs=3, callbacks=[first], verbose=0)
    assert first.best_epoch == 0 and first.wait == 2

    again = stopper()
    again.set_model(model)
    again.on_train_begin()
    assert (again.best_epoch, again.wait) == (0, 2)
    assert again.best == pytest.approx(first.best)
    for got, want in zip(again.best_weights, first.best_weights, strict=True):
        np.testing.assert_array_equal(got, want)


def _dropout_fit(tmp_path, epochs=3, backup_every_seconds=0.0, results=None, **options):
    """fit(name): a fit whose result depends on its dropout draws; its weights
    (and its FitResult in `results[name]`)."""
    import keras

    x = np.random.default_rng(0).normal(size=(64, 6)).astype("float32")
    y = (x[:, 0] > 0).astype("int32")

    def fit(name):
        keras.utils.set_random_seed(0)
        model = keras.Sequential(
            [keras.Input((6,)), keras.layers.Dropout(0.5), keras.layers.Dense(2)]
        )
        model.compile(
            optimizer="adam",
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"],
        )
        result = fit_on_arrays(
            model,
            x,
            y,
            tmp_path / name,
            epochs=epochs,
            backup_every_seconds=backup_every_seconds,
            **options,
        )
        if results is not None:
            results[name] = result
        return model.get_weights()

    return fit


def test_dropout_draws_the_same_masks_after_a_resume(tmp_path, monkeypatch):
    """BackupAndRestore leaves the random-number state out of its backup; without
    SeedBackup a resumed fit redraws epoch 0's dropout masks and the weights
    part from an uninterrupted fit's."""
    whole, resumed = whole_and_resumed(_dropout_fit(tmp_path), monkeypatch)
    for a, b in zip(whole, resumed, strict=True):
        np.testing.assert_array_equal(a, b)


def test_backups_at_an_interval_resume_after_the_last_one_with_the_same_result(
    tmp_path, monkeypatch, caplog
):
    """An hour's interval: only the first epoch is backed up, so a fit killed
    after its third epoch resumes at its second, and ends as a whole one."""
    fit = _dropout_fit(tmp_path, epochs=5, backup_every_seconds=3600.0)
    with caplog.at_level("INFO", logger="absl"):
        whole, resumed = whole_and_resumed(fit, monkeypatch, stop_after_epoch=2)
    assert "Resuming m at epoch 2 of 5" in caplog.text
    # The resumed fit backs up its own first epoch (the second), then none.
    metadata = tmp_path / "resumed" / "backup" / "training_metadata.json"
    assert json.loads(metadata.read_text())["epoch"] == 2
    for a, b in zip(whole, resumed, strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_kept_earlier_epoch_survives_a_crash_after_it(tmp_path, monkeypatch):
    """keep_epoch=2 (config.teacher.keep="2") of a 4-epoch fit killed after its
    third epoch, with backups an hour apart (so it resumes at its second): the
    kept weights and the last equal an uninterrupted fit's, and differ."""
    results = {}
    fit = _dropout_fit(
        tmp_path,
        epochs=4,
        backup_every_seconds=3600.0,
        results=results,
        keep_epoch=2,
        validation_every=3,
    )
    whole, resumed = whole_and_resumed(fit, monkeypatch, stop_after_epoch=2)
    assert results["resumed"].kept_epoch == results["whole"].kept_epoch == 2
    kept = zip(
        results["whole"].epoch_weights, results["resumed"].epoch_weights, strict=True
    )
    for a, b in [*kept, *zip(whole, resumed, strict=True)]:
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(results["whole"].epoch_weights[0], whole[0])
    # The kept epoch is validated, besides every 3rd and the last.
    validated = [v is not None for v in results["whole"].history["val_accuracy"]]
    assert validated == [False, True, True, True]
