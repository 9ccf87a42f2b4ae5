"""What shipping costs and keeps: every exported artefact of teacher and student.

    python benchmarks/export.py --config=configs/mnist_mlp.py --epochs=2 \
        --workdir=/tmp/export_mnist_mlp
    python benchmarks/export.py --workdir=/tmp/export_default   # digits, offline

Trains teacher, student alone and distilled student with `--model=all` unless
`--workdir` already holds them (then they are reused as they are), then, for the
teacher and the distilled student, in one process:

  - size on disk of the SavedModel and of the float32 and int8 LiteRT files;
  - test accuracy of each artefact, run as a client runs it
    (tf_distill.shipping.clients);
  - single-example latency: the SavedModel's serving_default signature in the
    TensorFlow runtime, and each .tflite file in the LiteRT interpreter; the
    median of --runs calls on one test image, after warm-up calls;
  - the size of Keras 3's own `model.export()` of the same model, beside ours.

It prints one table and the ratios teacher / student, and float32 / int8. Results
for this machine are recorded in benchmarks/README.md.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time

import common  # benchmarks/common.py, beside this script
from absl import app, flags, logging

flags.DEFINE_string(
    "config", os.path.join(common.REPO, "configs", "default.py"), "Config file."
)
flags.DEFINE_string("workdir", None, "Run folder; trained models there are reused.")
flags.DEFINE_integer("epochs", None, "If set, the epochs of all three models.")
flags.DEFINE_integer("runs", 500, "Timed single-example calls per artefact.")
flags.DEFINE_string("json_out", None, "Also write the results as JSON here.")
FLAGS = flags.FLAGS

MODELS = ("teacher", "distilling")
WARMUP = 20


def latency_ms(classifier, image, runs):
    """Median wall time in ms of one call on one image (batch of 1)."""
    for _ in range(WARMUP):
        classifier.logits(image)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        classifier.logits(image)
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def main(argv):
    del argv
    import keras
    import tensorflow as tf

    from tf_distill import experiment
    from tf_distill.models import measure
    from tf_distill.outputs import files
    from tf_distill.outputs.rundir import RunDir
    from tf_distill.shipping import clients
    from tf_distill.tasks.classifier import settings as config_lib

    config = common.load_config(FLAGS.config, name_prefix="export")
    config.export.tflite = True
    if FLAGS.epochs:
        config.teacher.epochs = config.student.epochs = FLAGS.epochs
        config.distill.epochs = FLAGS.epochs
    workdir = FLAGS.workdir or os.path.join("runs", config.name)
    run_dir = RunDir(workdir, os.path.join("tensorboard", config.name))
    try:
        found = [key.name for key in run_dir.trained()]
    except FileNotFoundError:
        found = []
    start = time.perf_counter()
    if not set(MODELS) <= set(found):
        logging.info("Training teacher, student and distilled student in %s", workdir)
        experiment.run(config, workdir=workdir, mode="all")
    elif any(not clients.artefacts(run_dir.model(m)) for m in MODELS):
        experiment.run(config, workdir=workdir, mode="export")
    prepared_seconds = time.perf_counter() - start

    splits = config_lib.load_data(config)
    image = splits.x_test[:1]
    rows = {}
    start = time.perf_counter()
    for name in MODELS:
        metrics = files.read_json(os.path.join(workdir, name, "metrics.json"))
        for kind, path in clients.artefacts(run_dir.model(name)).items():
            classifier = clients.open_artefact(path)
            measured = measure.classification_metrics(
                classifier.logits(splits.x_test), splits.y_test
            )
            rows[(name, kind)] = {
                "bytes": files.size_bytes(path),
                "test_accuracy": measured.accuracy,
                "keras_test_accuracy": metrics["test_accuracy"],
                "latency_ms": latency_ms(classifier, image, FLAGS.runs),
                "params": metrics["params"],
            }
    # The competitor: Keras 3's own export of the same model, size on disk only
    # (its signature takes float32 input, so it is not a drop-in for a client).
    keras_export_bytes = {}
    for name in MODELS:
        model = keras.models.load_model(os.path.join(workdir, name, "model.keras"))
        with tempfile.TemporaryDirectory() as tmp:
            model.export(os.path.join(tmp, "sm"), verbose=False)
            keras_export_bytes[name] = files.size_bytes(os.path.join(tmp, "sm"))
    measure_seconds = time.perf_counter() - start

    print(
        f"{config.name}: {splits.source}, {len(splits.y_test)} test images; "
        f"TF {tf.__version__}; median of {FLAGS.runs} single-image calls"
    )
    print(
        f"{'model':<11}{'artefact':<16}{'params':>10}{'KiB':>10}"
        f"{'test acc':>10}{'keras acc':>11}{'latency ms':>12}"
    )
    for (name, kind), r in rows.items():
        print(
            f"{name:<11}{kind:<16}{r['params']:>10,}{r['bytes'] / 1024:>10,.1f}"
            f"{r['test_accuracy']:>10.4f}{r['keras_test_accuracy']:>11.4f}"
            f"{r['latency_ms']:>12.3f}"
        )
    for name in MODELS:
        ours = rows[(name, "saved_model")]["bytes"]
        print(
            f"keras model.export() SavedModel of {name}: "
            f"{keras_export_bytes[name] / 1024:,.1f} KiB, "
            f"{keras_export_bytes[name] / ours:.2f}x ours"
        )
    print("ratios (teacher / distilled student):")
    for kind in ("saved_model", "tflite_float32", "tflite_int8"):
        t, s = rows.get(("teacher", kind)), rows.get(("distilling", kind))
        if t and s:
            print(
                f"  {kind:<16} size {t['bytes'] / s['bytes']:6.1f}x   "
                f"latency {t['latency_ms'] / s['latency_ms']:6.1f}x"
            )
    print("ratios (float32 / int8 LiteRT):")
    for name in MODELS:
        f32, i8 = rows.get((name, "tflite_float32")), rows.get((name, "tflite_int8"))
        if f32 and i8:
            print(
                f"  {name:<16} size {f32['bytes'] / i8['bytes']:6.1f}x   "
                f"latency {f32['latency_ms'] / i8['latency_ms']:6.1f}x   "
                f"accuracy {100 * (i8['test_accuracy'] - f32['test_accuracy']):+.2f} "
                "points"
            )
    print(
        f"training/export {prepared_seconds:.1f} s, measuring {measure_seconds:.1f} s"
    )
    if FLAGS.json_out:
        results = {f"{name}/{kind}": r for (name, kind), r in rows.items()}
        for name, size in keras_export_bytes.items():
            results[f"{name}/keras_model_export"] = {"bytes": size}
        files.write_json(FLAGS.json_out, results)


if __name__ == "__main__":
    app.run(main)
