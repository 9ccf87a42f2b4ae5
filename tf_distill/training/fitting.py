"""Fitting one Keras model, and choosing which of its weights to keep.

`fit` runs `model.fit` with what every model of a run gets: crash backups it resumes
from, early stopping that remembers the best epoch, a NaN stop, TensorBoard. It
returns a `FitResult`; `select_weights` then measures the best-on-validation and the
last epoch's weights and leaves the kept ones in the model. Both take plain values,
so they run (and are tested) without a run directory or a config.
"""

from __future__ import annotations

import dataclasses
import math
import shutil
from collections.abc import Callable
from typing import NamedTuple

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from tf_distill.training import backups, interrupt, progress, resume


@dataclasses.dataclass(frozen=True)
class EarlyStopping:
    monitor: str = "val_accuracy"  # "val_accuracy" or "val_loss"
    patience: int = 20  # 0: no early stop; the best epoch is still tracked


@dataclasses.dataclass(frozen=True)
class FitResult:
    history: dict[str, list[float]]  # every epoch's logs, those before a crash too
    seconds: float  # wall time of all epochs, those before a crash included
    last_weights: list[np.ndarray]
    best_weights: list[np.ndarray] | None  # None: the last epoch was the best
    best_epoch: int | None  # 1-based; None when no epoch was monitored
    # The weights at the end of the fit's `keep_epoch` (1-based), when it had one.
    epoch_weights: list[np.ndarray] | None = None
    kept_epoch: int | None = None

    @property
    def epochs_run(self) -> int:
        return len(self.history.get("loss", []))


def cosine_adam(
    *,
    learning_rate: float,
    total_steps: int,
    final_lr_fraction: float = 0.1,
    amsgrad: bool = False,
) -> keras.optimizers.Adam:
    """Adam whose learning rate decays along a cosine to `final_lr_fraction` of it."""
    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=learning_rate,
        decay_steps=total_steps,
        alpha=final_lr_fraction,
    )
    return keras.optimizers.Adam(learning_rate=schedule, amsgrad=amsgrad)


class Steps(NamedTuple):
    per_epoch: int
    per_execution: int


def steps(examples: int, batch_size: int, steps_per_execution: int) -> Steps:
    """Steps per epoch over `examples`, and per execution: `fit`'s training
    dataset runs on across epochs and Keras runs whole executions, so one must not
    straddle two epochs: lowered to the largest divisor of the steps per epoch (a
    whole epoch when it asks for as many or more; else with a warning)."""
    per_epoch = math.ceil(examples / batch_size)
    per_execution = max(
        d
        for d in range(1, min(per_epoch, steps_per_execution) + 1)
        if per_epoch % d == 0
    )
    if per_execution < min(steps_per_execution, per_epoch):
        logging.warning(
            "steps_per_execution %d lowered to %d, the largest divisor of the "
            "%d steps per epoch at most that",
            steps_per_execution,
            per_execution,
            per_epoch,
        )
    return Steps(per_epoch, per_execution)


def fit(
    model: keras.Model,
    *,
    name: str,
    make_train_ds: Callable[[range], tf.data.Dataset],
    val_ds: tf.data.Dataset,
    epochs: int,
    steps_per_epoch: int,
    backup_dir: str,
    tensorboard_dir: str,
    tensorboard_every_steps: int = 0,
    early_stopping: EarlyStopping = EarlyStopping(),
    learning_rate_key: str = "config.optimizer.learning_rate",
    log_path: str | None = None,
    backup_every_seconds: float = 0.0,
    validation_every: int = 1,
    keep_epoch: int | None = None,
) -> FitResult:
    """Fits a compiled `model`, resuming from `backup_dir` if a crash left a backup.

    Args:
        model: compiled; `name` names it in logs and errors.
        make_train_ds: the training batches of a range of epochs (a resumed fit
            asks for the epochs it has left), `steps_per_epoch` batches each.
        backup_dir: where the weights, optimizer, history and early stopping's
            state are kept (backups.py), after the first epoch and then every
            `backup_every_seconds` of wall time (0: after every epoch).
        learning_rate_key: the config key a NaN's message says to lower.
        log_path: a file the line of every epoch is appended to (epochs.log).
        validation_every: validate (and write the epoch's TensorBoard scalars)
            every this many epochs and after the last; the other epochs' val_*
            are None in the history. Early stopping's patience stays in epochs.
        keep_epoch: also keep the weights at the end of this (1-based) epoch
            (FitResult.epoch_weights; kept in `backup_dir` across a crash), and
            validate after it.

    Raises:
        resume.TrainingDiverged: a loss became NaN or infinite (backup removed).
    """
    start_epoch, history = _start(name, epochs, backup_dir, tensorboard_dir)
    clock = backups.Clock(backup_every_seconds)
    # The kept epoch is validated too: its val_accuracy goes into metrics.json.
    validated = validation_epochs(epochs, validation_every, also=keep_epoch)
    snapshot = backups.EpochSnapshot(backup_dir, keep_epoch)
    best = _best_epoch_tracker(backup_dir, early_stopping, epochs, clock)
    if validation_every > 1:  # patience in validations, as Keras counts it
        best.patience = math.ceil(best.patience / validation_every)
    callbacks = [
        progress.EpochLine(name, epochs, log_path),
        progress.TensorBoard(
            tensorboard_dir,
            every_steps=tensorboard_every_steps,
            steps_per_epoch=steps_per_epoch,
            epochs=validated,
        ),
        resume.StopOnNaN(name, steps_per_epoch, learning_rate_key),
        best,
        snapshot,
        *backups.callbacks(backup_dir, history, start_epoch, clock),
        interrupt.Stop(),  # last: after the epoch's backup
    ]
    logging.info("Training %s for up to %d epochs", name, epochs)
    try:
        model.fit(
            make_train_ds(range(start_epoch, epochs)),
            validation_data=val_ds,
            validation_freq=validated,
            epochs=epochs,
            steps_per_epoch=steps_per_epoch,
            callbacks=callbacks,
            shuffle=False,  # the pipeline shuffles with the run's seed
            verbose=0,  # EpochLine shows the fit, naming the model
        )
    except resume.TrainingDiverged:
        shutil.rmtree(backup_dir, ignore_errors=True)  # resuming would diverge
        raise
    return _result(model, history, best, snapshot)


