"""Memory that does not grow with the data: N JPEGs, streamed from an image
folder or from TFRecord files.

    python benchmarks/scale.py --sizes=10000,100000 --workdir=/tmp/scale
    python benchmarks/scale.py --source=tfrecord --sizes=10000,100000

For each N it writes (once; reused when present) N synthetic 224x224 JPEGs in 10
classes (a coloured shape per class on noise) plus N/10 held-out ones, as a
folder of class folders or as 64 TFRecord shards in a shuffled order, then runs
configs/image_folder.py on them without augmentation, so
the teacher's logits are cached: `--model=teacher` (one epoch), `--model=student`
and `--model=distilling` (two epochs each), each as its own process under
/usr/bin/time. It prints per N:

- the peak RSS of each process (the target: the largest N's at most 1.2x the
  smallest's, and under 4 GB);
- the teacher's caching pass in images/s against the decode-only rate of the same
  pipeline and the teacher's compute-bound rate on images already in memory
  (target: >= 0.8x the slower of the two);
- the distilled student's training epoch in images/s against the student alone's
  (target: the distilled epoch at most 1.1x the time of the student alone's).

Writes <workdir>/scale.json and scale.md. The workdir needs about 12 KB of disk
per image.
"""

from __future__ import annotations

import glob
import json
import os
import re
import subprocess
import sys
import time

import common  # benchmarks/common.py: the repository on sys.path
from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_list("sizes", ["10000", "100000"], "Training images per run.")
flags.DEFINE_string("workdir", "/tmp/scale", "Image folders and run directories.")
flags.DEFINE_integer("image_size", 224, "Height and width of the images.")
flags.DEFINE_enum("source", "image_folder", ["image_folder", "tfrecord"], "Data.")

CLASSES = 10
MAIN = os.path.join(common.REPO, "main.py")
CONFIG = os.path.join(common.REPO, "configs", "image_folder.py")


