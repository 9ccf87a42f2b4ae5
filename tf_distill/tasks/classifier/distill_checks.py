"""The distillation keys of a config: the method, the teacher's cache (cached
logits, views, top-k, dtypes), an ensemble of teachers and transfer data."""

from __future__ import annotations

import os

import ml_collections

from tf_distill.checker import Checker, is_int, is_number
from tf_distill.data import augment, unlabelled
from tf_distill.distillation import registry
from tf_distill.models import saved_teacher
from tf_distill.teacher import cache

CACHE_DTYPES = ("float32", "float16")
TEACHER_DTYPES = ("float32", "bfloat16")


def _method(c: Checker, config: ml_collections.ConfigDict) -> None:
    """The method (its own keys are its from_config's to check), the temperature
    and alpha every method and the ensemble share, and the generations."""
    c.check(
        is_number(config.distill.temperature) and config.distill.temperature > 0,
        "distill.temperature",
        "must be > 0 and finite",
    )
    c.check(
        is_number(config.distill.alpha) and 0.0 <= config.distill.alpha <= 1.0,
        "distill.alpha",
        "the weight of the hard loss must be in [0, 1]",
    )
    c.positive_int("distill.generations")
    registry.from_config(config.distill)


def _cache(c: Checker, config: ml_collections.ConfigDict) -> None:
    """How the teacher's logits are cached (teacher/cache.py, views.py, topk.py)."""
    c.check(
        config.distill.cache_dtype in CACHE_DTYPES,
        "distill.cache_dtype",
        f"valid: {', '.join(CACHE_DTYPES)}",
    )
    c.positive_int("distill.teacher_batch_size")
    _cache_top_k(c, config)
    for key in ("distill.cache_teacher_logits", "distill.validation_teacher"):
        c.check(isinstance(c.get(key), bool), key, "expected True/False")
    _cached_views(c, config)
    c.check(
        config.distill.teacher_dtype in TEACHER_DTYPES,
        "distill.teacher_dtype",
        f"valid: {', '.join(TEACHER_DTYPES)}",
    )


def _cache_top_k(c: Checker, config: ml_collections.ConfigDict) -> None:
    """config.distill.cache_top_k: k >= 0, and only where logits are cached."""
    k, d = config.distill.cache_top_k, config.distill
    c.check(is_int(k) and k >= 0, "distill.cache_top_k", "expected an integer >= 0")
    if not k:
        return
    why = cache.per_step_reason(
        cache=d.cache_teacher_logits,
        features=registry.method_class(d.method).needs == "features",
        augmented=augment.AugmentSpec(**config.augment).enabled_for(distilling=True),
        views=d.cached_views,
    )
    c.check(
        why is None,
        "distill.cache_top_k",
        f"nothing is cached: the teacher runs in every step, as {why}; set it to 0",
    )


def _cached_views(c: Checker, config: ml_collections.ConfigDict) -> None:
    """config.distill.cached_views: K >= 0, for augmented images only."""
    k = config.distill.cached_views
    c.check(is_int(k) and k >= 0, "distill.cached_views", "expected an integer >= 0")
    if not k:
        return
    a = config.augment
    geometric = a.translate or a.flip != "none" or a.rotation or a.mixup
    c.check(
        bool(geometric),
        "distill.cached_views",
        "views are augmented images: turn on config.augment.translate, flip, "
        "rotation or mixup (without augmentation the teacher's logits are cached "
        "once per image already)",
    )
    c.check(
        not a.color_jitter,
        "augment.color_jitter",
        "cached views replay shifts, flips, rotations and mixup; colour jitter "
        "is not offered with distill.cached_views",
    )
    c.check(
        registry.method_class(config.distill.method).needs != "features",
        "distill.cached_views",
        f"method {config.distill.method} reads the teacher's features in every "
        "step; views cache logits",
    )
    c.check(
        config.distill.cache_teacher_logits,
        "distill.cache_teacher_logits",
        "distill.cached_views caches the teacher's logits: set it True",
    )
    epochs = config.distill.epochs or config.student.epochs
    c.check(
        not is_int(epochs) or k <= epochs,
        "distill.cached_views",
        f"each epoch shows one view of every image, so views past the {epochs} "
        "epochs would be computed and never all seen: at most the epochs",
    )
    c.check(
        config.dataset != "tfrecord" or not a.mixup,
        "augment.mixup",
        "cached views with mixup read each image's partner by its index, and "
        "TFRecord files are read in order: set mixup to 0 (views then stream) or "
        "distill.cached_views to 0 (the teacher then runs in every step)",
    )


def _teachers(c: Checker, config: ml_collections.ConfigDict) -> None:
    """config.teacher_paths: an ensemble of saved teachers; config.teacher's keys
    for a SavedModel teacher."""
    c.one_of("teacher.outputs", saved_teacher.OUTPUTS)
    c.check(
        isinstance(config.teacher.signature, str) and config.teacher.signature,
        "teacher.signature",
        "expected the name of a SavedModel signature, e.g. serving_default",
    )
    c.check(
        config.distill.teacher_dtype == "float32"
        or not (config.teacher_path and os.path.isdir(config.teacher_path)),
        "distill.teacher_dtype",
        "a SavedModel teacher runs its own graph in its own dtypes: set float32",
    )
    paths = config.teacher_paths
    c.check(
        isinstance(paths, (tuple, list)) and all(isinstance(p, str) for p in paths),
        "teacher_paths",
        "expected a tuple of .keras files or SavedModel folders",
    )
    if not paths:
        return
    c.check(len(paths) >= 2, "teacher_paths", "an ensemble needs >= 2 teachers")
    c.check(
        config.teacher_path is None,
        "teacher_paths",
        f"and config.teacher_path={config.teacher_path!r}: give one or the other",
    )
    missing = [p for p in paths if not os.path.exists(p)]
    c.check(not missing, "teacher_paths", f"no .keras file or folder at {missing[:1]}")
    c.check(
        config.distill.teacher_dtype == "float32",
        "teacher_paths",
        "an ensemble's caching pass runs in float32: set distill.teacher_dtype float32",
    )


def _transfer(c: Checker, config: ml_collections.ConfigDict) -> None:
    """config.distill.transfer_data: unlabelled images for the distilled student."""
    source = config.distill.transfer_data
    c.check(
        source is None or (isinstance(source, str) and source != ""),
        "distill.transfer_data",
        f'expected None, "{unlabelled.TRAIN}", or a folder of images or an IDX file',
    )
    c.check(
        source != unlabelled.TRAIN or config.labeled_fraction < 1,
        "distill.transfer_data",
        f'"{unlabelled.TRAIN}" adds the training images whose labels '
        f"config.labeled_fraction withholds, and labeled_fraction="
        f"{config.labeled_fraction} withholds none",
    )
    c.check(
        source in (None, unlabelled.TRAIN) or os.path.exists(source),
        "distill.transfer_data",
        "no such file or folder",
    )


# In validate()'s order.
SECTIONS = (_teachers, _method, _cache, _transfer)
