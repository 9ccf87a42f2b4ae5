"""A run directory is one run; bad input never trains; interruptions lose nothing."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest

from tests.conftest import tiny_flags, write_idx
from tests.test_distribute import ENV
from tests.test_main import MAIN, run_main
from tests.test_train import run_in
from tf_distill import experiment
from tf_distill.outputs import files
from tf_distill.reports import report
from tf_distill.shipping import export
from tf_distill.tasks.classifier.trainer import ClassifierTrainer
from tf_distill.training import resume


def _read(path):
    return json.loads(path.read_text())


def test_config_json_is_written_only_by_a_run_that_succeeds(tiny_config, tmp_path):
    run_in(tmp_path, tiny_config, "student", "run")
    good = (tmp_path / "run" / "config.json").read_text()
    tiny_config.optimizer.learning_rate = 1e30  # overflows in the first epoch
    tiny_config.finished = "replace"
    with pytest.raises(resume.TrainingDiverged):
        run_in(tmp_path, tiny_config, "student", "run")
    assert (tmp_path / "run" / "config.json").read_text() == good


@pytest.mark.slow
def test_an_interrupted_rerun_with_another_config_leaves_no_stale_report(
    tiny_config, tmp_path, monkeypatch
):
    first = run_in(tmp_path, tiny_config, "all", "run")
    old_config = (tmp_path / "run" / "config.json").read_text()

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    tiny_config.teacher.layers = (16,)
    tiny_config.finished = "replace"  # else refused, naming teacher.layers
    monkeypatch.setattr(ClassifierTrainer, "distill", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_in(tmp_path, tiny_config, "all", "run")
    run = tmp_path / "run"
    assert not (run / "report.md").exists() and not (run / "report.json").exists()
    assert not (run / "distilling").exists()  # distilled from the replaced teacher
    assert (run / "config.json").read_text() == old_config  # no run finished since
    teacher = _read(run / "teacher" / "metrics.json")
    old = first["distilling"]
    assert teacher["config_fingerprint"] != old["config_fingerprint"]
    with pytest.raises(ValueError, match="Not one run: .*teacher.*distilling"):
        report.write(
            experiment.run_dir_of(str(run)),
            {"teacher": teacher, "student": first["student"], "distilling": old},
            title="mixed",
        )


def test_a_second_run_on_a_busy_workdir_names_the_first(tmp_path):
    with files.locked(str(tmp_path / "run")):
        proc = run_main(tmp_path, "--model=student", "--workdir=run", *tiny_flags())
    assert proc.returncode == 1
    assert f"is in use by another run (process {os.getpid()})" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "run" / ".backup").exists()
    assert not (tmp_path / "run" / ".lock").exists()  # released: nothing left


@pytest.mark.slow
def test_a_run_killed_while_exporting_exports_on_rerun_without_training(
    tiny_config, tmp_path, monkeypatch
):
    tiny_config.early_stopping.patience = 2  # the default's path: best weights
    tiny_config.student.epochs = 6
    whole = run_in(tmp_path, tiny_config, "student", "whole")["student"]

    real_export = export.export_model
    monkeypatch.setattr(
        export, "export_model", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt)
    )
    with pytest.raises(KeyboardInterrupt):
        run_in(tmp_path, tiny_config, "student", "run")
    run = tmp_path / "run"
    assert (run / "student" / "model.keras").exists()
    assert _read(run / "student" / "metrics.json").get("saved_model_bytes") is None
    saved_at = (run / "student" / "model.keras").stat().st_mtime_ns

    monkeypatch.setattr(export, "export_model", real_export)
    again = run_in(tmp_path, tiny_config, "student", "run")["student"]
    assert (run / "student" / "model.keras").stat().st_mtime_ns == saved_at
    for key in ("test_accuracy", "epochs_run", "best_epoch", "weights"):
        assert again[key] == whole[key], key
    assert again["saved_model_bytes"] > 0
    assert (run / "student" / "saved_model" / "saved_model.pb").exists()
    assert not (run / ".backup").exists()


def test_tensorboard_runs_are_keyed_by_workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert experiment.default_tensorboard("runs/default") == os.path.join(
        "tensorboard", "default"
    )
    a = experiment.default_tensorboard(str(tmp_path / "a" / "run"))
    b = experiment.default_tensorboard(str(tmp_path / "b" / "run"))
    assert a != b and a.startswith(os.path.join("tensorboard", "run-"))


def test_a_retrained_model_is_one_tensorboard_curve(tiny_config, tmp_path):
    for _ in range(2):
        run_in(tmp_path, tiny_config, "student", "run")
    events = list((tmp_path / "tb" / "student" / "train").glob("events.out.*"))
    assert len(events) == 1


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_or_sigterm_stops_with_one_line_and_the_rerun_resumes(tmp_path, signum):
    """Ctrl-C, or SIGTERM as a scheduler (Kubernetes, Slurm, `timeout`) sends it;
    SIGTERM with two seeds' fits under way at once (config.concurrent_fits=2)."""
    run = tmp_path / "run"
    command = [
        "--model=student",
        f"--workdir={run}",
        *tiny_flags(),
        # Long enough that the run is still training after its first backup:
        # 4 epochs (2.6 s since the input pipeline got faster) could finish,
        # and remove the backup, between two looks at it.
        "--config.student.epochs=12",
        "--config.batch_size=2",
        f"--config.num_seeds={1 if signum == signal.SIGINT else 2}",
    ]
    proc = subprocess.Popen(
        [sys.executable, MAIN, *command],
        cwd=tmp_path,
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    metadata = run / ".backup" / "student" / "training_metadata.json"
    deadline = time.monotonic() + 300
    while not metadata.exists() and proc.poll() is None:
        assert time.monotonic() < deadline, "no backup in 300 s"
        time.sleep(0.02)
    assert proc.poll() is None, "the run ended before it could be interrupted"
    proc.send_signal(signum)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signum, stderr[-2000:]
    last = stderr.strip().splitlines()[-1]
    by = "" if signum == signal.SIGINT else " by SIGTERM"
    assert last.startswith(f"interrupted{by}: ") and ".backup" in last, last
    assert "run the same command again to resume" in last
    assert "Traceback" not in stderr
    leftovers = [p.name for p in (run / ".backup").rglob(".*")]
    assert not leftovers, leftovers  # no half-written temporary file
    if signum == signal.SIGTERM:
        return  # the backup is the same as Ctrl-C's, and resumed below

    resumed = run_main(tmp_path, *command)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    metrics = _read(run / "student" / "metrics.json")
    seconds = metrics["history"]["epoch_seconds"]
    assert len(seconds) == 12  # the epochs before the interruption count too
    assert metrics["train_seconds"] == pytest.approx(sum(seconds))


def _mnist_folder(folder, train_labels, test_labels=None, test_size=28):
    from tf_distill.data import idx

    folder.mkdir()
    rng = np.random.default_rng(0)
    if test_labels is None:
        test_labels = np.arange(20) % 10
    for split, labels, size in (
        ("train", train_labels, 28),
        ("t10k", test_labels, test_size),
    ):
        write_idx(
            folder / f"{split}-images-idx3-ubyte.gz",
            rng.integers(0, 256, (len(labels), size, size)),
            idx.IMAGES_MAGIC,
        )
        write_idx(folder / f"{split}-labels-idx1-ubyte.gz", labels, idx.LABELS_MAGIC)
    return folder


def _teacher_files(tmp_path):
    corrupt = tmp_path / "corrupt.keras"
    corrupt.write_bytes(b"PK\x03\x04 not really a zip")
    folder = tmp_path / "saved_model"
    (folder / "variables").mkdir(parents=True)
    (folder / "saved_model.pb").write_bytes(b"")
    softmax = tmp_path / "softmax.keras"
    keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Flatten(),
            keras.layers.Dense(10, activation="softmax"),
        ]
    ).save(softmax)
    return {"corrupt": corrupt, "saved_model": folder, "softmax": softmax}


