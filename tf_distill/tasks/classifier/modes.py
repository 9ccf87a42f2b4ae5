"""The `--model` modes of the classifier task, one function each in `MODES`.

    teacher     trains the teacher on the labels
    student     trains the student alone, once per seed: the baseline to beat
    distilling  distils the saved teacher into a fresh student, once per seed
    all         the three, then report.{json,md} and accuracy.png
    sweep       distils over config.sweep's temperature x alpha grid
    export      rewrites the SavedModel and LiteRT files of every trained model
    evaluate    every exported artefact on the test split, as a client runs it

A training mode opens a `Session` (the run context, the teacher, the trainer),
asks it for the models it names, and writes the run's report; `export` and
`evaluate` work on what a run left.
"""

from __future__ import annotations

import os
import statistics

from absl import logging

from tf_distill.data import batches
from tf_distill.distillation import registry
from tf_distill.models import measure
from tf_distill.outputs import files
from tf_distill.outputs.rundir import (
    DISTILLED,
    STUDENT,
    SWEEP,
    TEACHER,
    ModelKey,
    RunDir,
    runs_of,
)
from tf_distill.reports import report, sweep_report
from tf_distill.shipping import clients, export, shipper
from tf_distill.tasks.classifier import settings as config_lib
from tf_distill.tasks.classifier.session import Session, load_fitting


def teacher(config, run_dir: RunDir) -> dict[str, dict]:
    """Trains the teacher on the labels."""
    _refuse_teacher_path(config, "teacher")
    with Session(config, run_dir, "teacher") as s:
        return {TEACHER: s.train_teacher()[1]}


def student(config, run_dir: RunDir) -> dict[str, dict]:
    """Trains the student alone, once per seed: the baseline to beat."""
    with Session(config, run_dir, "student") as s:
        return s.train_students(STUDENT, ship=True)


def _refuse_teacher_path(config, mode: str) -> None:
    """A mode that trains its own teacher would silently ignore the one named."""
    if config.teacher_path:
        raise ValueError(
            f"config.teacher_path={config.teacher_path!r} is for --model=distilling "
            f"and --model=sweep; --model={mode} trains its own teacher"
        )


def distilling(config, run_dir: RunDir) -> dict[str, dict]:
    """Distils the saved teacher into a fresh student, once per seed."""
    with Session(config, run_dir, "distilling", teacher="required") as s:
        method = config_lib.method(config)
        results = s.distill_students(lambda seed: s.key(DISTILLED, seed), method)
        results.update(s.distill_generations(method))
        if config.teacher_paths:
            _ensemble_metrics(s)  # ensemble.json: the committee's own accuracy
        return results


def all_models(config, run_dir: RunDir) -> dict[str, dict]:
    """Teacher, students alone and distilled students; then the report. With
    config.teacher_paths the ensemble is the teacher, and none is trained."""
    _refuse_teacher_path(config, "all")
    committee = bool(config.teacher_paths)
    teacher = "required" if committee else "none"
    with Session(config, run_dir, "all", teacher=teacher) as s:
        s.discard("report.json", "report.md", "accuracy.png")
        if committee:
            results = {TEACHER: _ensemble_metrics(s)}
        else:
            results = {TEACHER: s.train_teacher()[1]}
        method = config_lib.method(config)
        # The students alone and the distilled students, fitted side by side
        # (config.concurrent_fits), finished in this order.
        jobs = s.student_jobs(STUDENT, ship=True)
        jobs += s.distill_jobs(lambda seed: s.key(DISTILLED, seed), method)
        results.update(s.run(jobs))
        results.update(s.distill_generations(method))
        report.write(run_dir, results, title=config.name)
        return results


def _ensemble_metrics(s: Session) -> dict:
    """The ensemble of config.teacher_paths as the run's teacher: its and each
    member's test accuracy, written to ensemble.json; the report's teacher
    row. Its logits are the members' probabilities averaged at T."""
    task, test = s.trainer, s.trainer.teacher_test
    members = [
        {"path": path, "test_accuracy": measure.evaluate(m, task.test_ds).accuracy}
        for path, m in zip(s.config.teacher_paths, s.members, strict=True)
    ]
    metrics = {
        "model": TEACHER,
        "config_fingerprint": task.settings.fingerprint,
        "seed": s.config.seed,
        "ensemble": members,
        "temperature": float(s.config.distill.temperature),
        "test_accuracy": test.accuracy,
        "test_loss": test.loss,
        "params": s.teacher.count_params(),
        "saved_model_bytes": None,  # a committee is not shipped
        "data": {"source": task.splits.source, **task.splits.sizes()},
    }
    files.write_json(s.run_dir.file("ensemble.json"), metrics)
    logging.info(
        "Teacher ensemble of %d: test accuracy %.4f (members %s)",
        len(members),
        test.accuracy,
        ", ".join(f"{m['test_accuracy']:.4f}" for m in members),
    )
    return metrics


