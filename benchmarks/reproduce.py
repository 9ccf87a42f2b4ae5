"""Reproduces the three seed configs' published numbers, with seeds.

    python benchmarks/reproduce.py --workdir=/tmp/reproduce
    python benchmarks/reproduce.py --configs=mnist_mlp --num_seeds=3 \
        --set=student.epochs=20 --workdir=/tmp/reproduce_equal_epochs

For each config (configs/<name>.py, reading ../shared/data), `--model=all` with
`config.num_seeds` students alone and distilled students on one teacher, then one
table: what the recipe's authors reported beside what we measured (mean +- sample
std over the seeds; the teacher is one run), the gain "distilled minus alone" with
its 95% confidence interval, and the wall time. `--set=KEY=VALUE` changes the recipe
(the table says so); it is how the investigations in benchmarks/README.md were run.
A killed run resumes where it stopped when started again with the same flags.
Writes <workdir>/reproduce.json and reproduce.md; each config's own report is in
<workdir>/<name>/report.md and its TensorBoard logs in <workdir>/tensorboard/.
"""

from __future__ import annotations

import ast
import os
import platform
import time

import common  # benchmarks/common.py, beside this script
from absl import app, flags

CONFIGS = ("fashion_mnist_mlp", "mnist_mlp", "mnist_cnn")
# Test accuracy as each recipe's source reports it (configs/<name>.py docstrings).
PUBLISHED = {
    "fashion_mnist_mlp": {
        "teacher": "0.894",
        "student": "0.872-0.881",
        "distilling": "not reported",
    },
    "mnist_mlp": {
        "teacher": "0.976",
        "student": "0.817 (3 epochs)",
        "distilling": "0.902 (20 epochs)",
    },
    "mnist_cnn": {"teacher": "~0.976", "student": "~0.976", "distilling": "~0.981"},
}
LABELS = {
    "teacher": "teacher",
    "student": "student alone",
    "distilling": "distilled",
}

flags.DEFINE_list("configs", list(CONFIGS), "Config names (configs/<name>.py).")
flags.DEFINE_integer("num_seeds", 3, "Seeds of the students (config.num_seeds).")
flags.DEFINE_string("workdir", "/tmp/reproduce", "Where runs and tables go.")
flags.DEFINE_multi_string(
    "set", [], "KEY=VALUE config override for every config, e.g. distill.alpha=0.5."
)
FLAGS = flags.FLAGS


def _override(config, assignment):
    key, _, text = assignment.partition("=")
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        value = text  # a plain string, e.g. strategy=mirrored
    *sections, field = key.split(".")
    target = config
    for section in sections:
        target = target[section]
    if field not in target:
        raise ValueError(f"--set={assignment}: the config has no key {key!r}")
    target[field] = value


def main(argv):
    del argv
    from tf_distill import experiment
    from tf_distill.outputs import files

    os.makedirs(FLAGS.workdir, exist_ok=True)
    rows, results = [], {}
    for name in FLAGS.configs:
        config = common.load_config(
            os.path.join(common.REPO, "configs", f"{name}.py"), name_prefix="repro"
        )
        config.name = name
        config.num_seeds = FLAGS.num_seeds
        for assignment in FLAGS.set:
            _override(config, assignment)
        workdir = os.path.join(FLAGS.workdir, name)
        start = time.perf_counter()
        experiment.run(
            config,
            workdir=workdir,
            mode="all",
            tensorboard_dir=os.path.join(FLAGS.workdir, "tensorboard", name),
        )
        minutes = (time.perf_counter() - start) / 60
        report = files.read_json(os.path.join(workdir, "report.json"))
        results[name] = {"minutes": minutes, "report": report}
        rows += _rows(name, report, minutes)
    changed = ", ".join(FLAGS.set) or "none: as published"
    text = (
        "| config | model | published | measured (test acc.) | gain vs alone, "
        "95% CI | minutes |\n|---|---|---|---|---|---|\n"
        + "\n".join(rows)
        + f"\n\nSeeds per student: {FLAGS.num_seeds}. Recipe changes: {changed}. "
        f"Machine: {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs.\n"
    )
    files.write_text(os.path.join(FLAGS.workdir, "reproduce.md"), text)
    files.write_json(
        os.path.join(FLAGS.workdir, "reproduce.json"),
        {"set": FLAGS.set, "num_seeds": FLAGS.num_seeds, "results": results},
    )
    print(text)
    for name in FLAGS.configs:
        print(f"{name}: {results[name]['report']['verdict']}")


def _rows(name, report, minutes):
    rows = []
    for model, label in LABELS.items():
        m = report["models"][model]
        measured = f"{m['test_accuracy']:.4f}"
        if m.get("test_accuracy_std") is not None:
            measured += f" ± {m['test_accuracy_std']:.4f}"
        gain = "-"
        if model == "distilling":
            gain = f"{100 * report['distilled_minus_student_accuracy']:+.2f} points"
            if report["distilled_minus_student_accuracy_ci95"]:
                low, high = report["distilled_minus_student_accuracy_ci95"]
                gain += f" [{100 * low:+.2f}, {100 * high:+.2f}]"
        rows.append(
            f"| {name if model == 'teacher' else ''} | {label} "
            f"| {PUBLISHED.get(name, {}).get(model, '?')} | {measured} | {gain} "
            f"| {f'{minutes:.1f}' if model == 'teacher' else ''} |"
        )
    return rows


if __name__ == "__main__":
    app.run(main)
