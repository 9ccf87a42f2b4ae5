"""How small a student can be: test accuracy against student size, alone and distilled.

    python benchmarks/capacity.py --config=configs/fashion_mnist_recommended.py \
        --workdir=/tmp/capacity

Trains the config's teacher once (or reuses --teacher_dir), then students of the
teacher's family at `--fractions` of its parameters (a convnet or cnn teacher's
filters, or an MLP's units, all scaled by one factor, found so that the student
has about 1/fraction of the teacher's parameters) and one MLP (`--mlp`). Each
student trains alone and distilled over `--seeds` seeds, from the same initial
weights and batches, on equal schedules (`--student_epochs`, the last epoch kept);
the distilled recipe (T in `--temperatures`, alpha 0.1) is chosen per size on the
validation split, the test split only reports. `--labeled_fraction` keeps a
stratified share of the training split for every model (the rest unused), so the
whole curve fits in well under an hour here.

Prints one table (parameters, alone, distilled, the paired gain with its 95% CI,
the share of the teacher's lead recovered, whether distillation pays) and writes
<workdir>/capacity.{json,md,png}. With --publish, the JSON also goes to
tf_distill/reports/curves/<dataset>.json, where the report of `--model=all` finds
it and says where its student sits on the curve.
"""

from __future__ import annotations

import os
import shutil
import time

import common  # benchmarks/common.py, beside this script
from absl import app, flags

flags.DEFINE_string("config", "configs/fashion_mnist_recommended.py", "Config file.")
flags.DEFINE_string("workdir", "/tmp/capacity", "Runs, the teacher and the table.")
flags.DEFINE_string(
    "teacher_dir", None, "A trained teacher's folder to reuse instead of training one."
)
flags.DEFINE_list("fractions", ["4", "16", "64", "256"], "Student sizes, 1/fraction.")
flags.DEFINE_list("mlp", ["32"], "Hidden units of the one MLP student; empty: none.")
flags.DEFINE_list("temperatures", ["1", "4"], "T candidates, chosen on validation.")
flags.DEFINE_float("labeled_fraction", 0.2, "The share of the training split used.")
flags.DEFINE_integer("teacher_epochs", 30, "Epochs of the teacher, if trained here.")
flags.DEFINE_integer("student_epochs", 20, "Epochs of every student.")
flags.DEFINE_integer("seeds", 3, "Seeds of every student.")
flags.DEFINE_bool("publish", False, "Also write tf_distill/reports/curves/.")
FLAGS = flags.FLAGS

ALPHA = 0.1  # the hard-label weight of every distilled student


def _config():
    config = common.load_config(FLAGS.config, name_prefix="capacity")
    config.labeled_fraction = FLAGS.labeled_fraction
    config.distill.transfer_data = None  # the withheld images stay unused
    config.teacher.epochs = FLAGS.teacher_epochs
    config.student.epochs = FLAGS.student_epochs
    config.distill.epochs = None
    config.distill.alpha = ALPHA
    config.early_stopping.patience = 0  # equal schedules, the last epoch kept
    config.num_seeds = FLAGS.seeds
    config.export.tflite = False
    config.concurrent_fits = 2  # small students leave a core idle
    config.steps_per_execution = 32
    config.validation_every_epochs = 5
    return config


def main(argv):
    del argv
    from tf_distill import experiment
    from tf_distill.outputs import files
    from tf_distill.reports import capacity

    start = time.perf_counter()
    config = _config()
    base = os.path.join(FLAGS.workdir, "base")
    if FLAGS.teacher_dir:  # reused as it is (its config may differ in epochs)
        shutil.copytree(
            FLAGS.teacher_dir, os.path.join(base, "teacher"), dirs_exist_ok=True
        )
        teacher = files.read_json(os.path.join(base, "teacher", "metrics.json"))
    else:
        teacher = experiment.run(config, workdir=base, mode="teacher")["teacher"]
    splits = _splits(config)
    students = capacity.students(
        config.teacher,
        [float(f) for f in FLAGS.fractions],
        [int(u) for u in FLAGS.mlp if u],
        splits,
    )
    rows = [_measure(config, base, student, teacher) for student in students]
    curve = capacity.curve(config, teacher, rows, train_examples=len(splits.y_train))
    curve["wall_seconds"] = time.perf_counter() - start
    table = capacity.markdown(curve)
    print(table)
    files.write_json(os.path.join(FLAGS.workdir, "capacity.json"), curve)
    files.write_text(os.path.join(FLAGS.workdir, "capacity.md"), table)
    capacity.plot(curve, os.path.join(FLAGS.workdir, "capacity.png"))
    if FLAGS.publish:
        path = capacity.published_path(config.dataset)
        files.write_json(path, curve)
        print(f"Published to {path}")


def _splits(config):
    from tf_distill.tasks.classifier import settings

    return settings.load_data(config)


def _measure(config, base, student, teacher):
    """One student size: alone, then distilled with each T; the T with the best
    mean validation accuracy is the size's recipe."""
    from tf_distill import experiment
    from tf_distill.outputs.rundir import runs_of

    variant = config.copy_and_resolve_references()
    variant.student.arch = student["arch"]
    variant.student.layers = tuple(student["layers"])
    variant.student.dropout = 0.0
    workdir = os.path.join(
        FLAGS.workdir, student["name"].replace(" ", "_").replace("/", "-")
    )
    shutil.copytree(
        os.path.join(base, "teacher"),
        os.path.join(workdir, "teacher"),
        dirs_exist_ok=True,
    )
    clock = time.perf_counter()
    alone = runs_of(experiment.run(variant, workdir=workdir, mode="student"), "student")
    recipes = []
    for temperature in FLAGS.temperatures:
        variant.distill.temperature = float(temperature)
        result = _distilled(variant, workdir, temperature)
        recipes.append((float(temperature), runs_of(result, "distilling")))
    return {
        **student,
        "alone": alone,
        "recipes": recipes,
        "teacher_accuracy": teacher["test_accuracy"],
        "seconds": time.perf_counter() - clock,
    }


def _distilled(variant, workdir, temperature):
    """The distilled students of one T, in a run directory of their own (beside
    the size's, the teacher copied in)."""
    from tf_distill import experiment

    run = f"{workdir}_T{temperature}"
    shutil.copytree(
        os.path.join(workdir, "teacher"),
        os.path.join(run, "teacher"),
        dirs_exist_ok=True,
    )
    return experiment.run(variant, workdir=run, mode="distilling")


if __name__ == "__main__":
    app.run(main)
