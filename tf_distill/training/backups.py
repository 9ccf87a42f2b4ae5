"""A fit's crash backups: written together, at an interval of wall time.

`<backup_dir>` (resume.RunState.model_dir) holds, as of one finished epoch:

    training_metadata.json, *.weights.h5   keras.callbacks.BackupAndRestore: the
                                           weights and optimizer (schedule step too)
    history.json                           the per-epoch logs up to then
    seeds_<epoch>.npz                      the random-number states
    early_stopping.json, best.weights.npz  early stopping's count and best weights

All four are written at the same epochs, chosen by one `Clock`: after the first
epoch, then at the first epoch end `every_seconds` after the last backup, and at
the end of the epoch a Ctrl-C or SIGTERM arrived in. Every epoch (`every_seconds`
0, as Keras' own callback does) costs about as much as the epoch itself when
epochs are short: on the main job's 8x8 digits, a 5-step epoch took 0.08 s and its
backups another 0.08 s. With an interval a crash loses at most that much training;
the resumed fit starts after the last backed-up epoch and, given the same seeds,
ends with the same weights as an uninterrupted one (tests/test_resume.py).
"""

from __future__ import annotations

import os
import time

import keras
import numpy as np
from absl import logging

from tf_distill.outputs import files
from tf_distill.training import interrupt, progress


class Clock:
    """Whether the backups are written after an epoch; the same answer for every
    backup callback of a fit (the first to ask an epoch decides it)."""

    def __init__(self, every_seconds: float = 0.0):
        self._every = every_seconds
        self._last = None  # perf_counter of the last backup; None: none yet
        self._answers: dict[int, bool] = {}

    def due(self, epoch: int) -> bool:
        if epoch not in self._answers:
            now = time.perf_counter()
            due = (
                self._last is None
                or now - self._last >= self._every
                or interrupt.requested()
            )
            if due:
                self._last = now
            self._answers = {epoch: due}  # only the current epoch is asked
        return self._answers[epoch]


def callbacks(backup_dir, history, start_epoch, clock: Clock):
    """The logs and random-number state, then the weights and optimizer: in this
    order, so a crash between them leaves the history ahead, never behind (the
    resumed fit cuts it back, resume.history_so_far). Early stopping's own backup
    is `ResumableEarlyStopping`, listed before these."""
    return [
        HistoryBackup(backup_dir, history, clock),
        SeedBackup(backup_dir, start_epoch, clock),
        WeightsBackup(backup_dir, clock),
    ]


class WeightsBackup(keras.callbacks.BackupAndRestore):
    """keras.callbacks.BackupAndRestore (restored at the fit's start) written
    when the clock says."""

    def __init__(self, backup_dir: str, clock: Clock):
        super().__init__(backup_dir, double_checkpoint=True, delete_checkpoint=False)
        self._clock = clock

    def on_epoch_end(self, epoch, logs=None):
        if self._clock.due(epoch):
            super().on_epoch_end(epoch, logs)


class HistoryBackup(progress.EpochTimer):
    """Keeps every epoch's logs, in memory and, when the clock says, in
    `<backup_dir>/history.json`."""

    def __init__(self, backup_dir: str, history: dict[str, list[float]], clock: Clock):
        super().__init__()
        self._path = os.path.join(backup_dir, "history.json")
        self.history = history
        self._clock = clock

    def on_epoch_end(self, epoch, logs=None):
        logs = {**(logs or {}), "epoch_seconds": self.epoch_seconds()}
        # Kept with the logs, so a resumed run's training time counts the epochs
        # before the crash too. A value an epoch did not log (val_* between two
        # validations) is None, so every list has one entry per epoch.
        done = len(self.history.get("epoch_seconds", []))
        for key in [*self.history, *(k for k in logs if k not in self.history)]:
            values = self.history.setdefault(key, [])
            values += [None] * (done - len(values))
            value = logs.get(key)
            values.append(None if value is None else float(value))
        if self._clock.due(epoch):
            files.write_json(self._path, self.history)


