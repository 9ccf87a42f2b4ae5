"""The sources whose images stay in their files and stream (data/batches.py):
image folders (data/image_folder.py) and TFRecord files (data/records.py)."""

from __future__ import annotations

import os

from tf_distill.data import image_folder, record_loading
from tf_distill.data.splits import Splits, check_labels, hashed_validation


def load_image_folder(spec):
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
        folder = os.path.join(spec.data_dir, "train")
        relative = [os.path.relpath(str(p), folder) for p in train[0].paths]
        train, val = hashed_validation(*train, relative, spec.validation_fraction)
    return Splits(
        *train,
        *val,
        *test,
        num_classes=len(names),
        input_scale=255.0,
        class_names=names,
        source=source,
    )


def load_tfrecord(spec):
    """`config.data.*_files`: globs of TFRecord files (data/records.py)."""
    for key in ("train_files", "test_files"):
        if getattr(spec, key) is None:
            raise ValueError(
                f"config.dataset='tfrecord' needs config.data.{key}: a glob of "
                "TFRecord files, e.g. '/data/train-*.tfrecord'"
            )
    if spec.color_mode not in image_folder.COLOR_MODES:
        raise ValueError(
            f"config.color_mode={spec.color_mode!r}; valid: "
            f"{', '.join(image_folder.COLOR_MODES)}"
        )
    shape = (*spec.image_size, image_folder.COLOR_MODES[spec.color_mode])
    splits = {}
    for key in ("train_files", "validation_files", "test_files"):
        if getattr(spec, key) is not None:
            splits[key] = record_loading.load_split(
                getattr(spec, key),
                image_shape=shape,
                image_feature=spec.image_feature,
                label_feature=spec.label_feature,
                skip_bad=spec.skip_bad_files,
                key=key,
            )
    source = f"tfrecord:{os.path.abspath(spec.train_files)}"
    train, test = splits["train_files"], splits["test_files"]
    num_classes = int(max(train[1].max(), test[1].max())) + 1
    check_labels(train[1], test[1], num_classes, source=source)
    val = splits.get("validation_files")
    if val is None:
        train, val = hashed_validation(
            *train, train[0].keys(), spec.validation_fraction
        )
    return Splits(
        *train,
        *val,
        *test,
        num_classes=num_classes,
        input_scale=255.0,
        class_names=tuple(str(i) for i in range(num_classes)),
        source=source,
    )
