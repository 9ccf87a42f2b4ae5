"""Data sources: the splits a run trains, validates and tests on (data/batches.py makes
the tf.data pipelines).

Every source returns the same `Splits`: uint8 images of shape (n, height, width,
channels) with integer labels, split into train / validation / test. The small
sources (digits, IDX, tfds) hold arrays in memory; an image folder streams its
files (image_files.ImageFiles), whatever its size. The validation split is carved
from the training data with a fixed seed (`config.split_seed`; an image folder's by
a hash of each file's path) and is what early stopping watches; the test split is
read only for the final evaluation.

Pixels stay raw (uint8) all the way into the model, whose first layer rescales them:
the exported SavedModel then takes exactly what a client has, with no preprocessing
to repeat outside the graph.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from tf_distill.data import idx, image_files, image_folder, tfds_source

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
LOCAL_DATASETS = ("digits", "idx", "image_folder")


@dataclasses.dataclass(frozen=True)
class Splits:
    """A data set split three ways, as raw uint8 images and int labels; the
    images are arrays, or ImageFiles for an image folder."""

    x_train: np.ndarray  # (n, height, width, channels) uint8
    y_train: np.ndarray  # (n,) int32
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    input_scale: float  # the largest raw value: 16 for digits, 255 for images
    class_names: tuple[str, ...]
    source: str  # where the data came from, for logs and metrics.json
    # Training images whose labels config.labeled_fraction withheld (transfer.py).
    x_unlabeled: np.ndarray | None = None

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    def sizes(self) -> dict[str, int]:
        sizes = {
            "train": len(self.y_train),
            "validation": len(self.y_val),
            "test": len(self.y_test),
        }
        if self.x_unlabeled is not None:
            sizes["train_unlabeled"] = len(self.x_unlabeled)
        return sizes


@dataclasses.dataclass(frozen=True)
class DataSpec:
    """Which data set to load and how to split it (the `config.*` keys of that name)."""

    dataset: str = "digits"  # "digits" | "idx" | "image_folder" | a tfds name
    data_dir: str | None = None
    validation_fraction: float = 0.1
    split_seed: int = 0
    image_size: tuple[int, int] = (64, 64)  # image_folder only
    color_mode: str = "rgb"  # image_folder only
    skip_bad_files: bool = False  # image_folder only: skip unreadable files


def load(spec: DataSpec) -> Splits:
    """Loads the data set that `config.dataset` / `config.data_dir` name.

    A `config.data_dir` holding the four IDX gzip files is read as IDX whatever
    `config.dataset` says, so the mnist and fashion_mnist configs run offline.

    Raises:
        ValueError: unknown data set name, or malformed data.
        FileNotFoundError: a named folder or file does not exist.
    """
    name, data_dir = spec.dataset, spec.data_dir
    names = ()  # class names, when the source has them
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
        return _load_image_folder(spec)
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
        x_train, y_train, x_test, y_test, names = tfds_source.load(
            name, data_dir, local=LOCAL_DATASETS
        )
        scale, source = 255.0, f"tfds:{name}"

    _check_splits(x_train, y_train, x_test, y_test, source)
    num_classes = int(max(y_train.max(), y_test.max())) + 1
    class_names = names or CLASS_NAMES.get(name)  # a tfds ClassLabel's, or known
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


def check_labels(y_train, y_test, num_classes: int, *, source: str) -> None:
    """Labels must be 0..num_classes-1, and every class must occur in both splits.

    A label out of range would silently add classes (a label 200 among ten digits
    made a 201-class model); a class missing from one split makes its accuracy
    meaningless.

    Raises:
        ValueError: naming the source, the split and the labels or classes.
    """
    if num_classes < 2:
        raise ValueError(f"{source}: {num_classes} class; a classifier needs >= 2")
    for split, y in (("training", y_train), ("test", y_test)):
        outside = np.unique(y[(y < 0) | (y >= num_classes)])
        if len(outside):
            first = int(np.flatnonzero((y < 0) | (y >= num_classes))[0])
            raise ValueError(
                f"{source}: {split} labels {outside.tolist()[:5]} are outside "
                f"0..{num_classes - 1} (the first at example {first})"
            )
        missing = sorted(set(range(num_classes)) - set(np.unique(y).tolist()))
        if missing:
            shown = ", ".join(map(str, missing[:10])) + (" ..." * (len(missing) > 10))
            raise ValueError(
                f"{source}: class(es) {shown} of 0..{num_classes - 1} never occur in "
                f"the {split} labels (largest label {int(y.max())}): a mislabelled "
                "file, or the wrong one"
            )


def _load_image_folder(spec):
    """`config.data_dir` as train/ and val/ (and test/) folders of class folders."""
    if spec.data_dir is None:
        raise ValueError(
            "config.dataset='image_folder' needs config.data_dir: the folder "
            "holding train/ and val/ (and optionally test/) class sub-folders"
        )
    train, val, test, names = image_folder.load(
        spec.data_dir,
        image_size=spec.image_size,
        color_mode=spec.color_mode,
        skip_bad_files=spec.skip_bad_files,
    )
    source = f"image_folder:{os.path.abspath(spec.data_dir)}"
    check_labels(train[1], test[1], len(names), source=source)
    if val is None:  # no test/ folder: val/ is held out for the final test
        train, val = _hashed_validation(
            *train, spec.validation_fraction, os.path.join(spec.data_dir, "train")
        )
    return Splits(
        *train,
        *val,
        *test,
        num_classes=len(names),
        input_scale=255.0,
        class_names=names,
        source=source,
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


def _hashed_validation(files, labels, fraction, folder):
    """Splits off about `fraction` of an image folder's training files as
    validation, by a hash of each file's path under `folder`
    (image_files.hashed_split)."""
    relative = [os.path.relpath(str(p), folder) for p in files.paths]
    val = image_files.hashed_split(relative, fraction)
    if not 0 < val.sum() < len(val):
        raise ValueError(
            f"config.validation_fraction={fraction} leaves {int(val.sum())} "
            f"validation examples out of {len(val)}; choose a fraction that keeps "
            "both sides"
        )
    return (files[~val], labels[~val]), (files[val], labels[val])


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