def _result(model, history, best, snapshot) -> FitResult:
    """What a finished fit leaves: its history and time, and its weight sets."""
    epochs_run = len(history.get("loss", []))
    best_epoch = best.best_epoch + 1 if best.best_weights is not None else None
    return FitResult(
        history=history,
        seconds=float(sum(history.get("epoch_seconds", []))),
        last_weights=model.get_weights(),
        best_weights=None if best_epoch in (None, epochs_run) else best.best_weights,
        best_epoch=best_epoch,
        epoch_weights=snapshot.weights,
        kept_epoch=snapshot.epoch if snapshot.weights is not None else None,
    )


def validation_epochs(epochs: int, every: int, also: int | None = None) -> list[int]:
    """The 1-based epochs a fit validates: every `every`-th, the last, `also`."""
    return sorted({*range(every, epochs + 1, every), epochs, *([also] if also else [])})


def _start(name, epochs, backup_dir, tensorboard_dir):
    """(the epoch the fit starts at, the history so far): a crash's backup
    resumes; a fresh fit's TensorBoard curves replace an earlier run's."""
    start_epoch = resume.start_epoch(backup_dir)
    history = resume.history_so_far(backup_dir, start_epoch)
    if start_epoch:
        progress.say(
            f"Resuming {name} at epoch {start_epoch + 1} of {epochs} from {backup_dir}"
        )
    else:
        shutil.rmtree(tensorboard_dir, ignore_errors=True)
    return start_epoch, history


def _best_epoch_tracker(backup_dir, early_stopping, epochs, clock):
    """Early stopping that always tracks the best epoch (and keeps its weights:
    select_weights decides what ships); it stops early only with a patience."""
    monitor = early_stopping.monitor
    return backups.ResumableEarlyStopping(
        backup_dir,
        clock,
        monitor=monitor,
        mode="max" if monitor.endswith("accuracy") else "min",
        patience=early_stopping.patience or epochs + 1,
        restore_best_weights=True,
    )


@dataclasses.dataclass(frozen=True)
class Selection:
    """The test measures of both weight sets, and which one the model kept."""

    kept: object  # the measures of the kept weights (what `evaluate` returns)
    best: object  # of the best-on-validation weights
    last: object  # of the last epoch's weights
    weights: str  # "best_validation", "last_epoch" or "epoch_<n>"


def select_weights(
    fitted: keras.Model,
    result: FitResult,
    *,
    evaluate: Callable[[], object],
    keep: str | int,
) -> Selection:
    """Measures the last epoch's and the best-on-validation weights (and those of
    the fit's `keep_epoch`, when kept); keeps one.

    Args:
        fitted: the model that was fitted, holding the last epoch's weights.
        evaluate: measures the model being shipped (`fitted`, or the student
            inside a Distiller) as it now is.
        keep: "best" (the best-on-validation weights, as early stopping keeps),
            "last" (the last epoch's, as the published recipes train) or an
            epoch number (FitResult.epoch_weights, the fit's `keep_epoch`).

    Returns:
        The measures of each set; `fitted` holds the kept weights afterwards.
    """
    last = evaluate()  # fit leaves the last epoch's weights in the model
    best = last
    if result.best_weights is not None:  # else the last epoch was the best
        fitted.set_weights(result.best_weights)
        best = evaluate()
    if isinstance(keep, int):
        if result.kept_epoch != keep:
            raise ValueError(
                f"select_weights: keep={keep}, but the fit kept no epoch {keep}"
            )
        fitted.set_weights(result.epoch_weights)
        kept, name = evaluate(), f"epoch_{result.kept_epoch}"
    elif keep == "best":
        kept, name = best, "best_validation"
    else:
        kept, name = last, "last_epoch"
    if keep == "last" and result.best_weights is not None:
        fitted.set_weights(result.last_weights)
    return Selection(kept=kept, best=best, last=last, weights=name)
