"""A folder of images sorted into class sub-folders (`config.dataset="image_folder"`).

    <data_dir>/train/<class>/*.png|jpg|jpeg|bmp|gif   training images
    <data_dir>/val/<class>/...                        held-out images
    <data_dir>/test/<class>/...                       optional

With a `test/` folder, `val/` is the validation split and `test/` the test split.
Without one, `val/` becomes the test split, read once for the final evaluation, and
the validation split that early stopping watches is carved from `train/` with
`config.split_seed`, as for every other source. Class names are the sub-folder
names of `train/`, sorted; `val/` and `test/` must have the same ones. Images are
read with Keras' `image_dataset_from_directory`, resized to `config.image_size`
and held in memory as uint8.
"""

from __future__ import annotations

import os

import keras
import numpy as np
import tensorflow as tf

IMAGE_EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")
COLOR_MODES = {"rgb": 3, "grayscale": 1}


def class_names(folder: str) -> tuple[str, ...]:
    """The class sub-folders of `folder`, sorted, each checked to hold images.

    Raises:
        FileNotFoundError: `folder` does not exist.
        ValueError: no class sub-folder, or a class sub-folder without images
            (the message names it).
    """
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"Image folder not found: {folder}")
    names = tuple(
        sorted(n for n in os.listdir(folder) if os.path.isdir(os.path.join(folder, n)))
    )
    if not names:
        raise ValueError(
            f"Image folder {folder} has no class sub-folders; expected "
            f"{folder}/<class name>/<images>"
        )
    for name in names:
        class_dir = os.path.join(folder, name)
        if not any(f.lower().endswith(IMAGE_EXTENSIONS) for f in os.listdir(class_dir)):
            raise ValueError(
                f"Class folder {class_dir} holds no images "
                f"({', '.join(IMAGE_EXTENSIONS)})"
            )
    return names


def read_split(
    folder: str, names: tuple[str, ...], *, image_size, color_mode: str
) -> tuple[np.ndarray, np.ndarray]:
    """All images of one split folder: (n, height, width, channels) uint8, labels."""
    found = class_names(folder)
    if found != names:
        raise ValueError(
            f"{folder} has classes {list(found)}, but the training folder has "
            f"{list(names)}"
        )
    ds = keras.utils.image_dataset_from_directory(
        folder,
        labels="inferred",
        label_mode="int",
        class_names=list(names),
        color_mode=color_mode,
        image_size=tuple(image_size),
        batch_size=None,
        shuffle=False,
        verbose=False,
    )
    images, labels = [], []
    try:
        for image, label in ds.as_numpy_iterator():
            images.append(_as_uint8(image))
            labels.append(label)
    except tf.errors.InvalidArgumentError:
        raise ValueError(_unreadable(ds.file_paths)) from None
    return np.stack(images), np.asarray(labels, dtype=np.int32)


def read_unlabeled(folder: str, *, image_size, color_mode: str) -> np.ndarray:
    """Every image under `folder`, at any depth, without labels: (n, height,
    width, channels) uint8, in file-name order.

    Raises:
        ValueError: no image, or one that cannot be decoded (named).
    """
    found = any(
        f.lower().endswith(IMAGE_EXTENSIONS)
        for _, _, files in os.walk(folder)
        for f in files
    )
    if not found:
        raise ValueError(f"{folder} holds no images ({', '.join(IMAGE_EXTENSIONS)})")
    ds = keras.utils.image_dataset_from_directory(
        folder,
        labels=None,
        color_mode=color_mode,
        image_size=tuple(image_size),
        batch_size=None,
        shuffle=False,
        verbose=False,
    )
    try:
        return np.stack([_as_uint8(image) for image in ds.as_numpy_iterator()])
    except tf.errors.InvalidArgumentError:
        raise ValueError(_unreadable(ds.file_paths)) from None


def _as_uint8(image) -> np.ndarray:
    """A resized float image back to the uint8 pixels every split holds."""
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def _unreadable(paths) -> str:
    """Names the first file TensorFlow cannot decode (its error names none)."""
    for path in paths:
        try:
            tf.io.decode_image(tf.io.read_file(path), expand_animations=False)
        except tf.errors.InvalidArgumentError as e:
            reason = e.message.splitlines()[0] if e.message else "cannot be decoded"
            return f"{path} is not a readable image: {reason}"
    return f"an image under {os.path.dirname(paths[0])} cannot be decoded"


def load(data_dir: str, *, image_size, color_mode: str):
    """The splits of an image folder: (train, validation or None, test, names).

    Returns:
        ((x_train, y_train), (x_val, y_val) or None without a test/ folder,
        (x_test, y_test), class names).
    """
    if color_mode not in COLOR_MODES:
        raise ValueError(
            f"config.color_mode={color_mode!r}; valid: {', '.join(COLOR_MODES)}"
        )
    names = class_names(os.path.join(data_dir, "train"))
    read = {"image_size": image_size, "color_mode": color_mode}
    train = read_split(os.path.join(data_dir, "train"), names, **read)
    held_out = read_split(os.path.join(data_dir, "val"), names, **read)
    test_dir = os.path.join(data_dir, "test")
    if os.path.isdir(test_dir):
        return train, held_out, read_split(test_dir, names, **read), names
    return train, None, held_out, names
