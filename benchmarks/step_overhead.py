"""What a distillation step costs over a student-alone step, without the input
pipeline: the same student, one fixed batch repeated, one epoch of each in turn.

    python benchmarks/step_overhead.py --repeats=8

On the MNIST CNN student of configs/mnist_cnn.py (Conv 16/32, batch 64): Keras'
compiled student (loss + accuracy) against the Distiller on cached logits (KD loss,
its three loss trackers, accuracy and agreement). Prints each one's milliseconds
per step in every round and the ratio of the medians (the first round, which
traces, left out). Results: benchmarks/README.md ("speed.py").
"""

from __future__ import annotations

import os
import statistics
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from absl import app, flags  # noqa: E402

flags.DEFINE_integer("repeats", 8, "Rounds; each times one epoch of each.")
flags.DEFINE_integer("steps", 844, "Steps per epoch (MNIST's 54,000 at batch 64).")
FLAGS = flags.FLAGS


def build(kind, splits, spec):
    """(compiled model, a dataset repeating one batch) for "alone" or "distiller"."""
    import keras
    import numpy as np
    import tensorflow as tf

    from tf_distill import Distiller
    from tf_distill.data import batches
    from tf_distill.models import architectures

    keras.utils.set_random_seed(0)
    student = architectures.build_for(spec, splits, name="student")
    x = splits.x_train[:64].astype(np.float32)
    y = splits.y_train[:64]
    if kind == "alone":
        student.compile(
            keras.optimizers.Adam(1e-3),
            keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
        )
        return student, batches.finish(tf.data.Dataset.from_tensors((x, y)).repeat())
    logits = np.random.default_rng(0).normal(size=(64, 10)).astype(np.float32)
    distiller = Distiller(student=student, teacher=None, temperature=10.0, alpha=0.1)
    distiller.compile(optimizer=keras.optimizers.Adam(1e-3))
    ds = tf.data.Dataset.from_tensors((x, y, logits)).repeat()
    return distiller, batches.finish(ds)


def main(argv):
    del argv
    from configs import mnist_cnn
    from tf_distill.tasks.classifier import settings as config_lib

    config = mnist_cnn.get_config()
    splits = config_lib.load_data(config)
    spec = config_lib.model_spec(config.student)
    built = {kind: build(kind, splits, spec) for kind in ("alone", "distiller")}
    ms = {kind: [] for kind in built}
    for _ in range(FLAGS.repeats):
        for kind, (model, ds) in built.items():
            start = time.perf_counter()
            model.fit(ds, epochs=1, steps_per_epoch=FLAGS.steps, verbose=0)
            ms[kind].append(1000 * (time.perf_counter() - start) / FLAGS.steps)
    for kind, values in ms.items():
        rounds = ", ".join(f"{v:.2f}" for v in values)
        median = statistics.median(values[1:])
        print(f"{kind:<10} ms/step: {rounds}; median {median:.2f}")
    ratio = statistics.median(ms["distiller"][1:]) / statistics.median(ms["alone"][1:])
    print(f"distiller step / student-alone step (medians): {ratio:.3f}")


if __name__ == "__main__":
    app.run(main)