def sweep(config, run_dir: RunDir) -> dict[str, dict]:
    """Distils over config.sweep's temperature x alpha grid, beside the students
    alone of the same seeds in `sweep/`; the run's own models stay as they were.
    Reuses the run's teacher (or config.teacher_path), training one only if none."""
    if config.teacher_paths:
        raise ValueError(
            "--model=sweep varies the temperature, and config.teacher_paths' "
            "ensemble averages its teachers' probabilities at one: distil it with "
            "--model=distilling at each --config.distill.temperature"
        )
    if not {"temperature", "alpha"} <= set(
        registry.method_class(config.distill.method).keys
    ):
        raise ValueError(
            f"--model=sweep sweeps KD's temperature x alpha; config.distill.method="
            f"{config.distill.method!r} has other weights: set them with "
            "--config.distill.* and compare runs, or sweep with method kd"
        )
    with Session(config, run_dir, "sweep", teacher="optional") as s:
        s.discard("sweep.json", "sweep.md", "sweep.png")
        results = {}
        if s.teacher is None:
            results[TEACHER] = s.train_teacher()[1]
        students = s.train_students(f"{SWEEP}/{STUDENT}", ship=False)
        results.update(students)
        cells = {}
        for temperature in config.sweep.temperatures:
            for alpha in config.sweep.alphas:
                method = config_lib.method(config, temperature=temperature, alpha=alpha)
                cell = s.distill_students(
                    lambda seed, t=temperature, a=alpha: ModelKey.sweep_cell(
                        t, a, seed, config.seed
                    ),
                    method,
                    ship=False,  # model.keras and metrics.json only
                )
                cells[temperature, alpha] = list(cell.values())
                results.update(cell)
        sweep_report.write(
            run_dir,
            students=list(students.values()),
            cells=cells,
            title=config.name,
            teacher_accuracy=s.trainer.teacher_test.accuracy,
        )
        return results


def export_models(config, run_dir: RunDir) -> dict[str, dict]:
    """Rewrites the SavedModel and LiteRT files of every trained model, no training.

    Every model is loaded and checked against the data before any is rewritten.
    Returns the artefact sizes per model.
    """
    keys = run_dir.trained()
    splits = config_lib.load_data(config)
    loaded = {k: load_fitting(run_dir.model(k).keras, splits) for k in keys}
    representative = shipper.calibration_images(
        config_lib.classifier_settings(config), splits.x_train
    )
    results = {}
    with files.locked(run_dir.root):
        for key, model in loaded.items():
            results[key.name] = export.export_model(
                model,
                run_dir.model(key),
                class_names=splits.class_names,
                representative=representative,
                pixel_max=splits.input_scale,
            )
            logging.info("Exported %s: %s", key.name, results[key.name])
    return results


def evaluate_exports(config, run_dir: RunDir) -> dict[str, dict]:
    """Every exported artefact of the run's models on the test split, as a client
    runs it, beside the .keras model loaded as a user loads it; writes
    `<model>/evaluation.json` and prints the table. Every model is loaded and
    checked against the data before any is evaluated."""
    keys = run_dir.trained()
    splits = config_lib.load_data(config)
    loaded = {k: load_fitting(run_dir.model(k).keras, splits) for k in keys}
    test = batches.pipeline(splits.x_test, splits.y_test, batch_size=config.batch_size)
    results = {}
    with files.locked(run_dir.root):
        for key, model in loaded.items():
            paths = run_dir.model(key)
            result = clients.evaluate_artefacts(paths, splits.x_test, splits.y_test)
            measured = measure.evaluate(model, test)
            result["keras"] = {
                "test_accuracy": measured.accuracy,
                "test_loss": measured.loss,
            }
            files.write_json(paths.evaluation, result)
            results[key.name] = result
    print(clients.format_table(results))
    return results


MODES = {
    "teacher": teacher,
    "student": student,
    "distilling": distilling,
    "all": all_models,
    "sweep": sweep,
    "export": export_models,
    "evaluate": evaluate_exports,
}


def summary(mode: str, results: dict[str, dict], run_dir: RunDir) -> list[str]:
    """The lines the terminal shows of a mode's results, and where they are."""
    lines = []
    for name, metrics in results.items():
        key = ModelKey.parse(name)
        if not key.is_first_seed or key.base.startswith(f"{SWEEP}/"):
            continue  # the report and the sweep's table hold those
        paths = run_dir.model(key)
        if "test_accuracy" in metrics:
            lines.append(
                f"  {name}: test accuracy {_over_seeds(results, key.base)}, "
                f"model {paths.keras}"
            )
        if os.path.isdir(paths.saved_model) and mode != "evaluate":
            lines.append(f"  {name}: SavedModel for serving {paths.saved_model}")
    if mode == "all":
        verdict = files.read_json(run_dir.file("report.json"))["verdict"]
        lines += [
            f"  {verdict}",
            f"  {report.gap_sentence(files.read_json(run_dir.file('report.json')))}",
            f"  report: {run_dir.file('report.md')}, {run_dir.file('accuracy.png')}",
        ]
    if mode == "sweep":
        lines.append(
            f"  sweep: {run_dir.file('sweep.md')}, {run_dir.file('sweep.png')}"
        )
    return lines


def _over_seeds(results: dict[str, dict], base: str) -> str:
    """`base`'s test accuracy as the verdict sees it: the mean and sample standard
    deviation over the run's seeds, or the one seed's."""
    accuracies = [r["test_accuracy"] for r in runs_of(results, base)]
    if len(accuracies) == 1:
        return f"{accuracies[0]:.4f} (1 seed)"
    return (
        f"{statistics.mean(accuracies):.4f} ± {statistics.stdev(accuracies):.4f} "
        f"over {len(accuracies)} seeds"
    )
