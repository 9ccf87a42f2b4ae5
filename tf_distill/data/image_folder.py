"""A folder of images sorted into class sub-folders (`config.dataset="image_folder"`).

    <data_dir>/train/<class>/*.png|jpg|jpeg|bmp|gif   training images
    <data_dir>/val/<class>/...                        held-out images
    <data_dir>/test/<class>/...                       optional

With a `test/` folder, `val/` is the validation split and `test/` the test split.
Without one, `val/` becomes the test split, read once for the final evaluation, and
the validation split that early stopping watches is carved from `train/` by a
hash of each file's path (image_files.hashed_split: the same split on every
machine, whatever order the files are listed in). Class names are the sub-folder
names of `train/`, sorted; `val/` and `test/` must have the same ones.

The images stream: each split is an `ImageFiles` of paths, decoded and resized to
`config.image_size` by the pipeline that reads them, so memory does not grow with
the number of images. Every file is decoded once when the folder is loaded, so a
file that cannot be read is named (with how many there are) before any training,
or skipped with `skip_bad_files`.
"""

from __future__ import annotations

import os
import time

import numpy as np
import tensorflow as tf
from absl import logging

from tf_distill.data.image_files import ImageFiles, unreadable

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
            deeper = _image_paths(class_dir)
            where = ""
            if deeper:
                sub = os.path.relpath(os.path.dirname(deeper[0]), folder)
                where = (
                    f"; its sub-folder {sub} does: a class's images sit in its folder"
                )
            raise ValueError(
                f"Class folder {class_dir} holds no images "
                f"({', '.join(IMAGE_EXTENSIONS)}){where}"
            )
    return names


def list_split(folder: str, names: tuple[str, ...]) -> tuple[list[str], np.ndarray]:
    """The image files of one split folder, sorted, and their labels.

    Raises:
        ValueError: the folder's classes differ from the training folder's.
    """
    found = class_names(folder)
    if found != names:
        raise ValueError(
            f"{folder} has classes {list(found)}, but the training folder has "
            f"{list(names)}"
        )
    paths, labels = [], []
    for label, name in enumerate(names):
        for path in _image_paths(os.path.join(folder, name)):
            paths.append(path)
            labels.append(label)
    return paths, np.asarray(labels, dtype=np.int32)


def _image_paths(folder: str) -> list[str]:
    """Every image file under `folder`, at any depth, sorted."""
    return sorted(
        os.path.join(root, f)
        for root, _, files in os.walk(folder)
        for f in files
        if f.lower().endswith(IMAGE_EXTENSIONS)
    )


def unlabeled_files(folder: str, image_shape) -> ImageFiles:
    """Every image under `folder`, at any depth, without labels, streamed.

    Raises:
        ValueError: no image, or one that cannot be decoded (named).
    """
    paths = _image_paths(folder)
    if not paths:
        raise ValueError(f"{folder} holds no images ({', '.join(IMAGE_EXTENSIONS)})")
    files = ImageFiles(np.asarray(paths), tuple(image_shape))
    _check_readable({"unlabelled": (files, None)}, skip=False)
    return files


def load(data_dir: str, *, image_size, color_mode: str, skip_bad_files: bool = False):
    """The splits of an image folder: (train, validation or None, test, names),
    each split (ImageFiles, labels).

    Raises:
        ValueError: a bad layout, or files that cannot be read (named, with their
            count) unless `skip_bad_files`.
    """
    if color_mode not in COLOR_MODES:
        raise ValueError(
            f"config.color_mode={color_mode!r}; valid: {', '.join(COLOR_MODES)}"
        )
    shape = (*tuple(image_size), COLOR_MODES[color_mode])
    names = class_names(os.path.join(data_dir, "train"))
    splits = {}
    for split in ("train", "val", "test"):
        folder = os.path.join(data_dir, split)
        if split != "test" or os.path.isdir(folder):
            paths, labels = list_split(folder, names)
            splits[split] = (ImageFiles(np.asarray(paths), shape), labels)
    splits = _check_readable(splits, skip=skip_bad_files)
    if "test" in splits:
        return splits["train"], splits["val"], splits["test"], names
    return splits["train"], None, splits["val"], names


def _check_readable(splits: dict, *, skip: bool) -> dict:
    """Decodes every file once; the splits without the unreadable ones if `skip`.

    Raises:
        ValueError: naming the first unreadable files and their count.
    """
    start = time.perf_counter()
    bad = {name: set(unreadable(files)) for name, (files, _) in splits.items()}
    count = sum(len(b) for b in bad.values())
    total = sum(len(files) for files, _ in splits.values())
    logging.info("Checked %d image files in %.1f s", total, time.perf_counter() - start)
    if not count:
        return splits
    every = sorted(p for b in bad.values() for p in b)
    if not skip:
        shown = ", ".join(every[:3]) + (" ..." if count > 3 else "")
        raise ValueError(
            f"{count} image file(s) cannot be read: {shown} ({_reason(every[0])}); "
            "remove them, or set config.data.skip_bad_files=True to train without them"
        )
    logging.warning(
        "Skipping %d image file(s) that cannot be read: %s%s",
        count,
        ", ".join(every[:10]),
        " ..." if count > 10 else "",
    )
    kept = {}
    for name, (files, labels) in splits.items():
        keep = np.array([str(p) not in bad[name] for p in files.paths])
        kept[name] = (files[keep], None if labels is None else labels[keep])
    return kept


def _reason(path: str) -> str:
    """Why TensorFlow cannot decode `path`, in its first line."""
    try:
        tf.io.decode_image(tf.io.read_file(path), expand_animations=False)
    except (tf.errors.InvalidArgumentError, tf.errors.NotFoundError) as e:
        return e.message.splitlines()[0] if e.message else "cannot be decoded"
    return "cannot be decoded"
