"""The comparison a user reads: report files, seeds, TensorBoard scalars, the sweep.

One tiny `--model=all` with two seeds, then a 2 x 2 sweep in the same run folder,
serve every test here (module-scoped: ~30 s in all).
"""

import json
import os
import re

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests import conftest
from tf_distill import experiment
from tf_distill.tasks.classifier import settings as config_lib

FIELDS = (
    "test_accuracy",
    "test_accuracy_best_validation",
    "test_accuracy_last_epoch",
    "test_loss",
    "params",
    "saved_model_bytes",
    "inference_examples_per_second",
    "train_seconds",
    "examples_per_second",
    "epochs_run",
)
EVERY_STEPS = 5  # digits: 21 steps per epoch


def tiny(name):
    config = conftest.tiny(name)
    config.teacher.epochs = 3
    config.student.epochs = 3
    config.num_seeds = 2
    config.tensorboard.every_steps = EVERY_STEPS
    config.sweep.temperatures = (1.0, 4.0)
    config.sweep.alphas = (0.1, 0.5)
    return config


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    config = tiny("tiny")
    config.distill.validation_teacher = True  # val_agreement, checked below
    workdir, tb = str(root / "run"), str(root / "tb")
    results = experiment.run(config, workdir=workdir, mode="all", tensorboard_dir=tb)
    sweep = experiment.run(config, workdir=workdir, mode="sweep", tensorboard_dir=tb)
    return {
        "config": config,
        "workdir": root / "run",
        "tb": root / "tb",
        "results": results,
        "sweep": sweep,
    }


def test_report_has_every_field_for_the_three_models(run):
    report = json.loads((run["workdir"] / "report.json").read_text())
    assert set(report["models"]) == {"teacher", "student", "distilling"}
    for name, summary in report["models"].items():
        for field in FIELDS:
            assert isinstance(summary[field], (int, float)), (name, field)
        assert summary["saved_model_bytes"] > 1000
        assert summary["inference_examples_per_second"] > 0
        assert 0 <= summary["test_accuracy_last_epoch"] <= 1
    models = report["models"]
    assert models["teacher"]["params"] > models["student"]["params"]
    for name in ("student", "distilling"):
        assert 0 < models[name]["test_agreement_with_teacher"] <= 1
    text = (run["workdir"] / "report.md").read_text()
    for label in (
        "teacher",
        "student alone",
        "distilled student (kd, T=4, alpha=0.1, teacher's logits cached)",
    ):
        assert f"| {label} |" in text
    assert report["method"] == {
        "method": "kd",
        "temperature": 4.0,
        "alpha": 0.1,
        "teacher": "cached",  # how its logits reached the student
    }
    assert report["verdict"] in text


def test_the_share_of_the_gap_recovered_is_per_seed(run):
    report = json.loads((run["workdir"] / "report.json").read_text())
    results = run["results"]
    teacher = results["teacher"]["test_accuracy"]
    pairs = [("student", "distilling"), ("student_seed43", "distilling_seed43")]
    gaps = [teacher - results[a]["test_accuracy"] for a, _ in pairs]
    text = (run["workdir"] / "report.md").read_text()
    if min(gaps) <= 0:
        assert report["gap_recovered"] is None
        assert "no gap for distillation to recover" in text
        return
    want = [
        (results[d]["test_accuracy"] - results[a]["test_accuracy"]) / gap
        for (a, d), gap in zip(pairs, gaps, strict=True)
    ]
    assert report["gap_recovered_per_seed"] == pytest.approx(want)
    assert report["gap_recovered"] == pytest.approx(np.mean(want))
    low, high = report["gap_recovered_ci95"]
    assert low <= report["gap_recovered"] <= high
    assert "Share of the teacher's lead recovered" in text


def test_two_seeds_give_a_mean_and_a_std_per_student(run):
    report = json.loads((run["workdir"] / "report.json").read_text())
    results = run["results"]
    assert set(results) == {
        "teacher",
        "student",
        "student_seed43",
        "distilling",
        "distilling_seed43",
    }
    assert report["seeds"] == [42, 43]
    for name in ("student", "distilling"):
        summary = report["models"][name]
        values = [results[name]["test_accuracy"]]
        values.append(results[f"{name}_seed43"]["test_accuracy"])
        assert summary["n"] == 2
        assert summary["test_accuracy"] == pytest.approx(np.mean(values))
        assert summary["test_accuracy_std"] == pytest.approx(np.std(values, ddof=1))
        assert len(summary["runs"]) == 2
    teacher = report["models"]["teacher"]
    assert teacher["n"] == 1 and teacher["test_accuracy_std"] is None
    gains = report["distilled_minus_student_accuracy_per_seed"]
    for seed, gain in zip(("", "_seed43"), gains, strict=True):
        expected = (
            results[f"distilling{seed}"]["test_accuracy"]
            - results[f"student{seed}"]["test_accuracy"]
        )
        assert gain == pytest.approx(expected)
    low, high = report["distilled_minus_student_accuracy_ci95"]
    assert low <= report["distilled_minus_student_accuracy"] <= high
    # Seeds change what the students start from: two seeds, two trainings.
    assert (
        results["student"]["history"]["loss"]
        != results["student_seed43"]["history"]["loss"]
    )
    # Extra seeds keep model.keras and metrics.json, and skip the exports.
    assert (run["workdir"] / "student_seed43" / "model.keras").is_file()
    assert not (run["workdir"] / "student_seed43" / "saved_model").exists()


