"""Choosing a distillation recipe on the validation split, and what it gives on test.

    python benchmarks/recipes.py --config=configs/digits_recommended.py \
        --workdir=/tmp/recipes

Trains the config's teacher once (once per `--teacher_keeps` value: which of its
weights it keeps, config.teacher.keep) and its student alone over
`config.num_seeds` seeds, then distils each teacher with each candidate recipe
below (same seeds, same initial weights and batches as the students alone).
Recipes are ranked by the mean validation accuracy of the kept weights; the test
split only reports. Prints one table (the teacher's weights, validation, test, the
paired gain over the student alone with its 95% CI, the share of that teacher's
lead recovered, wall time) and writes <workdir>/recipes.json and recipes.md.
"""

from __future__ import annotations

import os
import shutil
import time

import common  # benchmarks/common.py, beside this script
from absl import app, flags

# Candidate sets, by --recipes: "alone" are the student alone's schedules (epochs,
# patience; 0 keeps the last epoch), chosen on validation too, so the gain is over
# the best-validated baseline; "distill" are (mixup, T, alpha, distill epochs,
# distill patience).
RECIPES = {
    # Hinton et al.'s KD with early stopping, then patient schedules with and
    # without mixup (function matching, Beyer et al. 2022).
    "function_matching": {
        "alone": ((100, 20), (100, 0), (300, 0)),
        "distill": (
            (0.0, 4.0, 0.1, 100, 20),
            (0.0, 1.0, 0.1, 300, 0),
            (0.2, 1.0, 0.0, 300, 0),
            (1.0, 1.0, 0.0, 300, 0),
            (0.2, 4.0, 0.0, 300, 0),
        ),
    },
    # Few labels and unlabelled transfer data (config.labeled_fraction < 1): the
    # temperature, the weight of the few hard labels, and the schedule.
    "few_labels": {
        "alone": ((100, 20), (100, 0), (300, 0)),
        "distill": (
            (0.0, 4.0, 0.1, 100, 20),
            (0.0, 4.0, 0.1, 300, 0),
            (0.0, 2.0, 0.1, 300, 0),
            (0.0, 8.0, 0.1, 300, 0),
            (0.0, 4.0, 0.5, 300, 0),
            (0.0, 4.0, 0.0, 300, 0),
        ),
    },
    # Function matching on Fashion-MNIST (issue 27): the config's augmentation
    # (shifts, flips) for the student alone and the distilled student alike, on
    # equal schedules of the config's student.epochs; the distilled student on
    # the config's cached views, with and without mixup (the distilled
    # student's only), chosen on validation. Two candidates: each costs three
    # seeds of training and its own pass of the teacher over every view.
    "fashion_function_matching": {
        "alone": ((None, 0),),
        "distill": ((0.0, 1.0, 0.1, None, 0), (1.0, 1.0, 0.0, None, 0)),
    },
    # The same, from a committee that knows the views, with the schedule
    # chosen on validation too: 30 (the config's) or 60 epochs, for the student
    # alone and the distilled student alike.
    "fashion_function_matching_schedules": {
        "alone": ((None, 0), (60, 0)),
        "distill": (
            (0.0, 1.0, 0.1, None, 0),
            (1.0, 1.0, 0.0, None, 0),
            (0.0, 1.0, 0.1, 60, 0),
        ),
    },
    # 54,000 images an epoch (MNIST, Fashion-MNIST): equal schedules of the
    # config's student.epochs (None), the last epoch kept; a low and the usual T.
    "large": {
        "alone": ((None, 0),),
        "distill": ((0.0, 1.0, 0.1, None, 0), (0.0, 4.0, 0.1, None, 0)),
    },
}

