"""TensorBoard logs: `tensorboard/<config name>/<model>/{train,validation}`.

Every epoch (Keras' own callback): `epoch_loss`, `epoch_accuracy`,
`epoch_learning_rate`, and for the distilled student `epoch_hard_loss`,
`epoch_soft_loss` and `epoch_agreement` (top-1 agreement with the teacher), in
`train/` and, the learning rate aside, in `validation/` (the soft loss and the
agreement there only with config.distill.validation_teacher). Every
`config.tensorboard.every_steps` training steps, in `train/`: the same training
scalars as `batch_<name>` (running means over the epoch so far, as Keras' progress
bar shows them) and `batch_learning_rate`, with the global training step as x.
"""

from __future__ import annotations

import time

import keras


class TensorBoard(keras.callbacks.TensorBoard):
    """keras.callbacks.TensorBoard, plus step-level scalars and the learning rate.

    Keras' `update_freq=N` counts calls of the training function, not steps (one
    call runs `steps_per_execution` steps), restarts at 0 in a resumed run and
    leaves out the learning rate; this one logs at the global training step.
    """

    def __init__(self, log_dir: str, *, every_steps: int, steps_per_epoch: int):
        super().__init__(log_dir=log_dir, profile_batch=0)  # epoch-level scalars
        self._every = every_steps
        self._steps_per_epoch = steps_per_epoch
        self._epoch = 0
        self._last_step = None  # the last step whose scalars were written

    def on_epoch_begin(self, epoch, logs=None):
        super().on_epoch_begin(epoch, logs)
        self._epoch = epoch
        if self._last_step is None:  # a resumed run starts at a later epoch
            self._last_step = epoch * self._steps_per_epoch

    def on_train_batch_end(self, batch, logs=None):
        super().on_train_batch_end(batch, logs)
        if not self._every or not logs:
            return
        # `batch` is the last step of the call, 0-based within the epoch.
        step = self._epoch * self._steps_per_epoch + batch + 1
        if step // self._every == self._last_step // self._every:
            return  # no multiple of every_steps passed since the last write
        self._last_step = step
        scalars = dict(logs)
        scalars["learning_rate"] = float(self.model.optimizer.learning_rate)
        with self._train_writer.as_default():
            for name, value in scalars.items():
                self.summary.scalar(f"batch_{name}", value, step=step)


class EpochTimer(keras.callbacks.Callback):
    """Times each epoch: `epoch_seconds()` in `on_epoch_end`."""

    def __init__(self):
        super().__init__()
        self._start = None

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def epoch_seconds(self) -> float:
        return time.perf_counter() - self._start


class EpochLine(EpochTimer):
    """One line per epoch that names the model (Keras' own says `Epoch 3/100`):

    distilling epoch 3/100: loss 0.3095 - accuracy 0.9162 - ... (1.2 s)
    """

    def __init__(self, name: str, epochs: int):
        super().__init__()
        self._name, self._epochs = name, epochs

    def on_epoch_end(self, epoch, logs=None):
        values = " - ".join(f"{k} {float(v):.4f}" for k, v in (logs or {}).items())
        seconds = self.epoch_seconds()
        epoch_of = f"epoch {epoch + 1}/{self._epochs}"
        print(f"{self._name} {epoch_of}: {values} ({seconds:.1f} s)", flush=True)
