"""TensorFlow Datasets sources: a data set already prepared on this machine."""

from __future__ import annotations

import difflib

import numpy as np


def load(name: str, data_dir: str | None, *, local: tuple[str, ...]):
    """A TensorFlow Datasets data set that is already prepared on this machine.

    Never downloads: offline, tfds retries a download for minutes before failing,
    so an unprepared data set is an immediate error naming the offline routes.
    """
    import tensorflow_datasets as tfds

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
    arrays = []
    for split in ("train", "test"):
        ds = builder.as_dataset(split=split, batch_size=-1, as_supervised=True)
        images, labels = tfds.as_numpy(ds)
        arrays += [images.astype(np.uint8), labels.astype(np.int32)]
    label = builder.info.features[builder.info.supervised_keys[1]]
    names = tuple(getattr(label, "names", None) or ())
    return (*arrays, names)