flags.DEFINE_string("config", "configs/digits_recommended.py", "Config file.")
flags.DEFINE_string("workdir", "/tmp/recipes", "Where runs and tables go.")
flags.DEFINE_string(
    "teacher_dir", None, "A trained teacher's folder to reuse instead of training one."
)
flags.DEFINE_enum("recipes", "function_matching", list(RECIPES), "Candidate set.")
flags.DEFINE_list(
    "teacher_keeps",
    [],
    'config.teacher.keep values to compare, e.g. "best,last,10" (a teacher '
    "trained for each); empty: the config's alone.",
)
flags.DEFINE_list(
    "teacher_paths",
    [],
    "Saved teachers (.keras) distilled as one committee (config.teacher_paths); "
    "then no teacher is trained.",
)
FLAGS = flags.FLAGS


def _recipe_config(config, recipe):
    mixup, temperature, alpha, epochs, patience = recipe
    config = config.copy_and_resolve_references()
    config.augment.mixup = mixup
    config.distill.temperature = temperature
    config.distill.alpha = alpha
    config.distill.epochs = epochs
    config.distill.patience = patience
    return config


def _teachers(config, tensorboard):
    """{run directory: the teacher's metrics} of each --teacher_keeps value (in
    <workdir>/base, base_keep_<value>), or of the config's teacher."""
    if not FLAGS.teacher_keeps:
        base = os.path.join(FLAGS.workdir, "base")
        return {base: _teacher(config, base, tensorboard)}
    if FLAGS.teacher_dir:
        raise app.UsageError("--teacher_dir reuses one teacher: drop --teacher_keeps")
    teachers = {}
    for keep in FLAGS.teacher_keeps:
        variant = config.copy_and_resolve_references()
        variant.teacher.keep = keep
        base = os.path.join(FLAGS.workdir, f"base_keep_{keep}")
        teachers[base] = _teacher(variant, base, tensorboard)
    return teachers


def _teacher(config, base, tensorboard):
    """The teacher's metrics: trained in `base`, copied from --teacher_dir (a
    trained teacher's folder, e.g. an earlier run's base/teacher), or those of
    config.teacher_paths' committee."""
    from tf_distill import experiment
    from tf_distill.outputs import files

    if config.teacher_paths:
        return _committee(config, config.distill.temperature)

    if FLAGS.teacher_dir:
        shutil.copytree(
            FLAGS.teacher_dir, os.path.join(base, "teacher"), dirs_exist_ok=True
        )
        return files.read_json(os.path.join(base, "teacher", "metrics.json"))
    return experiment.run(
        config, workdir=base, mode="teacher", tensorboard_dir=tensorboard
    )["teacher"]


def _committee(config, temperature):
    """The test accuracy of config.teacher_paths' ensemble, its members'
    probabilities averaged at `temperature` (each distilling run writes the
    same in its ensemble.json)."""
    from tf_distill.data import batches
    from tf_distill.distillation import ensemble
    from tf_distill.models import loading, measure
    from tf_distill.tasks.classifier import settings as config_lib

    splits = config_lib.load_data(config)
    members = [loading.load(path) for path in config.teacher_paths]
    committee = ensemble.build(members, temperature)
    test = batches.pipeline(splits.x_test, splits.y_test, batch_size=256)
    accuracy = measure.evaluate(committee, test).accuracy
    print(f"committee of {len(members)} at T={temperature:g}: test {accuracy:.4f}")
    return {"test_accuracy": accuracy, "weights": f"ensemble_of_{len(members)}"}


def main(argv):
    del argv
    from tf_distill.outputs import files

    config = common.load_config(FLAGS.config, name_prefix="recipes")
    config.export.tflite = False
    if FLAGS.teacher_paths:
        config.teacher_paths = tuple(FLAGS.teacher_paths)
    tensorboard = os.path.join(FLAGS.workdir, "tensorboard")
    teachers = _teachers(config, tensorboard)
    first = next(iter(teachers.values()))
    alone_rows, alone = _alone(config, first, tensorboard)
    rows = list(alone_rows)
    for base, teacher in teachers.items():
        rows += _distilled(config, base, teacher, alone, tensorboard)
    chosen = max(rows[len(alone_rows) :], key=lambda r: r["validation_accuracy"])
    table = _markdown(config.name, first, rows, chosen, len(alone))
    print(table)
    files.write_json(
        os.path.join(FLAGS.workdir, "recipes.json"),
        {"teacher": first["test_accuracy"], "rows": rows, "chosen": chosen},
    )
    files.write_text(os.path.join(FLAGS.workdir, "recipes.md"), table)


