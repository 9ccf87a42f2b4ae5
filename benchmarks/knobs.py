"""The measurements behind tf_distill's speed defaults, in one run.

    python benchmarks/knobs.py --teacher=/path/to/mnist_cnn/teacher/model.keras

With a trained MNIST CNN teacher (e.g. from `python benchmarks/speed.py
--workdir=DIR`, at DIR/teacher/model.keras; without --teacher a 1-epoch teacher is
trained here), it times on the real MNIST training images:

  * the teacher's caching pass at batch 256 and 1024, in float32 and as a bfloat16
    copy, with and without XLA (config.distill.teacher_batch_size / teacher_dtype);
  * one epoch of the student alone with steps_per_execution 1 and 16.

Each figure is the best of --repeats timings (the machine is shared: the best is
the least disturbed). Results for this machine are in benchmarks/README.md.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from absl import app, flags, logging  # noqa: E402

flags.DEFINE_string("teacher", None, "A trained MNIST CNN teacher (.keras).")
flags.DEFINE_integer("examples", 12000, "Training images in each timed pass.")
flags.DEFINE_integer("repeats", 2, "Timings per setting; the best is reported.")
FLAGS = flags.FLAGS


def best_of(fn, repeats):
    fn()  # trace and warm up outside the clock
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main(argv):
    del argv
    import keras

    from configs import mnist_cnn
    from tf_distill import experiment
    from tf_distill.data import batches
    from tf_distill.models import loading
    from tf_distill.tasks.classifier import settings as config_lib

    logging.set_verbosity(logging.WARNING)
    config = mnist_cnn.get_config()
    config.name = "knobs"
    workdir = tempfile.mkdtemp(prefix="tf_distill_knobs_")
    teacher_path = FLAGS.teacher
    if teacher_path is None:
        config.teacher.epochs = 1
        experiment.run(
            config,
            workdir=workdir,
            mode="teacher",
            tensorboard_dir=os.path.join(workdir, "tb"),
        )
        teacher_path = os.path.join(workdir, "teacher", "model.keras")
    teacher = keras.models.load_model(teacher_path)
    x = config_lib.load_data(config).x_train[: FLAGS.examples]

    print(f"teacher caching pass over {len(x)} MNIST images (best of {FLAGS.repeats}):")
    for dtype in ("float32", "bfloat16"):
        model = loading.teacher_for_inference(teacher, dtype)
        for jit in (False, True):
            model.compile(jit_compile=jit)
            for batch in (256, 1024):
                ds = batches.pipeline(x, batch_size=batch)
                seconds = best_of(
                    lambda m=model, d=ds: m.predict(d, verbose=0), FLAGS.repeats
                )
                print(
                    f"  {dtype:<9} XLA {'on ' if jit else 'off'} batch {batch:>4}: "
                    f"{len(x) / seconds:>7,.0f} examples/s"
                )

    print("student alone, one epoch of 54,000 images, batch 64:")
    for steps in (1, 16):
        config.steps_per_execution = steps
        config.student.epochs = 1
        metrics = experiment.run(
            config,
            workdir=workdir,
            mode="student",
            tensorboard_dir=os.path.join(workdir, "tb"),
        )["student"]
        print(
            f"  steps_per_execution {steps:>2}: "
            f"{metrics['examples_per_second']:>7,.0f} examples/s"
        )


if __name__ == "__main__":
    app.run(main)
