"""TensorFlow Datasets sources: a data set already prepared on this machine, its
TFRecord files streamed like a user's own (data/records.py)."""

from __future__ import annotations

import difflib
import os

from tf_distill.data import record_loading
from tf_distill.data.image_folder import COLOR_MODES
from tf_distill.data.splits import Splits, check_labels, hashed_validation


def load(spec, *, local: tuple[str, ...]) -> Splits:
    """A TensorFlow Datasets data set that is already prepared on this machine,
    streamed from its files.

    Never downloads: offline, tfds retries a download for minutes before failing,
    so an unprepared data set is an immediate error naming the offline routes.
    """
    import tensorflow_datasets as tfds

    name, data_dir = spec.dataset, spec.data_dir
    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except tfds.core.registered.DatasetNotFoundError:
        close = difflib.get_close_matches(name, tfds.list_builders(), n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise ValueError(
            f"Unknown config.dataset {name!r}. Valid: {', '.join(local)}, "
            f"or a TensorFlow Datasets name (tfds.list_builders()).{hint}"
        ) from None
    if not builder.is_prepared():
        raise FileNotFoundError(
            f"TensorFlow Datasets {name!r} is not prepared under {builder.data_dir} "
            "and tf-distill does not download data. Point config.data_dir at a "
            "folder of the four IDX gzip files (MNIST layout), or at a tfds data_dir "
            f"where tfds.builder({name!r}).download_and_prepare() has been run."
        )
    return _splits(builder, spec)


def _splits(builder, spec) -> Splits:
    """The prepared data set's TFRecord files, streamed (data/records.py); about
    config.validation_fraction of its training records validate, picked by a
    hash of (file name, index)."""
    info, name = builder.info, spec.dataset
    if "tfrecord" not in str(info.file_format).lower():
        raise ValueError(
            f"TensorFlow Datasets {name!r} is stored as {info.file_format}; "
            "tf-distill streams TFRecord files (prepare it with "
            "file_format='tfrecord')"
        )
    for split in ("train", "test"):
        if split not in info.splits:
            raise ValueError(
                f"TensorFlow Datasets {name!r} has no {split!r} split "
                f"(it has {', '.join(info.splits)})"
            )
    image_key, label_key = info.supervised_keys
    shape = tuple(info.features[image_key].shape)
    if None in shape:  # images of any size: resized as config.image_size says
        shape = (*spec.image_size, shape[-1] or COLOR_MODES[spec.color_mode])
    loaded = {}
    for split in ("train", "test"):
        paths = [
            os.path.join(builder.data_dir, f) for f in info.splits[split].filenames
        ]
        loaded[split] = record_loading.load_files(
            tuple(paths),
            image_shape=shape,
            image_feature=image_key,
            label_feature=label_key,
            skip_bad=spec.skip_bad_files,
            what=f"TensorFlow Datasets {name!r} ({split})",
        )
    names = tuple(getattr(info.features[label_key], "names", None) or ())
    (x_train, y_train), test = loaded["train"], loaded["test"]
    num_classes = len(names) or int(max(y_train.max(), test[1].max())) + 1
    source = f"tfds:{name}"
    check_labels(y_train, test[1], num_classes, source=source)
    train, val = hashed_validation(
        x_train, y_train, x_train.keys(), spec.validation_fraction
    )
    return Splits(
        *train,
        *val,
        *test,
        num_classes=num_classes,
        input_scale=255.0,
        class_names=names or tuple(str(i) for i in range(num_classes)),
        source=source,
    )