def _alone(config, teacher, tensorboard):
    """The student alone's rows, one per schedule, and the runs of the one
    with the best mean validation accuracy: the baseline."""
    from tf_distill import experiment
    from tf_distill.outputs.rundir import runs_of

    rows, runs_by_row = [], []
    for epochs, patience in RECIPES[FLAGS.recipes]["alone"]:
        epochs = epochs or config.student.epochs
        variant = config.copy_and_resolve_references()
        variant.student.epochs, variant.early_stopping.patience = epochs, patience
        start = time.perf_counter()
        runs = runs_of(
            experiment.run(
                variant,
                workdir=os.path.join(FLAGS.workdir, f"alone_{epochs}_{patience}"),
                mode="student",
                tensorboard_dir=tensorboard,
            ),
            "student",
        )
        kept = "early stopping" if patience else "last epoch"
        name = f"student alone, {epochs} epochs, {kept}"
        seconds = time.perf_counter() - start
        rows.append(
            common.paired_row(name, runs, runs, teacher["test_accuracy"], seconds)
        )
        runs_by_row.append(runs)
    best = max(range(len(rows)), key=lambda i: rows[i]["validation_accuracy"])
    rows[best]["recipe"] += " (chosen on validation: the baseline)"
    return rows, runs_by_row[best]


def _distilled(config, base, teacher, alone, tensorboard):
    """One row per candidate recipe, distilled from the teacher in `base`."""
    from tf_distill import experiment
    from tf_distill.outputs.rundir import runs_of

    rows = []
    for number, recipe in enumerate(RECIPES[FLAGS.recipes]["distill"]):
        mixup, temperature, alpha, epochs, patience = recipe
        epochs = epochs or config.student.epochs
        recipe = (mixup, temperature, alpha, epochs, patience)
        name = (
            f"mixup {mixup:g}, T={temperature:g}, alpha={alpha:g}, {epochs} epochs"
            + (", early stopping" if patience else ", last epoch")
        )
        workdir = os.path.join(FLAGS.workdir, f"{os.path.basename(base)}_{number}")
        os.makedirs(workdir, exist_ok=True)
        if config.teacher_paths:  # the committee's accuracy depends on T
            teacher = _committee(config, temperature)
        else:
            shutil.copytree(
                os.path.join(base, "teacher"),
                os.path.join(workdir, "teacher"),
                dirs_exist_ok=True,
            )
        start = time.perf_counter()
        distilled = experiment.run(
            _recipe_config(config, recipe),
            workdir=workdir,
            mode="distilling",
            tensorboard_dir=tensorboard,
        )
        rows.append(
            common.paired_row(
                name,
                runs_of(distilled, "distilling"),
                alone,
                teacher["test_accuracy"],
                time.perf_counter() - start,
            )
        )
        rows[-1]["teacher_weights"] = teacher["weights"]
        rows[-1]["teacher_test_accuracy"] = teacher["test_accuracy"]
    return rows


def _markdown(title, teacher, rows, chosen, seeds):
    lines = [
        f"# Recipes on {title}: teacher test accuracy {teacher['test_accuracy']:.4f}, "
        f"{seeds} seeds\n",
        "| recipe | teacher's weights (test acc.) | val. acc. | test acc. | "
        "gain over alone, points [95% CI] | gap recovered | wall s |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        gain, share = common.gain_cells(
            r, baseline=r["recipe"].startswith("student alone")
        )
        mark = " (chosen on validation)" if r is chosen else ""
        kept = r.get("teacher_weights")
        kept = (
            "-"
            if kept is None
            else (f"{kept.replace('_', ' ')} ({r['teacher_test_accuracy']:.4f})")
        )
        lines.append(
            f"| {r['recipe']}{mark} | {kept} | {r['validation_accuracy']:.4f} | "
            f"{r['test_accuracy']:.4f} | {gain} | {share} | {r['seconds']:.0f} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    app.run(main)
