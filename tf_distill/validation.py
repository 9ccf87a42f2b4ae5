"""Validating a config once, before anything is trained or written: each bad value
gets one line naming `config.KEY`, the value and what was expected."""

from __future__ import annotations

import math
import os

import ml_collections

from tf_distill import augment, methods, models, transfer
from tf_distill.distribute import STRATEGIES

MIXED_PRECISION = (None, "mixed_bfloat16", "mixed_float16")
MONITORS = ("val_accuracy", "val_loss")
CACHE_DTYPES = ("float32", "float16")
TEACHER_DTYPES = ("float32", "bfloat16")


class Checker:
    """Raises ValueError naming `config.KEY`, its value and what was expected."""

    def __init__(self, config: ml_collections.ConfigDict):
        self.config = config

    def get(self, dotted_key: str):
        value = self.config
        for part in dotted_key.split("."):
            value = value[part]
        return value

    def check(self, ok: bool, key: str, expected: str) -> None:
        if not ok:
            raise ValueError(f"config.{key}={self.get(key)!r}: {expected}")

    def positive_int(self, key: str) -> None:
        value = self.get(key)
        self.check(is_int(value) and value > 0, key, "expected a positive integer")


def validate(config: ml_collections.ConfigDict) -> None:
    """Checks every value that would otherwise fail late, or silently.

    Raises:
        ValueError: naming the key and the bad value.
    """
    c = Checker(config)
    sections = (
        _data_and_seeds,
        _models,
        _teachers,
        _distill,
        _training,
        _augment,
        _outputs,
    )
    for section in sections:
        section(c, config)


def _data_and_seeds(c: Checker, config: ml_collections.ConfigDict) -> None:
    """The task, the data, the seeds and the batch."""
    c.check(
        config.get("task", "classifier") == "classifier",
        "task",
        'expected "classifier" (configs/default.py) or "diffusion" '
        "(configs/digits_diffusion.py, which has that task's keys)",
    )
    c.check(
        isinstance(config.dataset, str) and config.dataset,
        "dataset",
        "expected a data set name",
    )
    c.check(isinstance(config.seed, int), "seed", "expected an integer")
    c.check(
        isinstance(config.deterministic, bool), "deterministic", "expected True/False"
    )
    c.positive_int("batch_size")
    c.positive_int("num_seeds")
    c.check(
        0.0 < config.validation_fraction < 1.0,
        "validation_fraction",
        "expected a fraction strictly between 0 and 1",
    )
    c.check(
        _is_number(config.labeled_fraction) and 0.0 < config.labeled_fraction <= 1.0,
        "labeled_fraction",
        "expected a fraction in (0, 1]",
    )


def _models(c: Checker, config: ml_collections.ConfigDict) -> None:
    """config.teacher and config.student."""
    for role in ("teacher", "student"):
        arch = config[role].arch
        if isinstance(arch, str) and models.is_imported(arch):
            try:
                models.import_builder(arch)  # an unimportable name fails here
            except ValueError as e:
                raise ValueError(f"config.{role}.arch: {e}") from None
        else:
            c.check(
                arch in models.MODELS,
                f"{role}.arch",
                f"valid: {', '.join(models.MODELS)}, or package.module:function",
            )
        c.positive_int(f"{role}.epochs")
        layers = config[role].layers
        c.check(
            isinstance(layers, (tuple, list))
            and len(layers) > 0
            and all(is_int(n) and n > 0 for n in layers),
            f"{role}.layers",
            "expected a tuple of one or more positive whole layer sizes",
        )
        c.check(0.0 <= config[role].dropout < 1.0, f"{role}.dropout", "expected [0, 1)")


def _teachers(c: Checker, config: ml_collections.ConfigDict) -> None:
    """config.teacher_paths: an ensemble of saved teachers."""
    paths = config.teacher_paths
    c.check(
        isinstance(paths, (tuple, list)) and all(isinstance(p, str) for p in paths),
        "teacher_paths",
        "expected a tuple of .keras file paths",
    )
    if not paths:
        return
    c.check(len(paths) >= 2, "teacher_paths", "an ensemble needs >= 2 teachers")
    c.check(
        config.teacher_path is None,
        "teacher_paths",
        f"and config.teacher_path={config.teacher_path!r}: give one or the other",
    )
    missing = [p for p in paths if not os.path.isfile(p)]
    c.check(not missing, "teacher_paths", f"no .keras file at {missing[:1]}")
    c.check(
        config.distill.teacher_dtype == "float32",
        "teacher_paths",
        "an ensemble's caching pass runs in float32: set distill.teacher_dtype float32",
    )


