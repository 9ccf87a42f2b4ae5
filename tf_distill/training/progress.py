"""TensorBoard logs: `tensorboard/<config name>/<model>/{train,validation}`.

Every epoch the fit validates (each, unless config.validation_every_epochs; Keras'
own callback): `epoch_loss`, `epoch_accuracy`,
`epoch_learning_rate`, and for the distilled student `epoch_hard_loss`,
`epoch_soft_loss` and `epoch_agreement` (top-1 agreement with the teacher), in
`train/` and, the learning rate aside, in `validation/` (the soft loss and the
agreement there only with config.distill.validation_teacher). Every
`config.tensorboard.every_steps` training steps, in `train/`: the same training
scalars as `batch_<name>` (running means over the epoch so far, as Keras' progress
bar shows them) and `batch_learning_rate`, with the global training step as x.
"""

from __future__ import annotations

import sys
import time

import keras
import tqdm
from absl import logging


class TensorBoard(keras.callbacks.TensorBoard):
    """keras.callbacks.TensorBoard, plus step-level scalars and the learning rate.

    Keras' `update_freq=N` counts calls of the training function, not steps (one
    call runs `steps_per_execution` steps), restarts at 0 in a resumed run and
    leaves out the learning rate; this one logs at the global training step.
    """

    def __init__(
        self,
        log_dir: str,
        *,
        every_steps: int,
        steps_per_epoch: int,
        epochs: list[int] | None = None,
    ):
        """`epochs`: the 1-based epochs whose scalars are written (those the fit
        validates: each epoch's costs about as much as a 5-step digits epoch's
        training); None: every epoch."""
        super().__init__(log_dir=log_dir, profile_batch=0)  # epoch-level scalars
        self._every = every_steps
        self._steps_per_epoch = steps_per_epoch
        self._epochs = None if epochs is None else set(epochs)
        self._epoch = 0
        self._last_step = None  # the last step whose scalars were written

    def on_epoch_end(self, epoch, logs=None):
        if self._epochs is None or epoch + 1 in self._epochs:
            super().on_epoch_end(epoch, logs)

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
    """What the terminal shows of a model's fit, and the line per epoch that names
    it (Keras' own says `Epoch 3/100`):

        distilling epoch 3/100: loss 0.3095 - accuracy 0.9162 - ... (1.2 s)

    The per-epoch lines always go to `log_path` (the run's epochs.log); standard
    output gets them too with absl's `--verbosity=1`. Otherwise a terminal shows
    one live bar per model (epoch k of N, elapsed and remaining time, the loss and
    validation accuracy; tqdm, which TensorFlow Datasets already installs) and
    anything else (CI, a log file) nothing while it trains; both then get one
    line when the model finishes:

        distilling: 300 epochs in 29.7 s, loss 0.0980, val_accuracy 0.9583
    """

    SHOWN = ("loss", "val_accuracy", "val_loss")

    def __init__(self, name: str, epochs: int, log_path: str | None = None):
        super().__init__()
        self._name, self._epochs, self._log_path = name, epochs, log_path
        self._every_epoch = logging.get_verbosity() >= 1
        self._bar = None
        self._seconds, self._run, self._last = 0.0, 0, {}

    def on_train_begin(self, logs=None):
        if not self._every_epoch and sys.stdout.isatty():
            self._bar = tqdm.tqdm(
                total=self._epochs, desc=self._name, unit="epoch", leave=False
            )

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        seconds = self.epoch_seconds()
        self._seconds, self._run, self._last = self._seconds + seconds, epoch + 1, logs
        values = " - ".join(f"{k} {float(v):.4f}" for k, v in logs.items())
        line = (
            f"{self._name} epoch {epoch + 1}/{self._epochs}: {values} ({seconds:.1f} s)"
        )
        if self._log_path:
            with open(self._log_path, "a", encoding="utf-8") as f:
                f.write(line + "\n")
        if self._every_epoch:
            print(line, flush=True)
        elif self._bar is not None:
            self._bar.update(epoch + 1 - self._bar.n)  # a resumed fit starts later
            self._bar.set_postfix(
                {k: f"{float(logs[k]):.4f}" for k in self.SHOWN if k in logs},
                refresh=True,
            )

    def on_train_end(self, logs=None):
        if self._bar is not None:
            self._bar.close()
        shown = ", ".join(
            f"{k} {float(self._last[k]):.4f}" for k in self.SHOWN if k in self._last
        )
        print(
            f"{self._name}: {self._run} epochs in {self._seconds:.1f} s, {shown}",
            flush=True,
        )


class Pass:
    """The progress of a long pass (the teacher's caching pass, reading every
    record of a data set, a model's export, a sampler's quality): on a terminal
    a tqdm bar with the rate and the time left, removed when the pass ends;
    elsewhere (CI, a log file) a plain line every `every` seconds. A pass that
    took `every` seconds or more then says so in one line, on both.

        with progress.Pass("the teacher's logits on 50000 train images", 50000) as p:
            for rows in ...:
                p.update(len(rows))
    """

    def __init__(self, what: str, total: int, unit: str = "rows", every=10.0):
        self._what, self._total, self._unit, self._every = what, total, unit, every
        self._begin = self._said = time.perf_counter()
        self._done = 0
        self._bar = (
            tqdm.tqdm(total=total, desc=what, unit=unit, leave=False)
            if sys.stdout.isatty()
            else None
        )

    def update(self, count: int) -> None:
        self._done += count
        if self._bar is not None:
            self._bar.update(count)
            return
        now = time.perf_counter()
        if now - self._said >= self._every and self._done < self._total:
            rate = self._done / (now - self._begin)
            say(
                f"{self._what}: {self._done} of {self._total} {self._unit}, "
                f"{rate:.1f}/s, about {(self._total - self._done) / rate:.0f} s left"
            )
            self._said = now

    def __enter__(self) -> Pass:
        return self

    def __exit__(self, exc_type, *exc) -> None:
        if self._bar is not None:
            self._bar.close()
        seconds = time.perf_counter() - self._begin
        if exc_type is None and seconds >= self._every:
            say(f"{self._what}: {self._done} {self._unit} in {seconds:.1f} s")


def say(line: str) -> None:
    """A line for the person watching (standard output) and for run.log."""
    print(line, flush=True)
    logging.info("%s", line)
