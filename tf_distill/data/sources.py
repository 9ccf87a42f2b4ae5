"""Data sources: the splits a run trains, validates and tests on (data/batches.py makes
the tf.data pipelines).

Every source returns the same `Splits`: uint8 images of shape (n, height, width,
channels) with integer labels, split into train / validation / test. The small
sources (digits, IDX) hold arrays in memory; image folders, TFRecord files and
TensorFlow Datasets stream from their files (file_sources.py, tfds_source.py),
whatever their size. The validation split is
carved from the training data with a fixed seed (`config.split_seed`; a streamed
source's by a hash of each image's path or record) and is what early stopping
watches; the test split is read only for the final evaluation.

Pixels stay raw (uint8) all the way into the model, whose first layer rescales them:
the exported SavedModel then takes exactly what a client has, with no preprocessing
to repeat outside the graph.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from tf_distill.data import file_sources, idx, tfds_source
from tf_distill.data.splits import Splits, check_labels

CLASS_NAMES = {
    "mnist": tuple("0123456789"),
    "digits": tuple("0123456789"),
    "fashion_mnist": (
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ),
}

# Names handled here; anything else must be a TensorFlow Datasets name.
LOCAL_DATASETS = ("digits", "idx", "image_folder", "tfrecord")


@dataclasses.dataclass(frozen=True)
class DataSpec:
    """Which data set to load and how to split it (the `config.*` keys of that name)."""

    dataset: str = "digits"  # "digits" | "idx" | "image_folder" | a tfds name
    data_dir: str | None = None
    validation_fraction: float = 0.1
    split_seed: int = 0
    image_size: tuple[int, int] = (64, 64)  # image_folder only
    color_mode: str = "rgb"  # image_folder only
    skip_bad_files: bool = False  # image_folder, tfrecord: skip unreadable images
    train_files: str | None = None  # tfrecord: globs of TFRecord files
    validation_files: str | None = None
    test_files: str | None = None
    image_feature: str = "image"  # tfrecord: the features of each record
    label_feature: str = "label"


def load(spec: DataSpec) -> Splits:
    """Loads the data set that `config.dataset` / `config.data_dir` name.

    A `config.data_dir` holding the four IDX gzip files is read as IDX whatever
    `config.dataset` says, so the mnist and fashion_mnist configs run offline.

    Raises:
        ValueError: unknown data set name, or malformed data.
        FileNotFoundError: a named folder or file does not exist.
    """
    name, data_dir = spec.dataset, spec.data_dir
    if data_dir is not None and not os.path.isdir(data_dir):
        raise FileNotFoundError(f"config.data_dir {data_dir!r} is not a folder")
    if data_dir is not None and (name == "idx" or idx.has_files(data_dir)):
        x_train, y_train, x_test, y_test = idx.load_folder(data_dir)
        scale, source = 255.0, f"idx:{os.path.abspath(data_dir)}"
    elif name == "idx":
        raise ValueError(
            "config.dataset='idx' needs config.data_dir: the folder "
            f"holding {', '.join(idx.FILES.values())}"
        )
    elif name == "image_folder":
        return file_sources.load_image_folder(spec)
    elif name == "tfrecord":
        return file_sources.load_tfrecord(spec)
    elif name == "digits":
        if data_dir is not None:
            raise ValueError(
                f"config.dataset='digits' reads scikit-learn's bundled digits, so "
                f"config.data_dir={data_dir!r} would be ignored: set "
                "config.dataset='image_folder' for a folder of class folders, or "
                "drop config.data_dir"
            )
        x_train, y_train, x_test, y_test = _load_digits(spec.split_seed)
        scale, source = 16.0, "sklearn.datasets.load_digits"
    else:
        return tfds_source.load(spec, local=LOCAL_DATASETS)

    _check_splits(x_train, y_train, x_test, y_test, source)
    num_classes = int(max(y_train.max(), y_test.max())) + 1
    class_names = CLASS_NAMES.get(name)
    if class_names:
        num_classes = len(class_names)
    else:
        class_names = tuple(str(i) for i in range(num_classes))
    check_labels(y_train, y_test, num_classes, source=source)
    x_train, y_train, x_val, y_val = _carve_validation(
        x_train, y_train, spec.validation_fraction, spec.split_seed
    )
    return Splits(
        x_train,
        y_train,
        x_val,
        y_val,
        x_test,
        y_test,
        num_classes=num_classes,
        input_scale=scale,
        class_names=class_names,
        source=source,
    )


def _check_splits(x_train, y_train, x_test, y_test, source: str) -> None:
    """Both splits hold images, of one shape: caught here, not after the teacher
    has trained (the test split is first read at its end)."""
    for split, y in (("training", y_train), ("test", y_test)):
        if not len(y):
            raise ValueError(f"{source}: the {split} split holds no images")
    if x_train.shape[1:] != x_test.shape[1:]:
        raise ValueError(
            f"{source}: the test images are {'x'.join(map(str, x_test.shape[1:]))} "
            f"but the training images {'x'.join(map(str, x_train.shape[1:]))}; "
            "both splits must hold images of one size"
        )


def _carve_validation(x, y, fraction, seed):
    """Splits off `fraction` of (x, y) as validation, the same way every run."""
    n_val = int(round(len(y) * fraction))
    if not 0 < n_val < len(y):
        raise ValueError(
            f"config.validation_fraction={fraction} leaves {n_val} validation "
            f"examples out of {len(y)}; choose a fraction that keeps both sides"
        )
    order = np.random.default_rng(seed).permutation(len(y))
    val, train = order[:n_val], order[n_val:]
    return x[train], y[train], x[val], y[val]


def _load_digits(split_seed):
    """scikit-learn's bundled 1797 8x8 digits (values 0..16), 80/20 train/test."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = digits.images.astype(np.uint8)[..., None]  # (1797, 8, 8, 1), 0..16
    y = digits.target.astype(np.int32)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=0.2, random_state=split_seed, stratify=y
    )
    return x_train, y_train, x_test, y_test