@pytest.mark.parametrize(
    "case, message",
    [
        (
            "label_200",
            "training labels [200] are outside 0..9 (the first at example 3)",
        ),
        ("missing_file", "IDX file not found: "),
        ("corrupt_teacher", "corrupt.keras is not a Keras model file Keras can load"),
        ("saved_model_teacher", "saved_model: Importing a SavedModel"),
        ("softmax_teacher", "softmax.keras gives probabilities, not logits"),
        ("teacher_path_to_teacher_mode", "--model=teacher trains its own teacher"),
        ("workdir_in_a_file", "a_file is a file, not a folder"),
        ("seed", "config.seed=-1: expected an integer in [0, 2**32)"),
        ("translate", "config.augment.translate=8: a shift of the image's own size"),
        ("test_shape", "the test images are 27x27x1 but the training images 28x28x1"),
        ("empty_test", "the test split holds no images"),
        ("digits_with_data_dir", "config.data_dir='.' would be ignored"),
        ("huge_batch", "config.batch_size=5000 is larger than the 1293 training"),
    ],
)
def test_bad_data_and_teachers_fail_before_any_work(
    tiny_config, tmp_path, monkeypatch, case, message
):
    """In-process (main.py turns these errors into one line, tests/test_main.py)."""
    monkeypatch.chdir(tmp_path)
    mode, workdir = "student", "run"
    if case in ("label_200", "missing_file", "test_shape", "empty_test"):
        labels = np.arange(50) % 10
        if case == "label_200":
            labels[3] = 200
        folder = _mnist_folder(
            tmp_path / "mnist",
            labels,
            test_labels=np.arange(0 if case == "empty_test" else 20) % 10,
            test_size=27 if case == "test_shape" else 28,
        )
        if case == "missing_file":
            (folder / "t10k-labels-idx1-ubyte.gz").unlink()
        tiny_config.dataset, tiny_config.data_dir = "mnist", str(folder)
    elif case == "workdir_in_a_file":
        (tmp_path / "a_file").write_text("")
        workdir = "a_file/run"
    elif case == "teacher_path_to_teacher_mode":
        mode, tiny_config.teacher_path = "teacher", "/a/teacher.keras"
    elif case.endswith("_teacher"):
        mode = "distilling"
        teacher = _teacher_files(tmp_path)[case.removesuffix("_teacher")]
        tiny_config.teacher_path = str(teacher)
    elif case == "seed":
        tiny_config.seed = -1
    elif case == "translate":
        tiny_config.augment.translate = 8  # digits are 8x8
    elif case == "digits_with_data_dir":
        tiny_config.data_dir = "."
    else:
        tiny_config.batch_size = 5000
    with pytest.raises((ValueError, FileNotFoundError)) as error:
        run_in(tmp_path, tiny_config, mode, workdir)
    assert message in str(error.value)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "text, message",
    [
        (None, "config file 'c.py' not found"),
        ("x = 1\n", "config file 'c.py' defines no get_config()"),
        ("def get_config(:\n", "config file 'c.py' is not valid Python line 1"),
        (
            "def get_config():\n    raise RuntimeError('boom')\n",
            "the config raised RuntimeError: boom (c.py line 2)",
        ),
        (
            "import ml_collections\n\ndef get_config():\n    return "
            "ml_collections.ConfigDict({'task': 'classifier', 'name': 'c'})\n",
            "key(s) a classifier config has: config.augment, "
            "config.backup_every_seconds, ",
        ),
    ],
)
def test_a_bad_config_file_is_one_line(tmp_path, text, message):
    if text is not None:
        (tmp_path / "c.py").write_text(text)
    proc = run_main(tmp_path, "--model=teacher", "--workdir=run", config="c.py")
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == f"error: {message}" or (
        message in proc.stderr.strip().splitlines()[-1]
    ), proc.stderr[-1000:]
    assert "Traceback" not in proc.stderr