def _image(rng, label: int, size: int) -> bytes:
    """A JPEG: a square of the class's colour and size on noise."""
    import numpy as np
    import tensorflow as tf

    image = rng.integers(0, 90, (size, size, 3), dtype=np.uint8)
    y0, x0 = rng.integers(0, size // 2, 2)
    side = size // 3 + label * size // 60
    image[y0 : y0 + side, x0 : x0 + side, label % 3] = 80 + 17 * label
    return tf.io.encode_jpeg(image, quality=90).numpy()


def write_folder(root: str, n: int, size: int) -> None:
    """N training and N/10 validation JPEGs, unless `root` already holds them."""
    import numpy as np

    marker = os.path.join(root, f".complete_{n}_{size}")
    if os.path.exists(marker):
        return
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    for split, count in (("train", n), ("val", max(CLASSES, n // 10))):
        for i in range(count):
            folder = os.path.join(root, split, f"class_{i % CLASSES}")
            os.makedirs(folder, exist_ok=True)
            with open(os.path.join(folder, f"{i:07d}.jpg"), "wb") as f:
                f.write(_image(rng, i % CLASSES, size))
    open(marker, "w").close()
    print(f"wrote {n} + {n // 10} JPEGs in {time.perf_counter() - start:.0f} s")


def write_records(root: str, n: int, size: int, shards: int = 64) -> None:
    """The same images as TFRecord shards (train-*, test-*), in a shuffled order."""
    import numpy as np
    import tensorflow as tf

    marker = os.path.join(root, f".complete_{n}_{size}")
    if os.path.exists(marker):
        return
    os.makedirs(root, exist_ok=True)
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    for split, count in (("train", n), ("test", max(CLASSES, n // 10))):
        labels = rng.permutation(np.arange(count) % CLASSES)
        parts = min(shards, count)
        for shard, chunk in enumerate(np.array_split(labels, parts)):
            path = os.path.join(root, f"{split}-{shard:05d}-of-{parts:05d}.tfrecord")
            with tf.io.TFRecordWriter(path) as writer:
                for label in chunk:
                    feature = {
                        "image": tf.train.Feature(
                            bytes_list=tf.train.BytesList(
                                value=[_image(rng, int(label), size)]
                            )
                        ),
                        "label": tf.train.Feature(
                            int64_list=tf.train.Int64List(value=[int(label)])
                        ),
                    }
                    example = tf.train.Example(
                        features=tf.train.Features(feature=feature)
                    )
                    writer.write(example.SerializeToString())
    open(marker, "w").close()
    print(f"wrote {n} + {n // 10} records in {time.perf_counter() - start:.0f} s")


def data_flags(data_dir: str) -> list[str]:
    if FLAGS.source == "image_folder":
        return [f"--config.data_dir={data_dir}"]
    return [
        "--config.dataset=tfrecord",
        f"--config.data.train_files={data_dir}/train-*.tfrecord",
        f"--config.data.test_files={data_dir}/test-*.tfrecord",
    ]


def run_mode(mode: str, data_dir: str, workdir: str, size: int) -> dict:
    """One main.py mode under /usr/bin/time -v: its wall time and peak RSS."""
    args = [
        "/usr/bin/time",
        "-v",
        sys.executable,
        MAIN,
        f"--model={mode}",
        f"--config={CONFIG}",
        f"--workdir={workdir}",
        *data_flags(data_dir),
        f"--config.image_size=({size},{size})",
        "--config.teacher.epochs=1",
        "--config.student.epochs=2",
        "--config.early_stopping.patience=0",
        "--config.augment.translate=0",
        "--config.augment.flip=none",
        "--config.augment.color_jitter=0.0",
        "--config.export.tflite=False",
    ]
    start = time.perf_counter()
    proc = subprocess.run(args, capture_output=True, text=True)
    if proc.returncode:
        sys.exit(f"{mode} failed:\n{proc.stderr[-3000:]}")
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr)[1])
    return {"seconds": time.perf_counter() - start, "peak_rss_mb": rss / 1024}


def reference_rates(data_dir: str, teacher_path: str, size: int) -> dict:
    """Images/s of the input pipeline alone (decode, resize) over the training
    files, and of the teacher on images already in memory."""
    import numpy as np
    import tensorflow as tf

    from tf_distill.data import batches
    from tf_distill.data.image_files import ImageFiles
    from tf_distill.models import loading

    RECORD = dict(
        image_shape=(size, size, 3),
        image_feature="image",
        label_feature="label",
        skip_bad=False,
        what="decode-only sample",
    )

    if FLAGS.source == "tfrecord":
        from tf_distill.data import record_loading

        paths = sorted(glob.glob(os.path.join(data_dir, "train-*.tfrecord")))
        per_file = max(1, len(record_loading.load_files(paths[:1], **RECORD)[0]))
        files = record_loading.load_files(
            tuple(paths[: -(-4096 // per_file)]), **RECORD
        )[0]
    else:
        paths = sorted(
            os.path.join(r, f)
            for r, _, fs in os.walk(os.path.join(data_dir, "train"))
            for f in fs
        )
        files = ImageFiles(np.asarray(paths[:4096]), (size, size, 3))
    start = time.perf_counter()
    for _ in batches.pipeline(files, batch_size=256):
        pass
    decode = len(files) / (time.perf_counter() - start)
    teacher = loading.load(teacher_path)
    images = tf.constant(
        np.random.default_rng(0).integers(0, 255, (256, size, size, 3)), tf.float32
    )
    predict = tf.function(lambda x: teacher(x, training=False))
    predict(images)  # trace
    start, done = time.perf_counter(), 0
    while time.perf_counter() - start < 20:
        predict(images).numpy()
        done += 256
    return {
        "decode_only": decode,
        "compute_bound": done / (time.perf_counter() - start),
    }


def main(argv):
    del argv
    rows = []
    for n in (int(s) for s in FLAGS.sizes):
        if FLAGS.source == "tfrecord":
            data_dir = os.path.join(FLAGS.workdir, f"records_{n}_{FLAGS.image_size}")
            write_records(data_dir, n, FLAGS.image_size)
        else:
            data_dir = os.path.join(FLAGS.workdir, f"images_{n}")
            write_folder(data_dir, n, FLAGS.image_size)
        run = os.path.join(FLAGS.workdir, f"run_{FLAGS.source}_{n}_{FLAGS.image_size}")
        row = {"images": n}
        for mode in ("teacher", "student", "distilling"):
            row[mode] = run_mode(mode, data_dir, run, FLAGS.image_size)
            with open(os.path.join(run, mode, "metrics.json")) as f:
                row[mode]["metrics"] = {
                    k: v
                    for k, v in json.load(f).items()
                    if k
                    in ("examples_per_second", "teacher_pass_seconds", "epochs_run")
                }
        teacher_path = os.path.join(run, "teacher", "model.keras")
        row["rates"] = reference_rates(data_dir, teacher_path, FLAGS.image_size)
        pass_seconds = row["distilling"]["metrics"]["teacher_pass_seconds"]
        row["rates"]["teacher_pass"] = n / pass_seconds if pass_seconds else None
        rows.append(row)
        print(json.dumps(row, indent=1), flush=True)
    name = "scale" if FLAGS.source == "image_folder" else f"scale_{FLAGS.source}"
    with open(os.path.join(FLAGS.workdir, f"{name}.json"), "w") as f:
        json.dump(rows, f, indent=1)
    table = _markdown(rows)
    with open(os.path.join(FLAGS.workdir, f"{name}.md"), "w") as f:
        f.write(table)
    print(table)


def _markdown(rows) -> str:
    lines = [
        "| images | peak RSS teacher / student / distilling (MB) | teacher pass "
        "img/s | decode-only img/s | teacher in memory img/s | pass / slower | "
        "distilled / alone epoch img/s |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        rss = " / ".join(
            f"{r[m]['peak_rss_mb']:.0f}" for m in ("teacher", "student", "distilling")
        )
        rates = r["rates"]
        slower = min(rates["decode_only"], rates["compute_bound"])
        passed = rates["teacher_pass"]
        alone = r["student"]["metrics"]["examples_per_second"]
        distilled = r["distilling"]["metrics"]["examples_per_second"]
        lines.append(
            f"| {r['images']} | {rss} | {passed or float('nan'):.0f} | "
            f"{rates['decode_only']:.0f} | {rates['compute_bound']:.0f} | "
            f"{(passed or 0) / slower:.2f} | {distilled:.0f} / {alone:.0f} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    app.run(main)