def _cache_top_k(c: Checker, config: ml_collections.ConfigDict) -> None:
    """config.distill.cache_top_k: k >= 0, and only where logits are cached."""
    k, d = config.distill.cache_top_k, config.distill
    c.check(is_int(k) and k >= 0, "distill.cache_top_k", "expected an integer >= 0")
    if not k:
        return
    a = config.augment
    # As teacher_cache.TeacherSignals.of decides (mixup counts: the distilled
    # student's images are mixed).
    augmented = (
        a.translate or a.flip != "none" or a.rotation or a.color_jitter or a.mixup
    )
    per_step = (
        not d.cache_teacher_logits
        or d.method == "hint"
        or (augmented and not d.cached_views)
    )
    c.check(
        not per_step,
        "distill.cache_top_k",
        "nothing is cached here (the teacher runs in every step: caching is off, "
        "the method reads features, or the images are augmented without "
        "distill.cached_views); set it to 0",
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
        config.distill.method != "hint",
        "distill.cached_views",
        "method hint reads the teacher's features in every step; views cache logits",
    )
    c.check(
        config.distill.cache_teacher_logits,
        "distill.cache_teacher_logits",
        "distill.cached_views caches the teacher's logits: set it True",
    )


def _distill(c: Checker, config: ml_collections.ConfigDict) -> None:
    """config.distill."""
    c.check(
        config.distill.method in methods.METHODS,
        "distill.method",
        f"valid: {', '.join(methods.METHODS)}",
    )
    c.check(
        _is_number(config.distill.temperature) and config.distill.temperature > 0,
        "distill.temperature",
        "must be > 0 and finite",
    )
    c.check(
        _is_number(config.distill.alpha) and 0.0 <= config.distill.alpha <= 1.0,
        "distill.alpha",
        "the weight of the hard loss must be in [0, 1]",
    )
    c.check(
        config.distill.cache_dtype in CACHE_DTYPES,
        "distill.cache_dtype",
        f"valid: {', '.join(CACHE_DTYPES)}",
    )
    c.positive_int("distill.teacher_batch_size")
    c.positive_int("distill.generations")
    _cache_top_k(c, config)
    for key in ("distill.cache_teacher_logits", "distill.validation_teacher"):
        c.check(isinstance(c.get(key), bool), key, "expected True/False")
    _cached_views(c, config)
    if config.distill.method == "hint":
        for key in ("distill.hint.teacher_layer", "distill.hint.student_layer"):
            c.check(bool(c.get(key)), key, "method hint needs a layer name")
        weight = config.distill.hint.weight
        c.check(
            _is_number(weight) and weight >= 0, "distill.hint.weight", "expected >= 0"
        )
    for key in ("distill.dkd.alpha", "distill.dkd.beta"):
        value = c.get(key)
        c.check(_is_number(value) and value >= 0, key, "expected a weight >= 0")
    warmup = config.distill.dkd.warmup_epochs
    c.check(
        is_int(warmup) and warmup >= 0,
        "distill.dkd.warmup_epochs",
        "expected a whole number of epochs >= 0",
    )
    source = config.distill.transfer_data

    c.check(
        source is None or (isinstance(source, str) and source != ""),
        "distill.transfer_data",
        f'expected None, "{transfer.TRAIN}", or a folder of images or an IDX file',
    )
    c.check(
        source != transfer.TRAIN or config.labeled_fraction < 1,
        "distill.transfer_data",
        f'"{transfer.TRAIN}" adds the training images whose labels '
        f"config.labeled_fraction withholds, and labeled_fraction="
        f"{config.labeled_fraction} withholds none",
    )
    c.check(
        source in (None, transfer.TRAIN) or os.path.exists(source),
        "distill.transfer_data",
        "no such file or folder",
    )
    c.check(
        config.distill.teacher_dtype in TEACHER_DTYPES,
        "distill.teacher_dtype",
        f"valid: {', '.join(TEACHER_DTYPES)}",
    )


