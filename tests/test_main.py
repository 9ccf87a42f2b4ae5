"""main.py as a user runs it: a subprocess, in a scratch folder, on a tiny config."""

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO, tiny_flags

MAIN = os.path.join(REPO, "main.py")
DEFAULT = os.path.join(REPO, "configs", "default.py")


def run_main(cwd, *args, config=DEFAULT):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    return subprocess.run(
        [sys.executable, MAIN, f"--config={config}", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.slow
def test_all_writes_the_run_directory_and_report(tmp_path):
    proc = run_main(tmp_path, "--model=all", "--workdir=run", *tiny_flags())
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = tmp_path / "run"
    config = json.loads((run / "config.json").read_text())
    assert config["name"] == "default" and config["teacher"]["epochs"] == 2
    for model in ("teacher", "student", "distilling"):
        metrics = json.loads((run / model / "metrics.json").read_text())
        assert metrics["model"] == model
        for key in (
            "test_accuracy",
            "test_loss",
            "epochs_run",
            "train_seconds",
            "examples_per_second",
            "history",
        ):
            assert key in metrics, (model, key)
        assert metrics["epochs_run"] == 2 and 0.0 <= metrics["test_accuracy"] <= 1.0
        assert (run / model / "model.keras").stat().st_size > 0
        assert (run / model / "saved_model" / "saved_model.pb").exists()
        # Keyed by the workdir, "run" here (experiment.default_tensorboard).
        [tensorboard] = (tmp_path / "tensorboard").glob("run-*")
        assert (tensorboard / model / "train").is_dir()
        assert (tensorboard / model / "validation").is_dir()
    history = json.loads((run / "distilling" / "metrics.json").read_text())["history"]
    assert {
        "loss",
        "hard_loss",
        "soft_loss",
        "accuracy",
        "val_accuracy",
    } <= set(history)
    report = json.loads((run / "report.json").read_text())
    assert set(report["models"]) == {"teacher", "student", "distilling"}
    assert report["models"]["teacher"]["params"] > report["models"]["student"]["params"]
    assert "distilled student" in (run / "report.md").read_text()
    assert (run / "accuracy.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # Every output is whole: no temporary file is left beside it.
    assert not [p for p in run.rglob(".*") if p.name != "."]


@pytest.mark.slow
def test_teacher_then_distilling_then_an_external_teacher(tmp_path):
    proc = run_main(tmp_path, "--model=teacher", "--workdir=run", *tiny_flags())
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not (tmp_path / "run" / "student").exists()
    proc = run_main(tmp_path, "--model=distilling", "--workdir=run", *tiny_flags())
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "run" / "distilling" / "metrics.json").exists()
    # A teacher trained elsewhere, by path, into a fresh run directory.
    teacher = tmp_path / "run" / "teacher" / "model.keras"
    proc = run_main(
        tmp_path,
        "--model=distilling",
        "--workdir=other",
        f"--config.teacher_path={teacher}",
        *tiny_flags(),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "other" / "distilling" / "saved_model").is_dir()
    assert not (tmp_path / "other" / "teacher").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--model=distilling"], "Run --model=teacher first"),
        (["--model=distil"], "--model"),
        (["--model=all", "--config.distill.temprature=4"], "temprature"),
        (
            ["--model=all", "--config.distill.temperature=0"],
            "config.distill.temperature=0.0: must be > 0",
        ),
    ],
)
def test_bad_input_exits_non_zero_with_its_message_and_writes_nothing(
    tmp_path, args, message
):
    proc = run_main(tmp_path, "--workdir=run", *args)
    assert proc.returncode != 0
    assert message in proc.stderr, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "run").exists()
    assert not (tmp_path / "tensorboard").exists()


@pytest.mark.parametrize(
    "key, value, mode, message",
    [
        (
            "teacher_path",
            "/no/such.keras",
            "distilling",
            "config.teacher_path '/no/such.keras' does not exist",
        ),
        (
            "distill.alpha",
            1.5,
            "all",
            r"config.distill.alpha=1.5: the weight of the hard loss must be in [0, 1]",
        ),
        (
            "teacher.arch",
            "resnet",
            "all",
            "config.teacher.arch='resnet': valid: mlp, cnn",
        ),
        ("dataset", "mnsit", "all", "Unknown config.dataset 'mnsit'"),
        ("data_dir", "/no/such/dir", "all", "/no/such/dir"),
        (
            "teacher_path",
            "/a/teacher.keras",
            "all",
            "is for --model=distilling and --model=sweep; --model=all trains its own",
        ),
    ],
)
def test_bad_values_are_refused_before_writing(
    tiny_config, tmp_path, key, value, mode, message
):
    """In-process: main.py prints these errors as one line (the test above)."""
    from tests.conftest import set_key
    from tf_distill import experiment

    set_key(tiny_config, key, value)
    with pytest.raises((ValueError, FileNotFoundError)) as error:
        experiment.run(
            tiny_config,
            workdir=str(tmp_path / "run"),
            mode=mode,
            tensorboard_dir=str(tmp_path / "tensorboard"),
        )
    assert message in str(error.value)
    assert not (tmp_path / "run").exists()
    assert not (tmp_path / "tensorboard").exists()


def test_a_teacher_that_does_not_fit_the_data_is_refused_before_writing(tmp_path):
    import keras

    teacher = keras.Sequential(
        [keras.Input((4, 4, 1)), keras.layers.Flatten(), keras.layers.Dense(3)]
    )
    path = tmp_path / "small.keras"
    teacher.save(path)
    proc = run_main(
        tmp_path, "--model=distilling", "--workdir=run", f"--config.teacher_path={path}"
    )
    assert proc.returncode != 0
    assert "maps (None, 4, 4, 1) -> (None, 3), but the data needs (None, 8, 8, 1)" in (
        proc.stderr
    ), proc.stderr[-2000:]
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_the_recommended_digits_recipe_runs_end_to_end(tmp_path):
    """configs/digits_recommended.py, shortened: a CNN teacher run in every step
    on mixed-up images, no hard loss, the distilled student kept at its last
    epoch while the student alone keeps its best-validation epoch."""
    recommended = os.path.join(REPO, "configs", "digits_recommended.py")
    proc = run_main(
        tmp_path,
        "--model=all",
        "--workdir=run",
        *tiny_flags(),
        "--config.early_stopping.patience=5",
        "--config.distill.epochs=3",
        "--config.num_seeds=1",
        config=recommended,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    run_log = (tmp_path / "run" / "run.log").read_text()  # the info lines
    assert "The teacher runs in every training step" in run_log
    assert "The teacher runs" not in proc.stderr  # the terminal: warnings only
    distilled = json.loads(
        (tmp_path / "run" / "distilling" / "metrics.json").read_text()
    )
    alone = json.loads((tmp_path / "run" / "student" / "metrics.json").read_text())
    assert distilled["weights"] == "last_epoch" and distilled["epochs_run"] == 3
    assert alone["weights"] == "best_validation"
    assert distilled["alpha"] == 0.0 and distilled["teacher"] == "per_step"
    assert distilled["history"]["hard_loss"][-1] > 0  # logged, not trained on
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert "gap_recovered" in report