def test_every_shipped_config_has_every_key_of_its_task():
    """What main.py checks of a user's config holds for ours."""
    import importlib
    import pathlib

    import configs

    for path in sorted(pathlib.Path(configs.__file__).parent.glob("*.py")):
        if path.stem != "__init__":
            config = importlib.import_module(f"configs.{path.stem}").get_config()
            assert configs.missing_keys(config) == [], path.name
    config = importlib.import_module("configs.default").get_config()
    del config.distill.dkd
    assert configs.missing_keys(config) == ["config.distill.dkd"]


def test_a_one_class_image_folder_is_refused(tmp_path):
    from tests.test_image_folder import write_images

    write_images(tmp_path / "images" / "train", 4, seed=0, classes=("cat",))
    write_images(tmp_path / "images" / "val", 2, seed=1, classes=("cat",))
    proc = run_main(
        tmp_path,
        "--model=student",
        "--workdir=run",
        "--config.dataset=image_folder",
        f"--config.data_dir={tmp_path / 'images'}",
    )
    assert proc.returncode == 1
    assert "1 class; a classifier needs >= 2" in proc.stderr, proc.stderr[-1000:]
    assert not (tmp_path / "run").exists()


def test_a_corrupt_image_is_named(tmp_path):
    from tests.test_image_folder import image_config, write_images
    from tf_distill.tasks.classifier import settings as config_lib

    write_images(tmp_path / "images" / "train", 4, seed=0)
    write_images(tmp_path / "images" / "val", 2, seed=1)
    bad = next((tmp_path / "images" / "train").rglob("*.png"))
    bad.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    with pytest.raises(
        ValueError, match=re.escape(f"1 image file(s) cannot be read: {bad} (")
    ):
        config_lib.load_data(image_config(tmp_path / "images"))


