"""Surviving a crash: backups every epoch, resuming where a run stopped, NaN stops.

A run keeps `<workdir>/.backup/`, removed when the run ends well:

    .backup/run.json                 the config and mode of the run in progress, the
                                     models it has trained and saved, and those it
                                     has also exported (finished)
    .backup/<model>/                 keras.callbacks.BackupAndRestore: weights and
                                     optimizer state (schedule step included) after
                                     the last completed epoch
    .backup/<model>/history.json     the per-epoch logs up to then
    .backup/<model>/early_stopping.json, best.weights.npz
                                     early stopping's patience count and best weights

Started again with the same config and mode, a run skips the models it finished,
exports those it had trained and saved but not exported (never training them again),
and resumes the interrupted one at its next epoch. With another config or mode, the
backup is stale: it is discarded and training starts afresh.
"""

from __future__ import annotations

import json
import math
import os
import shutil

import keras
import numpy as np
from absl import logging

from tf_distill.outputs import files
from tf_distill.training import progress


class RunState:
    """What `<workdir>/.backup/run.json` records of the run in progress."""

    def __init__(
        self, backup_root: str, *, config: dict, mode: str, finished: list[str] = ()
    ):
        """`backup_root`: the run's `.backup` folder (rundir.RunDir.backup_root);
        `finished`: models an earlier run finished that this one reuses."""
        self.root = backup_root
        workdir = os.path.dirname(os.path.abspath(backup_root))
        self._path = os.path.join(self.root, "run.json")
        config = json.loads(json.dumps(config))  # as run.json holds it: tuples->lists
        self._state = {"config": config, "mode": mode, "trained": [], "finished": []}
        if os.path.isfile(self._path):
            previous = files.read_json(self._path)
            if {k: previous.get(k) for k in ("config", "mode")} == {
                "config": config,
                "mode": mode,
            }:
                self._state = previous
                logging.info(
                    "Resuming the interrupted run in %s (finished: %s)",
                    workdir,
                    ", ".join(previous["finished"]) or "none",
                )
            else:
                logging.warning(
                    "Discarding the backup of an interrupted run in %s: it had "
                    "another config or mode",
                    workdir,
                )
                shutil.rmtree(self.root)
        elif os.path.isdir(self.root):
            shutil.rmtree(self.root)  # a backup without its record: unusable
        self._state["finished"] += [
            name for name in finished if name not in self._state["finished"]
        ]
        files.write_json(self._path, self._state)

    def finished(self, model_name: str) -> bool:
        """Trained, saved, exported and measured: nothing left to do."""
        return model_name in self._state["finished"]

    def trained(self, model_name: str) -> bool:
        """Trained and saved (model.keras, metrics.json), perhaps not yet exported:
        a rerun exports the saved model and never trains it again."""
        return model_name in self._state.get("trained", []) or self.finished(model_name)

    def mark_trained(self, model_name: str) -> None:
        self._state.setdefault("trained", []).append(model_name)
        files.write_json(self._path, self._state)
        shutil.rmtree(self.model_dir(model_name), ignore_errors=True)

    def mark_finished(self, model_name: str) -> None:
        self._state["finished"].append(model_name)
        files.write_json(self._path, self._state)
        shutil.rmtree(self.model_dir(model_name), ignore_errors=True)

    def model_dir(self, model_name: str) -> str:
        return os.path.join(self.root, model_name)

    def close(self) -> None:
        """The run ended well: nothing left to resume."""
        shutil.rmtree(self.root, ignore_errors=True)


def start_epoch(backup_dir: str) -> int:
    """The epoch a resumed fit starts at: 0 without a backup.

    Reads the `training_metadata.json` that keras.callbacks.BackupAndRestore
    writes, so the input pipeline can start at that epoch's batch order too.
    """
    path = os.path.join(backup_dir, "training_metadata.json")
    return int(files.read_json(path)["epoch"]) if os.path.isfile(path) else 0


class HistoryBackup(progress.EpochTimer):
    """Keeps every epoch's logs in `<backup_dir>/history.json`.

    Listed *before* BackupAndRestore, so that a crash between the two leaves a
    history one epoch ahead of the weights, which the resumed run cuts back
    (`history_so_far`), never one behind.
    """

    def __init__(self, backup_dir: str, history: dict[str, list[float]]):
        super().__init__()
        self._path = os.path.join(backup_dir, "history.json")
        self.history = history

    def on_epoch_end(self, epoch, logs=None):
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(float(value))
        # Kept with the logs, so a resumed run's training time counts the epochs
        # before the crash too.
        self.history.setdefault("epoch_seconds", []).append(self.epoch_seconds())
        files.write_json(self._path, self.history)