class SeedBackup(keras.callbacks.Callback):
    """The model's random-number state (each keras.random.SeedGenerator: dropout,
    random augmentation, a diffusion trainer's noise and time draws), put back
    when training resumes.

    BackupAndRestore saves `model.weights`, which holds none of it, so a resumed
    fit drew epoch 0's randomness again (a resumed diffusion round differed from
    an uninterrupted one by up to 6.7e-4 in its weights). The states are
    `model.variables` less `model.weights`, in their (fixed) order; one file per
    backed-up epoch (`seeds_<epoch>.npz`, the last two kept), so a crash between
    this backup and the weights' still finds the file of the epoch they hold.
    """

    def __init__(self, backup_dir: str, start_epoch: int, clock: Clock):
        super().__init__()
        self._dir = backup_dir
        self._start_epoch = start_epoch
        self._clock = clock
        self._written: list[str] = []

    def _states(self):
        weights = {id(w) for w in self.model.weights}
        return [v for v in self.model.variables if id(v) not in weights]

    def _path(self, epoch: int) -> str:
        return os.path.join(self._dir, f"seeds_{epoch}.npz")

    def on_train_begin(self, logs=None):
        path = self._path(self._start_epoch - 1)
        if self._start_epoch and os.path.isfile(path):
            self._written = [path]
            with np.load(path) as saved:
                for i, state in enumerate(self._states()):
                    state.assign(saved[f"s{i}"])

    def on_epoch_end(self, epoch, logs=None):
        if not self._clock.due(epoch):
            return
        os.makedirs(self._dir, exist_ok=True)
        states = {f"s{i}": np.asarray(v) for i, v in enumerate(self._states())}
        path = self._path(epoch)
        with files.replacing_file(path, suffix=".npz") as tmp:
            np.savez(tmp, **states)
        self._written.append(path)
        for stale in self._written[:-2]:
            if os.path.isfile(stale):
                os.remove(stale)
        self._written = self._written[-2:]


class ResumableEarlyStopping(keras.callbacks.EarlyStopping):
    """EarlyStopping whose patience count and best weights survive a crash.

    keras.callbacks.EarlyStopping starts afresh in every `fit`, so a resumed run
    would forget the best epoch before the crash and restore the best of the
    epochs after it. This one keeps its state in `<backup_dir>/early_stopping.json`
    and the best weights in `best.weights.npz` when the clock says (before the
    weights' backup, like HistoryBackup), and reloads them when training resumes.
    Unlike EarlyStopping, it does not restore the best weights at the end.
    """

    def __init__(self, backup_dir: str, clock: Clock | None = None, **kwargs):
        super().__init__(**kwargs)
        self._state_path = os.path.join(backup_dir, "early_stopping.json")
        self._weights_path = os.path.join(backup_dir, "best.weights.npz")
        self._clock = clock or Clock()
        self._saved_best = None  # the best weights last written

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        if not os.path.isfile(self._state_path):
            return
        state = files.read_json(self._state_path)
        self.wait, self.best_epoch = state["wait"], state["best_epoch"]
        self.best = float(state["best"]) if state["best"] is not None else self.best
        if os.path.isfile(self._weights_path):
            self.best_weights = _read_weights(self._weights_path)
            self._saved_best = self.best_weights

    def on_train_end(self, logs=None):
        """Leaves the last epoch's weights in the model: the caller reads both
        them and `best_weights`, measures each, and chooses what to keep."""
        if self.stopped_epoch > 0:
            logging.info(
                "Early stopping after epoch %d; the best was epoch %d",
                self.stopped_epoch + 1,
                self.best_epoch + 1,
            )

    def on_epoch_end(self, epoch, logs=None):
        if self.monitor in (logs or {}):  # else an epoch without validation
            super().on_epoch_end(epoch, logs)
        if not self._clock.due(epoch):
            return
        if self.best_weights is not None and self.best_weights is not self._saved_best:
            _write_weights(self._weights_path, self.best_weights)
            self._saved_best = self.best_weights
        best = None if self.best is None else float(self.best)
        state = {"wait": self.wait, "best": best, "best_epoch": self.best_epoch}
        files.write_json(self._state_path, state)


class EpochSnapshot(keras.callbacks.Callback):
    """Keeps the model's weights at the end of one (1-based) epoch, e.g. an
    earlier teacher checkpoint (config.teacher.keep). Written to
    `<backup_dir>/epoch_<n>.weights.npz` when taken, so a fit that crashes after
    that epoch still has them when it resumes; a resume from before it takes
    them again (the same weights: the fit is resumed exactly)."""

    def __init__(self, backup_dir: str, epoch: int | None):
        super().__init__()
        self.epoch = epoch
        self.weights = None
        self._path = os.path.join(backup_dir, f"epoch_{epoch}.weights.npz")
        if epoch and os.path.isfile(self._path):
            self.weights = _read_weights(self._path)

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 != self.epoch:
            return
        self.weights = self.model.get_weights()
        os.makedirs(os.path.dirname(self._path), exist_ok=True)
        _write_weights(self._path, self.weights)


def _write_weights(path: str, weights: list[np.ndarray]) -> None:
    """A model's weight list as one .npz, written whole (files.replacing_file)."""
    with files.replacing_file(path, suffix=".npz") as tmp:
        np.savez(tmp, **{f"w{i}": w for i, w in enumerate(weights)})


def _read_weights(path: str) -> list[np.ndarray]:
    """The weight list `_write_weights` wrote, in order."""
    with np.load(path) as saved:
        return [saved[f"w{i}"] for i in range(len(saved.files))]