def _training(c: Checker, config: ml_collections.ConfigDict) -> None:
    """Optimisation, early stopping, steps per execution."""
    c.positive_int("steps_per_execution")
    if config.distill.epochs is not None:
        c.positive_int("distill.epochs")
    if config.distill.patience is not None:
        c.check(
            is_int(config.distill.patience) and config.distill.patience >= 0,
            "distill.patience",
            "expected an integer >= 0 (0: no early stop), or None",
        )
    c.check(
        _is_number(config.optimizer.learning_rate)
        and config.optimizer.learning_rate > 0,
        "optimizer.learning_rate",
        "must be > 0 and finite",
    )
    c.check(
        0.0 <= config.optimizer.final_lr_fraction <= 1.0,
        "optimizer.final_lr_fraction",
        "expected [0, 1]",
    )
    c.check(
        config.early_stopping.monitor in MONITORS,
        "early_stopping.monitor",
        f"valid: {', '.join(MONITORS)}",
    )
    c.check(
        isinstance(config.early_stopping.patience, int)
        and config.early_stopping.patience >= 0,
        "early_stopping.patience",
        "expected an integer >= 0 (0 turns it off)",
    )


def _augment(c: Checker, config: ml_collections.ConfigDict) -> None:
    """config.augment."""
    c.check(
        isinstance(config.augment.translate, int) and config.augment.translate >= 0,
        "augment.translate",
        "expected a whole number of pixels >= 0",
    )
    c.check(
        config.augment.flip in augment.FLIPS,
        "augment.flip",
        f"valid: {', '.join(augment.FLIPS)}",
    )
    c.check(
        0 <= config.augment.rotation < 180, "augment.rotation", "degrees in [0, 180)"
    )
    c.check(0 <= config.augment.color_jitter < 1, "augment.color_jitter", "in [0, 1)")
    c.check(
        _is_number(config.augment.mixup) and config.augment.mixup >= 0,
        "augment.mixup",
        "expected a Beta(a, a) parameter >= 0 (0 turns mixup off)",
    )
    c.check(
        not (config.augment.mixup and config.distill.method == "dkd"),
        "augment.mixup",
        "mixed images have no single target class, which dkd needs: use method kd",
    )
    c.check(
        not (config.augment.mixup and config.distill.alpha),
        "augment.mixup",
        "mixed images have no single label: set config.distill.alpha=0 (the "
        "teacher's soft targets alone, as Beyer et al. 2022 train)",
    )


def _outputs(c: Checker, config: ml_collections.ConfigDict) -> None:
    """Exports, the sweep, TensorBoard, the strategy and precision."""
    c.check(
        isinstance(config.export.tflite, bool), "export.tflite", "expected True/False"
    )
    c.check(
        len(config.image_size) == 2
        and all(is_int(n) and n > 0 for n in config.image_size),
        "image_size",
        "expected (height, width), both positive",
    )
    c.positive_int("export.representative_examples")
    for key, valid, expected in (
        ("sweep.temperatures", lambda t: t > 0, "temperatures > 0"),
        ("sweep.alphas", lambda a: 0 <= a <= 1, "alphas in [0, 1]"),
    ):
        values = c.get(key)
        c.check(
            isinstance(values, (tuple, list))
            and len(values) > 0
            and all(isinstance(v, (int, float)) and valid(v) for v in values),
            key,
            f"expected a non-empty tuple of {expected}",
        )
        c.check(len(set(values)) == len(values), key, "expected distinct values")
    every = config.tensorboard.every_steps
    c.check(
        isinstance(every, int) and not isinstance(every, bool) and every >= 0,
        "tensorboard.every_steps",
        "expected an integer >= 0 (0: per epoch only)",
    )
    c.check(
        config.strategy in STRATEGIES, "strategy", f"valid: {', '.join(STRATEGIES)}"
    )
    c.check(
        config.mixed_precision in MIXED_PRECISION,
        "mixed_precision",
        f"valid: {', '.join(str(m) for m in MIXED_PRECISION)}",
    )


def is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
    )