class SeedBackup(keras.callbacks.Callback):
    """The model's random-number state (each keras.random.SeedGenerator: dropout,
    random augmentation, a diffusion trainer's noise and time draws) after every
    epoch, put back when training resumes.

    BackupAndRestore saves `model.weights`, which holds none of it, so a resumed
    fit drew epoch 0's randomness again (a resumed diffusion round differed from
    an uninterrupted one by up to 6.7e-4 in its weights). The states are
    `model.variables` less `model.weights`, in their (fixed) order; one file per
    epoch (`seeds_<epoch>.npz`, the last two kept), so a crash between this
    backup and the weights' still finds the file of the epoch they hold.
    """

    def __init__(self, backup_dir: str, start_epoch: int):
        super().__init__()
        self._dir = backup_dir
        self._start_epoch = start_epoch

    def _states(self):
        weights = {id(w) for w in self.model.weights}
        return [v for v in self.model.variables if id(v) not in weights]

    def _path(self, epoch: int) -> str:
        return os.path.join(self._dir, f"seeds_{epoch}.npz")

    def on_train_begin(self, logs=None):
        path = self._path(self._start_epoch - 1)
        if self._start_epoch and os.path.isfile(path):
            with np.load(path) as saved:
                for i, state in enumerate(self._states()):
                    state.assign(saved[f"s{i}"])

    def on_epoch_end(self, epoch, logs=None):
        os.makedirs(self._dir, exist_ok=True)
        states = {f"s{i}": np.asarray(v) for i, v in enumerate(self._states())}
        with files.replacing_file(self._path(epoch), suffix=".npz") as tmp:
            np.savez(tmp, **states)
        stale = self._path(epoch - 2)
        if os.path.isfile(stale):
            os.remove(stale)


def history_so_far(backup_dir: str, epochs: int) -> dict[str, list[float]]:
    """The logs of the first `epochs` epochs from a backup; {} if none."""
    path = os.path.join(backup_dir, "history.json")
    if not os.path.isfile(path):
        return {}
    return {k: v[:epochs] for k, v in files.read_json(path).items()}


class ResumableEarlyStopping(keras.callbacks.EarlyStopping):
    """EarlyStopping whose patience count and best weights survive a crash.

    keras.callbacks.EarlyStopping starts afresh in every `fit`, so a resumed run
    would forget the best epoch before the crash and restore the best of the
    epochs after it. This one keeps its state in `<backup_dir>/early_stopping.json`
    and the best weights in `best.weights.npz` after every epoch (before the
    weights' backup, like HistoryBackup), and reloads them when training resumes.
    Unlike EarlyStopping, it does not restore the best weights at the end.
    """

    def __init__(self, backup_dir: str, **kwargs):
        super().__init__(**kwargs)
        self._state_path = os.path.join(backup_dir, "early_stopping.json")
        self._weights_path = os.path.join(backup_dir, "best.weights.npz")

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        if not os.path.isfile(self._state_path):
            return
        state = files.read_json(self._state_path)
        self.wait, self.best_epoch = state["wait"], state["best_epoch"]
        self.best = float(state["best"]) if state["best"] is not None else self.best
        if os.path.isfile(self._weights_path):
            with np.load(self._weights_path) as saved:
                self.best_weights = [saved[f"w{i}"] for i in range(len(saved.files))]

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
        best_before = self.best_weights
        super().on_epoch_end(epoch, logs)
        if self.best_weights is not None and self.best_weights is not best_before:
            with files.replacing_file(self._weights_path, suffix=".npz") as tmp:
                np.savez(tmp, **{f"w{i}": w for i, w in enumerate(self.best_weights)})
        best = None if self.best is None else float(self.best)
        state = {"wait": self.wait, "best": best, "best_epoch": self.best_epoch}
        files.write_json(self._state_path, state)


class TrainingDiverged(ValueError):
    """A loss became NaN or infinite."""


class StopOnNaN(keras.callbacks.Callback):
    """Stops training at the first step whose loss is NaN or infinite.

    Unlike keras.callbacks.TerminateOnNaN, which only stops the loop, it raises
    `TrainingDiverged` naming the model, the loss (total, hard or soft) and the
    step, so the run exits non-zero and writes no model.
    """

    LOSSES = ("loss", "hard_loss", "soft_loss")

    def __init__(
        self,
        model_name: str,
        steps_per_epoch: int,
        learning_rate_key: str = "config.optimizer.learning_rate",
    ):
        super().__init__()
        self._learning_rate_key = learning_rate_key
        self._model_name = model_name
        self._steps_per_epoch = steps_per_epoch
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        for name in self.LOSSES:
            value = (logs or {}).get(name)
            if value is not None and not math.isfinite(float(value)):
                step = self._epoch * self._steps_per_epoch + batch + 1
                raise TrainingDiverged(
                    f"{self._model_name}: {name} became {float(value)} at epoch "
                    f"{self._epoch + 1}, step {batch + 1} (training step {step}). "
                    "Nothing was saved for this model. Try a lower "
                    f"{self._learning_rate_key}."
                )
