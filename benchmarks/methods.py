"""Distillation methods side by side on one config: KD, DKD, a teacher ensemble,
a second generation, a FitNets hint.

    python benchmarks/methods.py --config=configs/default.py --workdir=/tmp/methods

Trains the config's teacher (and, for the ensemble, two more with other seeds),
the student alone over `config.num_seeds` seeds, then distils with each method
from the same initial weights and batches as the students alone. Every method
keeps the config's schedule, temperature and hard-label weight where it has one
(DKD: the paper's alpha=1, beta=8, warm-up 20 epochs; the hint: --hint_layers,
weight 1). `--methods=kd,hint` runs some rows only. Prints one table (test
accuracy, the paired gain over the student alone with its 95% CI, the share of
the teacher's lead recovered, wall time) and writes <workdir>/methods.json and
methods.md. Test accuracy only reports: nothing here is chosen on it.
"""

from __future__ import annotations

import os
import shutil
import time

import common  # benchmarks/common.py, beside this script
from absl import app, flags

flags.DEFINE_string("config", "configs/default.py", "Config file.")
flags.DEFINE_string("workdir", "/tmp/methods", "Where runs and tables go.")
flags.DEFINE_list(
    "methods", ["kd", "dkd", "ensemble", "generation2", "hint"], "Rows to run."
)
flags.DEFINE_string(
    "teacher_dir", None, "A trained teacher's folder to reuse for config.seed's."
)
flags.DEFINE_string(
    "hint_layers",
    "dense_1:dense_0",
    "teacher_layer:student_layer of the hint (the default's MLPs).",
)
FLAGS = flags.FLAGS

ENSEMBLE_SEEDS = (1000, 2000)  # the two extra teachers' seeds


def _methods(config, teachers):
    """(name, config variant, result base) for each method."""

    def variant(**changes):
        c = config.copy_and_resolve_references()
        for key, value in changes.items():
            _set(c, key, value)
        return c

    kd = (
        f"kd (T={config.distill.temperature:g}, alpha={config.distill.alpha:g})",
        variant(),
        "distilling",
    )
    dkd = (
        "dkd (alpha=1, beta=8, warm-up 20 epochs)",
        variant(**{"distill.method": "dkd"}),
        "distilling",
    )
    ensemble = (
        f"kd from an ensemble of {len(teachers)} teachers",
        variant(teacher_paths=tuple(teachers)),
        "distilling",
    )
    second = (
        "kd, generation 2 (from generation 1)",
        variant(**{"distill.generations": 2}),
        "distilling_gen2",
    )
    teacher_layer, student_layer = FLAGS.hint_layers.split(":")
    hint = (
        f"hint (teacher {teacher_layer} -> student {student_layer}, weight 1) + kd",
        variant(
            **{
                "distill.method": "hint",
                "distill.hint.teacher_layer": teacher_layer,
                "distill.hint.student_layer": student_layer,
            }
        ),
        "distilling",
    )
    every = {"kd": kd, "dkd": dkd, "ensemble": ensemble, "generation2": second}
    every["hint"] = hint
    return [every[name] for name in FLAGS.methods]


def _set(config, dotted, value):
    *sections, field = dotted.split(".")
    node = config
    for section in sections:
        node = node[section]
    node[field] = value


def main(argv):
    del argv
    from tf_distill import experiment
    from tf_distill.outputs import files
    from tf_distill.outputs.rundir import runs_of

    config = common.load_config(FLAGS.config, name_prefix="methods")
    config.export.tflite = False
    tensorboard = os.path.join(FLAGS.workdir, "tensorboard")
    teachers, teacher = [], None
    seeds = (config.seed, *ENSEMBLE_SEEDS) if "ensemble" in FLAGS.methods else ()
    for seed in seeds or (config.seed,):
        base = os.path.join(FLAGS.workdir, f"teacher_{seed}")
        if FLAGS.teacher_dir and seed == config.seed:  # reuse a trained teacher
            shutil.copytree(
                FLAGS.teacher_dir, os.path.join(base, "teacher"), dirs_exist_ok=True
            )
            metrics = files.read_json(os.path.join(base, "teacher", "metrics.json"))
        else:
            variant = config.copy_and_resolve_references()
            variant.seed = seed
            metrics = experiment.run(
                variant, workdir=base, mode="teacher", tensorboard_dir=tensorboard
            )["teacher"]
        teacher = teacher or metrics
        teachers.append(os.path.join(base, "teacher", "model.keras"))
    start = time.perf_counter()
    alone = runs_of(
        experiment.run(
            config,
            workdir=os.path.join(FLAGS.workdir, "alone"),
            mode="student",
            tensorboard_dir=tensorboard,
        ),
        "student",
    )
    accuracy = teacher["test_accuracy"]
    rows = [
        common.paired_row(
            "student alone", alone, alone, accuracy, time.perf_counter() - start
        )
    ]
    for number, (name, variant, base) in enumerate(_methods(config, teachers)):
        workdir = os.path.join(FLAGS.workdir, f"method{number}")
        if not variant.teacher_paths:  # the config's own teacher
            shutil.copytree(
                os.path.join(FLAGS.workdir, f"teacher_{config.seed}", "teacher"),
                os.path.join(workdir, "teacher"),
                dirs_exist_ok=True,
            )
        start = time.perf_counter()
        results = experiment.run(
            variant, workdir=workdir, mode="distilling", tensorboard_dir=tensorboard
        )
        rows.append(
            common.paired_row(
                name,
                runs_of(results, base),
                alone,
                accuracy,
                time.perf_counter() - start,
            )
        )
    table = _markdown(config.name, accuracy, rows, len(alone))
    print(table)
    files.write_json(
        os.path.join(FLAGS.workdir, "methods.json"),
        {"teacher": accuracy, "teachers": teachers, "rows": rows},
    )
    files.write_text(os.path.join(FLAGS.workdir, "methods.md"), table)


def _markdown(title, teacher_accuracy, rows, seeds):
    lines = [
        f"# Methods on {title}: teacher test accuracy {teacher_accuracy:.4f}, "
        f"{seeds} seeds\n",
        "| method | test acc. | gain over alone, points [95% CI] | gap recovered "
        "| wall s |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        gain, share = common.gain_cells(r, baseline=r["recipe"] == "student alone")
        std = r["test_accuracy_std"]
        accuracy = f"{r['test_accuracy']:.4f}" + (
            "" if std is None else f" ± {std:.4f}"
        )
        lines.append(
            f"| {r['recipe']} | {accuracy} | {gain} | {share} | {r['seconds']:.0f} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    app.run(main)
