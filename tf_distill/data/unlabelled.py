"""Few labels, many images: a labelled fraction and unlabelled transfer data.

Hinton, Vinyals & Dean (2015, sec. 3-4) distil on a *transfer set*: the teacher
labels images, so they need no labels of their own, and the student learns from
more examples than the labelled set holds (the idea behind "noisy student" and
semi-supervised distillation). Two config keys make that case:

- `config.labeled_fraction = f < 1`: the teacher and the student alone see the
  labels of a stratified fraction f of the training split (chosen with
  `config.split_seed`, so every run and seed sees the same labels); the other
  training images are kept, without their labels. Validation and test keep theirs.
- `config.distill.transfer_data`: the images the distilled student trains on
  besides the labelled ones: "train" (the training images whose labels
  labeled_fraction withheld), a folder of images with no class sub-folders, or an
  IDX images file (e.g. train-images-idx3-ubyte.gz without its labels).

Unlabelled examples carry the label `UNLABELED` (-1): a method's hard-label term
is 0 for them (losses.hard_loss) and the accuracy trackers skip them; the soft
term, from the teacher, counts for every example.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from tf_distill.data import idx, image_folder
from tf_distill.data.image_files import ArrayThenFiles, ImageFiles
from tf_distill.data.records import RecordImages

UNLABELED = -1
TRAIN = "train"  # config.distill.transfer_data: the withheld training images


def keep_labels(splits, fraction: float, seed: int):
    """`splits` whose training split keeps the labels of `fraction` of it, per
    class (at least one example each), and whose `x_unlabeled` holds the rest's
    images. fraction 1 returns `splits` unchanged."""
    if fraction >= 1.0:
        return splits
    rng = np.random.default_rng(seed)
    labelled = []
    for c in range(splits.num_classes):
        members = np.flatnonzero(splits.y_train == c)
        n = max(1, int(round(len(members) * fraction)))
        labelled.append(rng.permutation(members)[:n])
    keep = np.zeros(len(splits.y_train), bool)
    keep[np.concatenate(labelled)] = True
    return dataclasses.replace(
        splits,
        x_train=splits.x_train[keep],
        y_train=splits.y_train[keep],
        x_unlabeled=splits.x_train[~keep],
    )


def read_images(
    path: str, *, input_shape, input_scale: float
) -> np.ndarray | ImageFiles:
    """The images of `config.distill.transfer_data` that fit the model's input:
    a folder's as ImageFiles (streamed, decoded to (height, width, channels)), an
    IDX images file's as a uint8 (n, height, width, channels) array.

    Raises:
        FileNotFoundError: `path` does not exist.
        ValueError: the images cannot fit the data set's models (named).
    """
    key = f"config.distill.transfer_data={path!r}"
    if not os.path.exists(path):
        raise FileNotFoundError(f"{key}: no such file or folder")
    if input_scale != 255.0:
        raise ValueError(
            f"{key}: image files hold pixels 0..255, but this data set's are "
            f"0..{input_scale:g}; transfer images need a data set of 8-bit images"
        )
    height, width, channels = input_shape
    if os.path.isdir(path):
        mode = {1: "grayscale", 3: "rgb"}.get(channels)
        if mode is None:
            raise ValueError(f"{key}: the models take {channels} channels")
        images = image_folder.unlabeled_files(path, (height, width, channels))
    else:
        images = idx.read(path, idx.IMAGES_MAGIC)
        if images.ndim != 3 or images.shape[1:] != (height, width) or channels != 1:
            raise ValueError(
                f"{key}: IDX images of shape {images.shape[1:]}, but the models "
                f"take {tuple(input_shape)}"
            )
        images = images[..., None]
    if not len(images):
        raise ValueError(f"{key}: no images")
    return images


def distillation_set(splits, transfer: str | np.ndarray | None):
    """(images, labels) the distilled student trains on: the labelled training
    split, then the transfer images labelled UNLABELED.

    Args:
        transfer: None, TRAIN (the images labeled_fraction withheld) or images.
    """
    if transfer is None:
        return splits.x_train, splits.y_train
    if isinstance(transfer, str):
        transfer = _withheld(splits)
    unlabeled = np.full(len(transfer), UNLABELED, splits.y_train.dtype)
    labels = np.concatenate([splits.y_train, unlabeled])
    if isinstance(splits.x_train, RecordImages):
        if not isinstance(transfer, RecordImages):
            raise ValueError(
                "config.distill.transfer_data: only the withheld training records "
                "('train', with config.labeled_fraction < 1) can join TFRecord data"
            )
        images, order = splits.x_train.merge(transfer)  # still in file order
        return images, labels[order]
    if isinstance(splits.x_train, ImageFiles):
        if not isinstance(transfer, ImageFiles):
            raise ValueError(
                "config.distill.transfer_data: an IDX images file cannot join an "
                "image folder's streamed images; give a folder of images"
            )
        images = splits.x_train.concatenate(transfer)
    elif isinstance(transfer, ImageFiles):  # a folder beside images in memory
        images = ArrayThenFiles(splits.x_train, transfer)
    else:
        images = np.concatenate([splits.x_train, transfer])
    return images, labels


def distillation_size(splits, transfer: str | np.ndarray | None) -> int:
    """len(distillation_set(splits, transfer)[1]), without building it."""
    if transfer is None:
        return len(splits.y_train)
    if isinstance(transfer, str):
        transfer = _withheld(splits)
    return len(splits.y_train) + len(transfer)


def _withheld(splits) -> np.ndarray:
    if splits.x_unlabeled is None:
        return splits.x_train[:0]
    return splits.x_unlabeled
