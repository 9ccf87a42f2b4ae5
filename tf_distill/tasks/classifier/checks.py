"""Validating a config once, before anything is trained or written: each bad value
gets one line naming `config.KEY`, the value and what was expected.

This module checks the data, models, training, augmentation and outputs;
`distill_checks.py` the distillation keys (the method, which checks its own keys,
the teacher cache, an ensemble, transfer data); tf_distill/checker.py holds the
`Checker` both use."""

from __future__ import annotations

import ml_collections

from tf_distill.checker import Checker, is_int, is_number
from tf_distill.data import augment
from tf_distill.distillation import registry
from tf_distill.models import architectures
from tf_distill.tasks import rerun
from tf_distill.tasks.classifier import distill_checks
from tf_distill.training.distribute import STRATEGIES

MIXED_PRECISION = (None, "mixed_bfloat16", "mixed_float16")
MONITORS = ("val_accuracy", "val_loss")


def validate(config: ml_collections.ConfigDict) -> None:
    """Checks every value that would otherwise fail late, or silently.

    Raises:
        ValueError: naming the key and the bad value.
    """
    c = Checker(config)
    sections = (
        _data_and_seeds,
        _models,
        *distill_checks.SECTIONS,
        _training,
        _augment,
        _outputs,
    )
    for section in sections:
        section(c, config)


def _data_and_seeds(c: Checker, config: ml_collections.ConfigDict) -> None:
    """The task, the data, the seeds and the batch."""
    c.check(
        isinstance(config.dataset, str) and config.dataset,
        "dataset",
        "expected a data set name",
    )
    c.check(
        isinstance(config.data.skip_bad_files, bool),
        "data.skip_bad_files",
        "expected True/False",
    )
    c.seed("seed")
    c.seed("split_seed")
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
        is_number(config.labeled_fraction) and 0.0 < config.labeled_fraction <= 1.0,
        "labeled_fraction",
        "expected a fraction in (0, 1]",
    )


def _models(c: Checker, config: ml_collections.ConfigDict) -> None:
    """config.teacher and config.student."""
    for role in ("teacher", "student"):
        arch = config[role].arch
        if isinstance(arch, str) and architectures.is_imported(arch):
            try:
                architectures.import_builder(arch)  # an unimportable name fails here
            except ValueError as e:
                raise ValueError(f"config.{role}.arch: {e}") from None
        else:
            c.check(
                arch in architectures.MODELS,
                f"{role}.arch",
                f"valid: {', '.join(architectures.MODELS)}, or package.module:function",
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


KEEPS = ("auto", "best", "last")  # config.teacher.keep, or an epoch number


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
        is_number(config.optimizer.learning_rate)
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
    keep = str(config.teacher.keep)
    c.check(
        keep in KEEPS or (keep.isdigit() and 1 <= int(keep) <= config.teacher.epochs),
        "teacher.keep",
        f"expected one of {', '.join(KEEPS)}, or an epoch 1..teacher.epochs "
        f'({config.teacher.epochs}) as text, e.g. "10"',
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
        is_number(config.augment.mixup) and config.augment.mixup >= 0,
        "augment.mixup",
        "expected a Beta(a, a) parameter >= 0 (0 turns mixup off)",
    )
    c.check(
        not (
            config.augment.mixup
            and registry.method_class(config.distill.method).target_class
        ),
        "augment.mixup",
        f"mixed images have no single target class, which "
        f"{config.distill.method} needs: use method kd",
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
    c.positive_int("concurrent_fits")
    c.positive_int("validation_every_epochs")
    c.positive_number("distribute.connect_timeout")
    c.number_at_least_zero("backup_every_seconds")
    c.one_of("finished", rerun.POLICIES)
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
