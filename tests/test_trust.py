"""A run directory is one run; bad input never trains; interruptions lose nothing."""

import gzip
import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.conftest import tiny_flags
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
    monkeypatch.setattr(ClassifierTrainer, "distill", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_in(tmp_path, tiny_config, "all", "run")
    run = tmp_path / "run"
    assert not (run / "report.md").exists() and not (run / "report.json").exists()
    assert (run / "config.json").read_text() == old_config  # no run finished since
    teacher, distilled = (
        _read(run / m / "metrics.json") for m in ("teacher", "distilling")
    )
    assert teacher["config_fingerprint"] != distilled["config_fingerprint"]
    with pytest.raises(ValueError, match="Not one run: .*teacher.*distilling"):
        report.write(
            experiment.run_dir_of(str(run)),
            {"teacher": teacher, "student": first["student"], "distilling": distilled},
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
def test_ctrl_c_stops_with_one_line_and_the_rerun_resumes(tmp_path):
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
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr[-2000:]
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("interrupted: ") and ".backup" in last, last
    assert "run the same command again to resume" in last
    assert "Traceback" not in stderr
    leftovers = [p.name for p in (run / ".backup").rglob(".*")]
    assert not leftovers, leftovers  # no half-written temporary file

    resumed = run_main(tmp_path, *command)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    metrics = _read(run / "student" / "metrics.json")
    seconds = metrics["history"]["epoch_seconds"]
    assert len(seconds) == 12  # the epochs before the interruption count too
    assert metrics["train_seconds"] == pytest.approx(sum(seconds))


def _idx(path, array, magic):
    header = magic.to_bytes(4, "big") + b"".join(
        d.to_bytes(4, "big") for d in array.shape
    )
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def _mnist_folder(folder, train_labels):
    from tf_distill.data import idx

    folder.mkdir()
    rng = np.random.default_rng(0)
    for split, labels in (("train", train_labels), ("t10k", np.arange(20) % 10)):
        _idx(
            folder / f"{split}-images-idx3-ubyte.gz",
            rng.integers(0, 256, (len(labels), 28, 28)),
            idx.IMAGES_MAGIC,
        )
        _idx(folder / f"{split}-labels-idx1-ubyte.gz", labels, idx.LABELS_MAGIC)
    return folder


def _teacher_files(tmp_path):
    corrupt = tmp_path / "corrupt.keras"
    corrupt.write_bytes(b"PK\x03\x04 not really a zip")
    folder = tmp_path / "saved_model"
    (folder / "variables").mkdir(parents=True)
    (folder / "saved_model.pb").write_bytes(b"")
    return corrupt, folder


@pytest.mark.parametrize(
    "case, message",
    [
        (
            "label_200",
            "training labels [200] are outside 0..9 (the first at example 3)",
        ),
        ("missing_file", "IDX file not found: "),
        ("corrupt_teacher", "corrupt.keras is not a Keras model file Keras can load"),
        ("saved_model_teacher", "saved_model is a folder (a SavedModel?)"),
        ("digits_with_data_dir", "config.data_dir='.' would be ignored"),
        ("huge_batch", "config.batch_size=5000 is larger than the 1293 training"),
    ],
)
def test_bad_data_and_teachers_fail_before_any_work(
    tiny_config, tmp_path, monkeypatch, case, message
):
    """In-process (main.py turns these errors into one line, tests/test_main.py)."""
    monkeypatch.chdir(tmp_path)
    mode = "student"
    if case in ("label_200", "missing_file"):
        labels = np.arange(50) % 10
        if case == "label_200":
            labels[3] = 200
        folder = _mnist_folder(tmp_path / "mnist", labels)
        if case == "missing_file":
            (folder / "t10k-labels-idx1-ubyte.gz").unlink()
        tiny_config.dataset, tiny_config.data_dir = "mnist", str(folder)
    elif case in ("corrupt_teacher", "saved_model_teacher"):
        corrupt, folder = _teacher_files(tmp_path)
        mode = "distilling"
        tiny_config.teacher_path = str(corrupt if case == "corrupt_teacher" else folder)
    elif case == "digits_with_data_dir":
        tiny_config.data_dir = "."
    else:
        tiny_config.batch_size = 5000
    with pytest.raises((ValueError, FileNotFoundError)) as error:
        run_in(tmp_path, tiny_config, mode, "run")
    assert message in str(error.value)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "text, message",
    [
        (None, "config file 'c.py' not found"),
        ("x = 1\n", "config file 'c.py' defines no get_config()"),
        ("def get_config(:\n", "config file 'c.py' is not valid Python line 1"),
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
    assert (
        "teacher epoch 1/2:" in proc.stdout and "distilling epoch 2/2:" in proc.stdout
    )
    summary = proc.stdout[proc.stdout.index("--model=all done.") :]
    assert os.path.join("runs", "default", "report.md") in summary
    assert os.path.join("runs", "default", "distilling", "saved_model") in summary
    assert "tensorboard --logdir " + os.path.join("tensorboard", "default") in summary
    assert "Distillation" in summary or "No gain" in summary
