"""Reading TFRecord files once before any training (data/records.py streams them
afterwards): how many records each file holds, every record's label, and the
records whose image cannot be decoded, named or skipped."""

from __future__ import annotations

import glob
import time

import numpy as np
import tensorflow as tf
from absl import logging

from tf_distill.data.records import RecordImages
from tf_distill.training import progress


def load_split(pattern: str, *, key: str, **options) -> tuple[RecordImages, np.ndarray]:
    """The records of the files `pattern` (a glob; `key` is its config key)
    matches, in sorted file order, and their labels (load_files).

    Raises:
        FileNotFoundError: no file matches.
    """
    files = tuple(sorted(glob.glob(pattern)))
    if not files:
        raise FileNotFoundError(f"config.data.{key}={pattern!r} matches no file")
    return load_files(files, what=f"config.data.{key}={pattern!r}", **options)


def load_files(
    files: tuple[str, ...],
    *,
    image_shape,
    image_feature: str,
    label_feature: str,
    skip_bad: bool,
    what: str,
) -> tuple[RecordImages, np.ndarray]:
    """The records of `files` and their labels, after reading each once.

    Raises:
        ValueError: a file that is not TFRecord, no records (`what` names them),
            records without the features, or images that cannot be decoded
            (named, with their count) unless `skip_bad`.
    """
    start = time.perf_counter()
    starts = _starts(files)
    if starts[-1] == 0:
        raise ValueError(f"{what}: the files hold no records")
    _check_features(files, starts, image_feature, label_feature)
    labels, good = _scan(files, starts, image_shape[-1], image_feature, label_feature)
    logging.info(
        "Read %d records of %s in %.1f s",
        len(labels),
        what,
        time.perf_counter() - start,
    )
    records = RecordImages(
        files, starts, np.flatnonzero(good), tuple(image_shape), image_feature
    )
    bad = np.flatnonzero(~good)
    if len(bad):
        named = RecordImages(files, starts, bad, tuple(image_shape), image_feature)
        _refuse_or_skip(named, skip_bad and len(bad) < len(good))
    return records, labels[records.ids].astype(np.int32)


def _starts(files) -> np.ndarray:
    counts = []
    for path in files:
        try:
            n = tf.data.TFRecordDataset(path).reduce(np.int64(0), lambda n, _: n + 1)
        except tf.errors.OpError as e:
            raise ValueError(
                f"{path} is not a readable TFRecord file ({_first_line(e)})"
            ) from None
        counts.append(int(n))
    return np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)


def _check_features(files, starts, image_feature, label_feature) -> None:
    """The first record holds both features, as bytes and an integer."""
    first = int(np.searchsorted(starts, 0, side="right") - 1)
    record = next(iter(tf.data.TFRecordDataset(files[first]).take(1)))
    example = tf.train.Example()
    try:
        example.ParseFromString(record.numpy())
    except Exception:
        raise ValueError(
            f"{files[first]}: its records are not tf.train.Example protos"
        ) from None
    features = example.features.feature
    found = {name: f.WhichOneof("kind") for name, f in features.items()}
    for name, kind, key in (
        (image_feature, "bytes_list", "image_feature"),
        (label_feature, "int64_list", "label_feature"),
    ):
        if found.get(name) != kind:
            held = ", ".join(f"{n} ({k})" for n, k in sorted(found.items()))
            raise ValueError(
                f"{files[first]}: no {kind} feature {name!r} (config.data.{key}); "
                f"its records hold {held or 'no features'}"
            )


def _scan(files, starts, channels, image_feature, label_feature):
    """(labels, good) over every record id: a record is good when its image
    decodes; a record that fails is dropped by `ignore_errors` and stays bad."""
    features = {
        image_feature: tf.io.FixedLenFeature([], tf.string),
        label_feature: tf.io.FixedLenFeature([], tf.int64),
    }

    def check(record_id, record):
        parsed = tf.io.parse_single_example(record, features)
        image = tf.io.decode_image(
            parsed[image_feature], channels=channels, expand_animations=False
        )
        # The decoded size: known only by decoding, so the decode is not skipped.
        return record_id, parsed[label_feature], tf.size(image)

    ds = tf.data.Dataset.from_tensor_slices((list(files), starts[:-1])).flat_map(
        lambda path, start: tf.data.TFRecordDataset(path).enumerate(start)
    )
    ds = ds.map(check, num_parallel_calls=tf.data.AUTOTUNE).ignore_errors()
    labels = np.zeros(int(starts[-1]), np.int64)
    good = np.zeros(int(starts[-1]), bool)
    with progress.Pass("Reading records", len(labels), unit="records") as shown:
        for ids, values, _ in ds.batch(1024).as_numpy_iterator():
            labels[ids], good[ids] = values, True
            shown.update(len(ids))
    return labels, good


def _refuse_or_skip(bad: RecordImages, skip: bool) -> None:
    """Refuses the bad records in one line, or (`skip`, and some records are
    good: skipping all would leave nothing to train on) warns and goes on."""
    names = bad.keys()
    if not skip:
        shown = ", ".join(names[:3]) + (" ..." if len(names) > 3 else "")
        every = len(bad) == bad.starts[-1]
        raise ValueError(
            f"{len(names)} record(s) cannot be read: {shown} ({_reason(bad)}); "
            + (
                "none of the records can be: check config.data.image_feature and "
                "the files' image encoding"
                if every
                else "remove them, or set config.data.skip_bad_files=True to train "
                "without them"
            )
        )
    logging.warning(
        "Skipping %d record(s) that cannot be read: %s%s",
        len(names),
        ", ".join(names[:10]),
        " ..." if len(names) > 10 else "",
    )


def _reason(bad: RecordImages) -> str:
    """Why the first bad record cannot be read, in one line."""
    which = int(np.searchsorted(bad.starts, bad.ids[0], side="right") - 1)
    index = int(bad.ids[0] - bad.starts[which])
    ds = tf.data.TFRecordDataset(bad.files[which]).skip(index).take(1)
    try:
        for record in ds:
            bad.decode_batch(record[None])
    except tf.errors.OpError as e:
        return _first_line(e)
    return "cannot be decoded"


def _first_line(e: tf.errors.OpError) -> str:
    return e.message.splitlines()[0][:200] if e.message else type(e).__name__
