"""Cached augmented views against the per-step teacher, in one run, same data.

    python benchmarks/views.py --workdir=/tmp/views [--epochs=30 --views=8]

On the MNIST CNN pair (configs/mnist_cnn.py: a 256/512 CNN teacher, a 16/32 CNN
student) with Hinton et al.'s +-2 pixel shifts (config.augment.translate=2), on
`--labeled_fraction` of the training split so that three seeds of the per-step
path fit in minutes here, it distils the same teacher twice over `--seeds` seeds:

  1. the teacher in every training step (config.distill.cached_views=0), what
     keras.distillation does whenever the images are augmented;
  2. cached views (config.distill.cached_views=K): K teacher passes in all.

It prints each path's wall time (teacher passes included), test accuracy (mean
± std over seeds), the speed ratio and the paired accuracy difference with its
95% CI; and the teacher pass's throughput in GFLOP/s against this CPU's nominal
float32 peak and a NumPy matrix product measured in the same run. Results:
benchmarks/README.md. Nothing here is chosen on the test split.
"""

from __future__ import annotations

import os
import time

import common  # benchmarks/common.py, beside this script
from absl import app, flags

flags.DEFINE_string("config", "configs/mnist_cnn.py", "Config file.")
flags.DEFINE_string("workdir", "/tmp/views", "Runs, the teacher and the table.")
flags.DEFINE_integer("epochs", 30, "Epochs of every distilled student.")
flags.DEFINE_integer("views", 8, "K, the cached views per image.")
flags.DEFINE_integer("seeds", 3, "Seeds of each path.")
flags.DEFINE_integer("translate", 2, "config.augment.translate, pixels.")
flags.DEFINE_float("labeled_fraction", 0.1, "The share of the training split used.")
flags.DEFINE_integer("teacher_epochs", 3, "Epochs of the teacher, if trained here.")
FLAGS = flags.FLAGS


def _config():
    config = common.load_config(FLAGS.config, name_prefix="views")
    config.labeled_fraction = FLAGS.labeled_fraction
    config.teacher.epochs = FLAGS.teacher_epochs
    config.distill.epochs = FLAGS.epochs
    config.num_seeds = FLAGS.seeds
    config.augment.translate = FLAGS.translate
    config.export.tflite = False
    return config


def _teacher_gflops(teacher, x, batch_size):
    """(GFLOP/s, examples/s) of one inference pass of the teacher over `x`."""
    from tf_distill.data import batches

    ds = batches.pipeline(x, batch_size=batch_size)
    teacher.predict(ds.take(2), verbose=0)  # trace outside the clock
    start = time.perf_counter()
    teacher.predict(ds, verbose=0)
    seconds = time.perf_counter() - start
    flops = common.flops_per_example(teacher)
    return flops * len(x) / seconds / 1e9, len(x) / seconds, flops


def main(argv):
    del argv
    import keras

    from tf_distill import experiment
    from tf_distill.outputs import files
    from tf_distill.outputs.rundir import runs_of
    from tf_distill.reports import stats
    from tf_distill.tasks.classifier import settings as config_lib

    config = _config()
    teacher_dir = os.path.join(FLAGS.workdir, "teacher_run")
    teacher_path = os.path.join(teacher_dir, "teacher", "model.keras")
    if not os.path.isfile(teacher_path):
        experiment.run(config, workdir=teacher_dir, mode="teacher")
    config.teacher_path = teacher_path
    rows = {}
    for name, k in (("teacher every step", 0), (f"{FLAGS.views} cached views", None)):
        variant = config.copy_and_resolve_references()
        variant.distill.cached_views = FLAGS.views if k is None else k
        workdir = os.path.join(FLAGS.workdir, f"views{variant.distill.cached_views}")
        start = time.perf_counter()
        results = experiment.run(variant, workdir=workdir, mode="distilling")
        rows[name] = {
            "seconds": time.perf_counter() - start,
            "runs": runs_of(results, "distilling"),
        }
    per_step, cached = rows.values()
    splits = config_lib.load_data(config)
    gflops, rate, flops = _teacher_gflops(
        keras.models.load_model(teacher_path),
        splits.x_train,
        config.distill.teacher_batch_size,
    )
    diff = stats.paired_differences(cached["runs"], per_step["runs"])
    matmul = common.matmul_gflops()
    lines = [
        f"# Cached views: {config.name}, {len(splits.y_train)} training images, "
        f"{FLAGS.epochs} epochs, translate +-{FLAGS.translate} px, {FLAGS.seeds} "
        "seeds\n",
        "| path | wall s | test acc. (mean ± std) |",
        "|---|---|---|",
    ]
    for name, row in rows.items():
        accuracies = [r["test_accuracy"] for r in row["runs"]]
        std = stats.sample_std(accuracies)
        lines.append(
            f"| {name} | {row['seconds']:.0f} | {sum(accuracies) / len(accuracies):.4f}"
            + ("" if std is None else f" ± {std:.4f}")
            + " |"
        )
    ci = diff["ci95"]
    lines += [
        "",
        f"- speed: cached views {per_step['seconds'] / cached['seconds']:.2f}x the "
        "per-step teacher (target >= 3x)",
        f"- accuracy, views minus per-step: {100 * diff['mean']:+.2f} points"
        + ("" if ci is None else f", 95% CI [{100 * ci[0]:+.2f}, {100 * ci[1]:+.2f}]"),
        f"- teacher pass: {rate:.0f} examples/s, "
        + common.gflops_sentence(flops, gflops, matmul),
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    files.write_text(os.path.join(FLAGS.workdir, "views.md"), text)
    files.write_json(
        os.path.join(FLAGS.workdir, "views.json"),
        {
            "rows": rows,
            "difference": diff,
            "teacher_gflops": gflops,
            "numpy_matmul_gflops": matmul,
            "teacher_examples_per_second": rate,
            "teacher_flops_per_example": flops,
        },
    )


if __name__ == "__main__":
    app.run(main)
