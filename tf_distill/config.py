"""Config validation, run once before anything is trained or written."""

from __future__ import annotations

import ml_collections

from tf_distill import augment, losses, models
from tf_distill.distribute import STRATEGIES

MIXED_PRECISION = (None, "mixed_bfloat16", "mixed_float16")
MONITORS = ("val_accuracy", "val_loss")
CACHE_DTYPES = ("float32", "float16")
TEACHER_DTYPES = ("float32", "bfloat16")


def validate(config: ml_collections.ConfigDict) -> None:
    """Checks every value that would otherwise fail late, or silently.

    Raises:
        ValueError: naming the key and the bad value.
    """

    def check(ok: bool, key: str, expected: str) -> None:
        if not ok:
            raise ValueError(f"config.{key}={_get(config, key)!r}: {expected}")

    def positive_int(key: str) -> None:
        value = _get(config, key)
        ok = isinstance(value, int) and not isinstance(value, bool) and value > 0
        check(ok, key, "expected a positive integer")

    check(
        isinstance(config.dataset, str) and config.dataset,
        "dataset",
        "expected a data set name",
    )
    check(isinstance(config.seed, int), "seed", "expected an integer")
    check(
        isinstance(config.deterministic, bool), "deterministic", "expected True/False"
    )
    positive_int("batch_size")
    positive_int("num_seeds")
    check(
        0.0 < config.validation_fraction < 1.0,
        "validation_fraction",
        "expected a fraction strictly between 0 and 1",
    )
    for role in ("teacher", "student"):
        check(
            config[role].arch in models.MODELS,
            f"{role}.arch",
            f"valid: {', '.join(models.MODELS)}",
        )
        positive_int(f"{role}.epochs")
        check(
            len(config[role].layers) > 0
            and all(int(n) > 0 for n in config[role].layers),
            f"{role}.layers",
            "expected one or more positive layer sizes",
        )
        check(0.0 <= config[role].dropout < 1.0, f"{role}.dropout", "expected [0, 1)")
    check(
        config.distill.method in losses.METHODS,
        "distill.method",
        f"valid: {', '.join(losses.METHODS)}",
    )
    check(config.distill.temperature > 0, "distill.temperature", "must be > 0")
    check(
        0.0 <= config.distill.alpha <= 1.0,
        "distill.alpha",
        "the weight of the hard loss must be in [0, 1]",
    )
    check(
        config.distill.cache_dtype in CACHE_DTYPES,
        "distill.cache_dtype",
        f"valid: {', '.join(CACHE_DTYPES)}",
    )
    positive_int("distill.teacher_batch_size")
    check(
        config.distill.teacher_dtype in TEACHER_DTYPES,
        "distill.teacher_dtype",
        f"valid: {', '.join(TEACHER_DTYPES)}",
    )
    positive_int("steps_per_execution")
    if config.distill.epochs is not None:
        positive_int("distill.epochs")
    check(config.optimizer.learning_rate > 0, "optimizer.learning_rate", "must be > 0")
    check(
        0.0 <= config.optimizer.final_lr_fraction <= 1.0,
        "optimizer.final_lr_fraction",
        "expected [0, 1]",
    )
    check(
        config.early_stopping.monitor in MONITORS,
        "early_stopping.monitor",
        f"valid: {', '.join(MONITORS)}",
    )
    check(
        isinstance(config.early_stopping.patience, int)
        and config.early_stopping.patience >= 0,
        "early_stopping.patience",
        "expected an integer >= 0 (0 turns it off)",
    )
    check(
        isinstance(config.export.tflite, bool), "export.tflite", "expected True/False"
    )
    check(
        isinstance(config.augment.translate, int) and config.augment.translate >= 0,
        "augment.translate",
        "expected a whole number of pixels >= 0",
    )
    check(
        config.augment.flip in augment.FLIPS,
        "augment.flip",
        f"valid: {', '.join(augment.FLIPS)}",
    )
    check(0 <= config.augment.rotation < 180, "augment.rotation", "degrees in [0, 180)")
    check(0 <= config.augment.color_jitter < 1, "augment.color_jitter", "in [0, 1)")
    check(
        len(config.image_size) == 2 and all(int(n) > 0 for n in config.image_size),
        "image_size",
        "expected (height, width), both positive",
    )
    positive_int("export.representative_examples")
    for key, valid, expected in (
        ("sweep.temperatures", lambda t: t > 0, "temperatures > 0"),
        ("sweep.alphas", lambda a: 0 <= a <= 1, "alphas in [0, 1]"),
    ):
        values = _get(config, key)
        check(
            isinstance(values, (tuple, list))
            and len(values) > 0
            and all(isinstance(v, (int, float)) and valid(v) for v in values),
            key,
            f"expected a non-empty tuple of {expected}",
        )
        check(len(set(values)) == len(values), key, "expected distinct values")
    every = config.tensorboard.every_steps
    check(
        isinstance(every, int) and not isinstance(every, bool) and every >= 0,
        "tensorboard.every_steps",
        "expected an integer >= 0 (0: per epoch only)",
    )
    check(config.strategy in STRATEGIES, "strategy", f"valid: {', '.join(STRATEGIES)}")
    check(
        config.mixed_precision in MIXED_PRECISION,
        "mixed_precision",
        f"valid: {', '.join(str(m) for m in MIXED_PRECISION)}",
    )


def _get(config: ml_collections.ConfigDict, dotted_key: str):
    value = config
    for part in dotted_key.split("."):
        value = value[part]
    return value