def test_accuracy_png_is_a_real_figure(run):
    raw = (run["workdir"] / "accuracy.png").read_bytes()
    assert raw[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(raw) > 20_000
    image = tf.io.decode_png(raw)
    assert image.shape[0] >= 400 and image.shape[1] >= 800


def test_best_and_last_epoch_are_both_measured(run):
    """Early stopping off (TINY): the model keeps its last epoch's weights; the
    best epoch is the first maximum of the validation accuracy."""
    for name, metrics in run["results"].items():
        assert metrics["weights"] == "last_epoch"
        assert metrics["test_accuracy"] == metrics["test_accuracy_last_epoch"]
        curve = metrics["history"]["val_accuracy"]
        assert metrics["best_epoch"] == int(np.argmax(curve)) + 1, name


def test_agreement_with_the_teacher_is_what_the_saved_models_say(run):
    config = run["config"]
    splits = config_lib.load_data(config)
    x = splits.x_test.astype(np.float32)

    def classes(name):
        model = keras.models.load_model(run["workdir"] / name / "model.keras")
        return np.argmax(model.predict(x, verbose=0), axis=-1)

    teacher = classes("teacher")
    for name in ("student", "distilling_seed43"):
        student = classes(name)
        metrics = run["results"][name]
        assert metrics["test_agreement_with_teacher"] == pytest.approx(
            np.mean(student == teacher)
        )
        assert metrics["test_accuracy"] == pytest.approx(
            np.mean(student == splits.y_test)
        )


def scalars(folder):
    """{tag: [(step, value), ...]} of the TensorBoard event files in `folder`."""
    out = {}
    for name in os.listdir(folder):
        for event in tf.compat.v1.train.summary_iterator(os.path.join(folder, name)):
            for value in event.summary.value:
                number = float(tf.make_ndarray(value.tensor))
                out.setdefault(value.tag, []).append((event.step, number))
    return out


def test_tensorboard_holds_the_named_scalars(run):
    tb = run["tb"]  # as passed to train.run; main.py: tensorboard/<config name>
    train_tags = scalars(tb / "distilling" / "train")
    val_tags = scalars(tb / "distilling" / "validation")
    for loss in ("loss", "hard_loss", "soft_loss", "accuracy", "agreement"):
        assert len(train_tags[f"epoch_{loss}"]) == 3, loss
        assert len(val_tags[f"epoch_{loss}"]) == 3, loss
        steps = [step for step, _ in train_tags[f"batch_{loss}"]]
        assert steps == list(range(EVERY_STEPS, 3 * 21 + 1, EVERY_STEPS)), loss
    assert len(train_tags["epoch_learning_rate"]) == 3
    rates = [value for _, value in train_tags["batch_learning_rate"]]
    assert rates[0] < run["config"].optimizer.learning_rate
    assert all(a > b for a, b in zip(rates, rates[1:], strict=False))  # cosine
    # Validation agreement is what the epoch's history logged.
    history = run["results"]["distilling"]["history"]
    logged = [value for _, value in val_tags["epoch_agreement"]]
    np.testing.assert_allclose(logged, history["val_agreement"], rtol=1e-6)
    # Every model of the run, and each of its seeds and sweep cells, has its logs.
    for name in ("teacher", "student", "student_seed43", "distilling_seed43"):
        assert "epoch_accuracy" in scalars(tb / name / "validation"), name
    assert "epoch_loss" in scalars(tb / "sweep" / "T4_alpha0.1" / "train")


def test_sweep_reuses_the_teacher_and_writes_table_and_heat_map(run):
    sweep = json.loads((run["workdir"] / "sweep.json").read_text())
    report = json.loads((run["workdir"] / "report.json").read_text())
    assert "teacher" not in run["sweep"]  # the run folder's teacher, not retrained
    assert sweep["teacher_test_accuracy"] == pytest.approx(
        report["models"]["teacher"]["test_accuracy"]
    )
    assert len(sweep["cells"]) == 4
    alone = {
        seed: run["sweep"][name]["test_accuracy"]
        for seed, name in ((42, "sweep/student"), (43, "sweep/student_seed43"))
    }
    # The sweep's students alone retrace the run's: same seeds, same batches.
    assert alone[42] == pytest.approx(run["results"]["student"]["test_accuracy"])
    for cell in sweep["cells"]:
        name = f"sweep/T{cell['temperature']:g}_alpha{cell['alpha']:g}"
        runs = [run["sweep"][name], run["sweep"][f"{name}_seed43"]]
        assert [r["temperature"] for r in runs] == [cell["temperature"]] * 2
        assert [r["alpha"] for r in runs] == [cell["alpha"]] * 2
        gains = [r["test_accuracy"] - alone[r["seed"]] for r in runs]
        assert cell["gain"] == pytest.approx(np.mean(gains))
    # The cell of the run's own T and alpha retraces its distilled student.
    cell = next(
        c for c in sweep["cells"] if (c["temperature"], c["alpha"]) == (4.0, 0.1)
    )
    assert cell["test_accuracy"] == pytest.approx(
        report["models"]["distilling"]["test_accuracy"]
    )
    # The chosen cell is the best on validation, never picked on test.
    chosen = max(sweep["cells"], key=lambda c: c["validation_accuracy"])
    assert sweep["chosen"] == chosen and "best" not in sweep
    for cell in sweep["cells"]:
        name = f"sweep/T{cell['temperature']:g}_alpha{cell['alpha']:g}"
        runs = [run["sweep"][name], run["sweep"][f"{name}_seed43"]]
        assert cell["validation_accuracy"] == pytest.approx(
            np.mean([r["validation_accuracy"] for r in runs])
        )
    assert sweep["chosen_flags"] == (
        f"--config.distill.temperature={chosen['temperature']:g} "
        f"--config.distill.alpha={chosen['alpha']:g}"
    )
    text = (run["workdir"] / "sweep.md").read_text()
    assert "| T \\ alpha | 0.1 | 0.5 |" in text and "| 4 |" in text
    assert "Chosen on the validation split" in text and sweep["chosen_flags"] in text
    raw = (run["workdir"] / "sweep.png").read_bytes()
    assert raw[:8] == b"\x89PNG\r\n\x1a\n" and len(raw) > 10_000
    assert (run["workdir"] / "sweep" / "T1_alpha0.5" / "model.keras").is_file()
    assert not (run["workdir"] / "sweep" / "T1_alpha0.5" / "saved_model").exists()


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("num_seeds", 0, "config.num_seeds=0: expected a positive integer"),
        ("sweep.alphas", (0.5, 1.5), "config.sweep.alphas=(0.5, 1.5): expected"),
        ("sweep.temperatures", (), "config.sweep.temperatures=(): expected"),
        ("sweep.temperatures", (2.0, 2.0), "expected distinct values"),
        ("tensorboard.every_steps", -1, "config.tensorboard.every_steps=-1"),
    ],
)
def test_bad_report_settings_are_named(tiny_config, tmp_path, key, value, message):
    *section, field = key.split(".")
    target = tiny_config[section[0]] if section else tiny_config
    target[field] = value
    with pytest.raises(ValueError, match=re.escape(message)):
        experiment.run(tiny_config, workdir=str(tmp_path / "run"), mode="sweep")
    assert not (tmp_path / "run").exists()


