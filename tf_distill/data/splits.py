"""What every source returns: a data set split three ways, and the checks and
carving every source shares."""

from __future__ import annotations

import dataclasses

import numpy as np

from tf_distill.data import image_files


@dataclasses.dataclass(frozen=True)
class Splits:
    """A data set split three ways, as raw uint8 images and int labels; the
    images are arrays, or streamed from their files (image_files.ImageFiles,
    records.RecordImages)."""

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


def hashed_validation(images, labels, keys, fraction):
    """Splits off about `fraction` of streamed training images as validation, by
    a hash of each one's key (its path in the folder, its record's file and
    index: image_files.hashed_split)."""
    val = image_files.hashed_split(keys, fraction)
    if not 0 < val.sum() < len(val):
        raise ValueError(
            f"config.validation_fraction={fraction} leaves {int(val.sum())} "
            f"validation examples out of {len(val)}; choose a fraction that keeps "
            "both sides"
        )
    return (images[~val], labels[~val]), (images[val], labels[val])
