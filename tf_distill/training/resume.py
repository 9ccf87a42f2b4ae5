"""Surviving a crash: resuming where a run stopped, and NaN stops.

A run keeps `<workdir>/.backup/`, removed when the run ends well:

    .backup/run.json                 the config and mode of the run in progress, the
                                     models it has trained and saved, and those it
                                     has also exported (finished)
    .backup/<model>/                 the interrupted fit's weights, optimizer,
                                     logs, random-number and early-stopping state
                                     as of its last backed-up epoch (backups.py)

Started again with the same config and mode, a run skips the models it finished,
exports those it had trained and saved but not exported (never training them
again), and resumes the interrupted one after its last backed-up epoch. With
another config or mode, the backup is stale: it is discarded and training starts
afresh.
"""

from __future__ import annotations

import json
import math
import os
import shutil

import keras
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
                finished = ", ".join(previous["finished"]) or "none"
                progress.say(
                    f"Resuming the interrupted run in {workdir} (finished: {finished})"
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


def history_so_far(backup_dir: str, epochs: int) -> dict[str, list[float]]:
    """The logs of the first `epochs` epochs from a backup; {} if none."""
    path = os.path.join(backup_dir, "history.json")
    if not os.path.isfile(path):
        return {}
    return {k: v[:epochs] for k, v in files.read_json(path).items()}


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
