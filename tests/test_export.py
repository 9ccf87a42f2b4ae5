"""What users ship: the SavedModel and LiteRT files, checked as a client runs them."""

import json
import os
import shutil
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import SHARED_DATA, needs_shared_data
from tests.test_main import run_main
from tf_distill import experiment
from tf_distill.data import sources
from tf_distill.models import architectures, loading, measure
from tf_distill.outputs import files
from tf_distill.outputs.rundir import RunDir
from tf_distill.shipping import clients, export
from tf_distill.tasks.classifier import settings as config_lib


def _config():
    """Small enough to train in seconds, trained enough that int8 rounding is the
    only thing that separates the LiteRT files from the Keras model."""
    from configs import default

    config = default.base_config()
    config.name = "export"
    config.teacher.layers = (64,)
    config.teacher.epochs = 15
    config.student.epochs = 30
    config.early_stopping.patience = 0
    return config


def untrained_student(input_shape, *, input_scale):
    """The default config's student for 10 classes, fresh."""
    return architectures.build(
        config_lib.model_spec(_config().student),
        input_shape=input_shape,
        num_classes=10,
        input_scale=input_scale,
        name="student",
    )


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A --model=all run directory with every export, shared by this module."""
    root = tmp_path_factory.mktemp("export")
    config = _config()
    experiment.run(
        config,
        workdir=str(root / "run"),
        mode="all",
        tensorboard_dir=str(root / "tb"),
    )
    return root / "run"


@pytest.fixture(scope="module")
def test_split():
    splits = config_lib.load_data(_config())
    return splits.x_test, splits.y_test


def test_every_model_gets_its_artefacts(run_dir):
    for name, role in (
        ("teacher", "teacher"),
        ("student", "student"),
        ("distilling", "student"),
    ):
        folder = run_dir / name
        assert (folder / "saved_model" / "saved_model.pb").is_file()
        assert (folder / f"{role}_float32.tflite").stat().st_size > 0
        assert (folder / f"{role}_int8.tflite").stat().st_size > 0
        names = (folder / "class_names.txt").read_text().splitlines()
        assert names == [str(i) for i in range(10)]
        metrics = json.loads((folder / "metrics.json").read_text())
        assert set(metrics["artefact_bytes"]) == {
            "saved_model",
            "tflite_float32",
            "tflite_int8",
        }
        # No temporary file or folder is left behind by the atomic writes.
        assert not [p for p in os.listdir(folder) if p.startswith(".")]


@pytest.mark.slow
def test_saved_model_in_a_fresh_process_matches_keras_and_metrics(
    run_dir, test_split, tmp_path
):
    x_test, y_test = test_split
    np.save(tmp_path / "x.npy", x_test)
    script = textwrap.dedent(
        """
        import sys
        import numpy as np
        import tensorflow as tf

        serve = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]
        out = serve(pixels=tf.constant(np.load(sys.argv[2])))
        np.savez(sys.argv[3], **{k: v.numpy() for k, v in out.items()})
        """
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            script,
            str(run_dir / "distilling" / "saved_model"),
            str(tmp_path / "x.npy"),
            str(tmp_path / "out.npz"),
        ],
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    served = np.load(tmp_path / "out.npz", allow_pickle=True)

    student = keras.models.load_model(run_dir / "distilling" / "model.keras")
    keras_logits = student.predict(x_test.astype(np.float32), verbose=0)
    assert np.max(np.abs(served["logits"] - keras_logits)) < 1e-5
    np.testing.assert_allclose(
        served["probabilities"], tf.nn.softmax(keras_logits).numpy(), atol=1e-6
    )
    np.testing.assert_array_equal(served["class_id"], np.argmax(keras_logits, -1))
    assert [n.decode() for n in served["class_name"]] == [
        str(i) for i in served["class_id"]
    ]
    metrics = json.loads((run_dir / "distilling" / "metrics.json").read_text())
    accuracy = np.mean(served["class_id"] == y_test)
    assert accuracy == pytest.approx(metrics["test_accuracy"], abs=1e-12)


def test_saved_model_cli_shows_the_documented_signatures(run_dir):
    proc = subprocess.run(
        [
            "saved_model_cli",
            "show",
            "--dir",
            str(run_dir / "student" / "saved_model"),
            "--all",
        ],
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    shown = proc.stdout
    serving_default = shown[shown.index("signature_def['serving_default']") :]
    assert "inputs['pixels']" in serving_default
    assert "dtype: DT_UINT8" in serving_default
    assert "shape: (-1, 8, 8, 1)" in serving_default
    for name, dtype in (
        ("logits", "DT_FLOAT"),
        ("probabilities", "DT_FLOAT"),
        ("class_id", "DT_INT32"),
        ("class_name", "DT_STRING"),
    ):
        block = serving_default[serving_default.index(f"outputs['{name}']") :]
        assert f"dtype: {dtype}" in block.split("outputs[")[1], name
    assert "signature_def['class_names']" in shown


def stored_weights(saved_model):
    """The weights a SavedModel stores, read from its checkpoint."""
    reader = tf.train.load_checkpoint(str(saved_model / "variables" / "variables"))
    return [
        reader.get_tensor(name)
        for name in reader.get_variable_to_shape_map()
        if name != "_CHECKPOINTABLE_OBJECT_GRAPH"
    ]


def test_the_students_export_holds_the_student_alone_once(run_dir):
    teacher = keras.models.load_model(run_dir / "teacher" / "model.keras")
    student = keras.models.load_model(run_dir / "distilling" / "model.keras")
    stored = stored_weights(run_dir / "distilling" / "saved_model")

    # Each student weight exactly once (Keras' own export stores each twice).
    assert sum(w.size for w in stored) == student.count_params()
    for weight in student.weights:
        assert any(np.array_equal(w, weight.numpy()) for w in stored), weight.path
    for weight in teacher.weights:
        assert not any(
            w.shape == weight.shape and np.array_equal(w, weight.numpy())
            for w in stored
        ), f"teacher variable {weight.path} is in the student's export"

    teacher_stored = stored_weights(run_dir / "teacher" / "saved_model")
    assert sum(w.size for w in teacher_stored) == teacher.count_params()
    assert len(stored) <= len(teacher_stored)
    assert sum(w.size for w in stored) < sum(w.size for w in teacher_stored)
    for artefact in ("saved_model", "student_float32.tflite", "student_int8.tflite"):
        student_bytes = files.size_bytes(str(run_dir / "distilling" / artefact))
        teacher_path = run_dir / "teacher" / artefact.replace("student", "teacher")
        assert student_bytes < files.size_bytes(str(teacher_path)), artefact


def test_litert_files_match_keras_and_int8_is_within_one_point(run_dir, test_split):
    x_test, y_test = test_split
    student = keras.models.load_model(run_dir / "distilling" / "model.keras")
    keras_logits = student.predict(x_test.astype(np.float32), verbose=0)
    float32 = clients.open_artefact(
        str(run_dir / "distilling" / "student_float32.tflite")
    )
    int8 = clients.open_artefact(str(run_dir / "distilling" / "student_int8.tflite"))

    float_logits = float32.logits(x_test)
    assert np.max(np.abs(float_logits - keras_logits)) < 1e-4
    # Really quantised: int8 tensors inside, and a smaller file.
    from ai_edge_litert.interpreter import Interpreter

    int8_path = run_dir / "distilling" / "student_int8.tflite"
    tensor_types = {
        d["dtype"] for d in Interpreter(str(int8_path)).get_tensor_details()
    }
    assert np.int8 in tensor_types
    assert (
        int8_path.stat().st_size
        < (run_dir / "distilling" / "student_float32.tflite").stat().st_size
    )

    float_acc = measure.classification_metrics(float_logits, y_test).accuracy
    int8_acc = measure.classification_metrics(int8.logits(x_test), y_test).accuracy
    assert float_acc > 0.85  # a trained student, or the comparison means nothing
    assert abs(int8_acc - float_acc) <= 0.01, (float_acc, int8_acc)


def test_bad_requests_fail_with_a_clear_error(run_dir):
    path = str(run_dir / "distilling" / "saved_model")
    serve = tf.saved_model.load(path).signatures["serving_default"]
    with pytest.raises(tf.errors.InvalidArgumentError, match="expected to be a uint8"):
        serve(pixels=tf.zeros([2, 8, 8, 1], tf.float32))
    with pytest.raises(
        tf.errors.InvalidArgumentError,
        match=r"Shape of tensor pixels \[2,28,28,1\] is not compatible with expected "
        r"shape \[\?,8,8,1\]",
    ):
        serve(pixels=tf.zeros([2, 28, 28, 1], tf.uint8))

    for artefact in (path, str(run_dir / "distilling" / "student_int8.tflite")):
        classifier = clients.open_artefact(artefact)
        with pytest.raises(
            ValueError,
            match=r"takes uint8 pixels of shape \(batch, 8, 8, 1\); got float32 of "
            r"shape \(2, 8, 8, 1\)",
        ):
            classifier.logits(np.zeros([2, 8, 8, 1], np.float32))
        with pytest.raises(ValueError, match=r"got uint8 of shape \(2, 28, 28, 1\)"):
            classifier.logits(np.zeros([2, 28, 28, 1], np.uint8))
    with pytest.raises(FileNotFoundError, match="No exported model at"):
        clients.open_artefact(str(run_dir / "nowhere"))


def test_class_names_travel_with_the_export(tmp_path):
    names = sources.CLASS_NAMES["fashion_mnist"]
    model = untrained_student((28, 28, 1), input_scale=255.0)
    export.export_saved_model(model, str(tmp_path / "sm"), class_names=names)
    loaded = tf.saved_model.load(str(tmp_path / "sm"))
    got = loaded.signatures["class_names"]()["class_names"].numpy()
    assert [n.decode() for n in got] == list(names)
    assert clients.open_artefact(str(tmp_path / "sm")).class_names == list(names)
    out = loaded.signatures["serving_default"](
        pixels=tf.zeros([3, 28, 28, 1], tf.uint8)
    )
    assert [n.decode() for n in out["class_name"].numpy()] == [
        names[i] for i in out["class_id"].numpy()
    ]


@pytest.mark.slow
def test_export_and_evaluate_modes_work_on_a_trained_run(run_dir, tmp_path):
    # A copy, so that deleting its exports does not disturb the other tests.
    workdir = tmp_path / "run"
    shutil.copytree(run_dir, workdir)
    for name in ("student", "distilling"):
        shutil.rmtree(workdir / name / "saved_model")
        (workdir / name / "student_int8.tflite").unlink()
    proc = run_main(tmp_path, "--model=export", f"--workdir={workdir}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    for name in ("student", "distilling"):
        assert (workdir / name / "saved_model" / "saved_model.pb").is_file()
        assert (workdir / name / "student_int8.tflite").is_file()

    proc = run_main(tmp_path, "--model=evaluate", f"--workdir={workdir}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "| distilling | tflite_int8 |" in proc.stdout
    for name in ("teacher", "student", "distilling"):
        evaluation = json.loads((workdir / name / "evaluation.json").read_text())
        assert set(evaluation) == {
            "saved_model",
            "tflite_float32",
            "tflite_int8",
            "keras",
        }
        assert evaluation["saved_model"]["test_accuracy"] == pytest.approx(
            evaluation["keras"]["test_accuracy"], abs=1e-12
        )

    # Without LiteRT, a re-export leaves no stale file that no longer matches.
    proc = run_main(
        tmp_path,
        "--model=export",
        f"--workdir={workdir}",
        "--config.export.tflite=False",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    left = sorted(os.listdir(workdir / "distilling"))
    assert left == ["class_names.txt", "metrics.json", "model.keras", "saved_model"]


def test_evaluate_loads_the_model_it_evaluates(run_dir, tmp_path):
    """A model.keras damaged after training fails evaluate, naming the file,
    rather than pass on the figures metrics.json recorded."""
    workdir = tmp_path / "run"
    shutil.copytree(run_dir, workdir)
    damaged = workdir / "distilling" / "model.keras"
    damaged.write_bytes(damaged.read_bytes()[:1000])
    with pytest.raises(ValueError, match="distilling/model.keras is not a Keras model"):
        experiment.run(_config(), workdir=str(workdir), mode="evaluate")
    assert not list(workdir.glob("*/evaluation.json"))  # checked before any is written


@pytest.mark.parametrize("mode", ["export", "evaluate"])
def test_export_and_evaluate_need_a_trained_model(tmp_path, mode):
    proc = run_main(tmp_path, f"--model={mode}", "--workdir=empty")
    assert proc.returncode == 1
    assert "error: No trained model in empty" in proc.stderr
    assert "--model=all" in proc.stderr
    assert not (tmp_path / "empty").exists()


@pytest.mark.real_data
@needs_shared_data("mnist")
def test_export_refuses_a_model_that_does_not_fit_the_data(run_dir, tmp_path):
    workdir = tmp_path / "run"
    shutil.copytree(run_dir / "student", workdir / "student")
    before = sorted(os.listdir(workdir / "student"))
    config = _config()
    config.data_dir = os.path.join(SHARED_DATA, "mnist")  # 28x28, not 8x8
    with pytest.raises(ValueError, match=r"the data needs \(None, 28, 28, 1\)"):
        experiment.run(config, workdir=str(workdir), mode="export")
    assert sorted(os.listdir(workdir / "student")) == before


def test_a_mixed_precision_model_is_exported_computing_in_float32(tmp_path):
    """LiteRT has no bfloat16 kernels: exports compute in float32, same weights."""
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = untrained_student((8, 8, 1), input_scale=16.0)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert not loading.computes_in_float32(model)
    pixels = np.random.default_rng(0).integers(0, 17, (32, 8, 8, 1), dtype=np.uint8)
    export.export_model(
        model,
        RunDir(str(tmp_path), str(tmp_path / "tb")).model("student"),
        class_names=[str(i) for i in range(10)],
        representative=pixels,
    )
    want = loading.copy_with_policy(model, "float32")(pixels.astype(np.float32))
    for artefact in ("saved_model", "student_float32.tflite"):
        got = clients.open_artefact(str(tmp_path / "student" / artefact))
        np.testing.assert_allclose(got.logits(pixels), want, atol=1e-5)
    assert (tmp_path / "student" / "student_int8.tflite").stat().st_size > 0
    assert not loading.computes_in_float32(model)  # the trained model is untouched
