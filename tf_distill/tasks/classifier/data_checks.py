"""The checks that need the loaded data (and the teacher to distil from), run by
the Session before anything is written: a user's builder that does not fit, a
batch larger than the data, a teacher trained on other data or giving
probabilities, sizes the data makes impossible, the method's own check."""

from __future__ import annotations

import os

from absl import logging

from tf_distill.data import batches, image_files
from tf_distill.models import architectures
from tf_distill.tasks.classifier import settings as config_lib
from tf_distill.teacher import outputs, views


def check_logits(paths, teachers, splits) -> None:
    """Each loaded teacher gives logits (teacher/outputs.py), on 64 validation
    images; `paths` name them."""
    first = batches.pipeline(
        image_files.as_array(splits.x_val, limit=64), batch_size=64
    )
    for path, teacher in zip(paths, teachers, strict=True):
        outputs.check_logits(teacher.predict(first, verbose=0), path)


def check_against_data(config, splits) -> None:
    """The config checks that need the data, before anything is written."""
    for role in ("teacher", "student"):
        spec = config_lib.model_spec(config[role])
        if architectures.is_imported(spec.arch):
            # A user's builder: build it once now, so that a model that does not
            # fit the data fails here and not after the teacher has trained.
            try:
                architectures.build_for(spec, splits, name=role)
            except ValueError as e:
                raise ValueError(f"config.{role}.arch: {e}") from None
    if config.batch_size > len(splits.y_train):
        raise ValueError(
            f"config.batch_size={config.batch_size} is larger than the "
            f"{len(splits.y_train)} training examples: every epoch would be one "
            "short batch"
        )
    smallest = min(splits.input_shape[:2])
    if config.augment.translate >= smallest:
        raise ValueError(
            f"config.augment.translate={config.augment.translate}: a shift of the "
            f"image's own size ({smallest} pixels) or more leaves none of it; "
            f"expected < {smallest}"
        )
    if (
        config.distill.cached_views
        and config.augment.mixup
        and not image_files.random_access(splits.x_train)
    ):
        raise ValueError(
            f"config.augment.mixup={config.augment.mixup}: cached views with mixup "
            f"read each image's partner by its index, and {splits.source} is read "
            "in file order; set mixup to 0 (views then stream) or "
            "distill.cached_views to 0 (the teacher then runs in every step)"
        )
    channels = splits.input_shape[-1]
    if config.augment.color_jitter and channels != 3:
        raise ValueError(
            f"config.augment.color_jitter={config.augment.color_jitter} needs RGB "
            f"images; these have {channels} channel(s)"
        )


def check_sizes(config, splits, distilled_images: int) -> None:
    """What the data's size makes of the config: a validation split too small to
    steer early stopping (a warning), cached views that cannot fit in memory."""
    val = len(splits.y_val)
    if val < 5 * splits.num_classes:
        logging.warning(
            "The validation split holds %d images for %d classes: early stopping and "
            "the best-on-validation weights will follow noise; raise "
            "config.validation_fraction (now %s)",
            val,
            splits.num_classes,
            config.validation_fraction,
        )
    d = config.distill
    if not d.cached_views:
        return
    size = views.views_bytes(
        distilled_images,
        d.cached_views,
        splits.num_classes,
        d.cache_dtype,
        d.cache_top_k,
    )
    available = free_memory()
    if size > available / 2:
        raise ValueError(
            f"config.distill.cached_views={d.cached_views}: the views' logits for "
            f"{distilled_images} images would take {size / 1e6:,.1f} MB of memory "
            f"(and as much disk), over half the {available / 1e6:,.1f} MB free: use "
            "fewer views, config.distill.cache_top_k or cache_dtype='float16'"
        )
    logging.info(
        "Cached views: %d per image, %.1f MB in memory and about as much on disk",
        d.cached_views,
        size / 1e6,
    )


def free_memory() -> int:
    """Bytes of physical memory free now."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")


def check_method(config, splits, teacher) -> None:
    """The method's own check (DKD's classes, the hint's layers), before any
    training: on the teacher to distil from, or one built from config.teacher.
    Built here even for methods that check nothing: a model or two, once a run."""
    student = architectures.build_for(
        config_lib.model_spec(config.student), splits, name="student"
    )
    if teacher is None:
        spec = config_lib.model_spec(config.teacher)
        teacher = architectures.build_for(spec, splits, name="teacher")
    config_lib.method(config).check(
        teacher=teacher, student=student, num_classes=splits.num_classes
    )