def test_the_report_places_its_student_on_a_published_curve(run, tmp_path, monkeypatch):
    """A capacity curve published for the run's data set (benchmarks/capacity.py
    --publish): report.md says which measured sizes its student sits between."""
    from tf_distill.reports import capacity, report

    size = {
        "name": "mlp 4",
        "arch": "mlp",
        "params": 310,
        "alone": {"test_accuracy": 0.5},
        "distilled": {"test_accuracy": 0.6},
        "gain": 0.1,
        "pays": "yes",
    }
    curve = {
        "dataset": "digits",
        "teacher": {"name": "mlp 256/128", "test_accuracy": 0.97},
        "train_examples": 1293,
        "seeds": 3,
        "sizes": [size, {**size, "name": "mlp 64", "params": 4810}],
    }
    monkeypatch.setattr(capacity, "CURVES_DIR", str(tmp_path))
    (tmp_path / "digits.json").write_text(json.dumps(curve))
    run_dir = experiment.run_dir_of(str(tmp_path / "again"))
    written = report.write(run_dir, run["results"], title="tiny")
    student = run["results"]["student"]["params"]
    assert (
        f"a student of {student:,} parameters sits between mlp 4" in written["capacity"]
    )
    assert written["capacity"] in (tmp_path / "again" / "report.md").read_text()