def test_the_exported_model_clips_pixels_above_the_data_range(tmp_path):
    import keras

    from tf_distill.outputs.rundir import RunDir
    from tf_distill.shipping import clients

    model = keras.Sequential(
        [keras.Input((2, 2, 1)), keras.layers.Flatten(), keras.layers.Dense(3)]
    )
    export.export_model(
        model,
        RunDir(str(tmp_path), str(tmp_path / "tb")).model("student"),
        class_names=["a", "b", "c"],
        representative=None,
        pixel_max=16.0,
    )
    served = clients.open_artefact(str(tmp_path / "student" / "saved_model"))
    at_max = served.logits(np.full((1, 2, 2, 1), 16, np.uint8))
    above = served.logits(np.full((1, 2, 2, 1), 255, np.uint8))
    np.testing.assert_allclose(above, at_max)


@pytest.mark.slow
def test_the_terminal_shows_our_lines_and_where_the_results_are(tmp_path):
    proc = run_main(tmp_path, "--model=all", "--workdir=runs/default", *tiny_flags())
    assert proc.returncode == 0, proc.stderr[-2000:]
    for noise in ("cuInit", "oneDNN", "Assets written", "Sharding callback", "cuda"):
        assert noise not in proc.stderr, noise
    # A line per model, not per epoch (those go to the run's epochs.log).
    assert "teacher: 2 epochs in " in proc.stdout
    assert "distilling: 2 epochs in " in proc.stdout and "epoch 1/2" not in proc.stdout
    epochs = (tmp_path / "runs" / "default" / "epochs.log").read_text()
    assert "teacher epoch 1/2:" in epochs and "distilling epoch 2/2:" in epochs
    lines = proc.stdout.splitlines() + proc.stderr.splitlines()
    assert len(lines) <= 25, "\n".join(lines)
    # The info lines go to the run's run.log, not to the terminal.
    assert "Config: " not in proc.stderr and "Training teacher" not in proc.stderr
    run_log = (tmp_path / "runs" / "default" / "run.log").read_text()
    assert "Config: " in run_log and "distilling: test accuracy" in run_log
    summary = proc.stdout[proc.stdout.index("--model=all done.") :]
    assert os.path.join("runs", "default", "report.md") in summary
    assert os.path.join("runs", "default", "distilling", "saved_model") in summary
    assert "tensorboard --logdir " + os.path.join("tensorboard", "default") in summary
    assert "Distillation" in summary or "No gain" in summary


@pytest.mark.parametrize("mode", ["distilling", "sweep"])
def test_a_teacher_trained_on_other_data_teaches_no_student(
    tiny_config, idx_folder, tmp_path, mode
):
    """MNIST and Fashion-MNIST have the same shapes: only the run's record of its
    data tells a teacher of one from a teacher of the other."""
    other = tmp_path / "other"
    shutil.copytree(idx_folder, other)  # the same files elsewhere: another source
    tiny_config.dataset, tiny_config.data_dir = "idx", str(idx_folder)
    tiny_config.labeled_fraction, tiny_config.batch_size = 1.0, 16
    run_in(tmp_path, tiny_config, "teacher", "run")
    tiny_config.data_dir = str(other)
    with pytest.raises(ValueError, match=r"teacher/model.keras was trained on idx:"):
        run_in(tmp_path, tiny_config, mode, "run")
    assert not (tmp_path / "run" / "distilling").exists()


def test_a_corrupt_metrics_file_is_named(tiny_config, idx_folder, tmp_path):
    tiny_config.dataset, tiny_config.data_dir = "idx", str(idx_folder)
    tiny_config.labeled_fraction, tiny_config.batch_size = 1.0, 16
    run_in(tmp_path, tiny_config, "teacher", "run")
    metrics = tmp_path / "run" / "teacher" / "metrics.json"
    metrics.write_text(metrics.read_text()[:40])
    with pytest.raises(ValueError, match=r"metrics.json is not valid JSON"):
        run_in(tmp_path, tiny_config, "distilling", "run")


def test_a_validation_split_too_small_to_steer_is_said(
    tiny_config, idx_folder, tmp_path, caplog
):
    tiny_config.dataset, tiny_config.data_dir = "idx", str(idx_folder)
    tiny_config.labeled_fraction, tiny_config.batch_size = 1.0, 16
    with caplog.at_level("WARNING", logger="absl"):
        run_in(tmp_path, tiny_config, "teacher", "run")
    assert "The validation split holds 5 images for 10 classes" in caplog.text
