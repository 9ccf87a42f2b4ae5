"""Ctrl-C and SIGTERM stop the run, even when Python swallows their first raise.

SIGTERM (what Kubernetes, Slurm and `timeout` send) is handled as Ctrl-C is: a
KeyboardInterrupt, so the unfinished model's backup stays for the rerun to resume.

Python raises KeyboardInterrupt at whatever bytecode the main thread runs next. When
that is a finaliser (a tf.data iterator's or a tensor's `__del__`, run by the garbage
collector in the middle of a training step), Python prints "Exception ignored in" and
carries on, and the run finishes as if the key had not been pressed (seen once in CI:
a SIGINT during the first epochs, then exit 0 after the last). So `install` also
remembers the request, and `check` raises again from ordinary code: `Stop` does it
after every training step, the teacher's caching pass after every shard.

Only the command line installs the handler; a program using the Python API keeps
Python's own.
"""

from __future__ import annotations

import signal
import threading

import keras

SIGNALS = (signal.SIGINT, signal.SIGTERM)

_requested = threading.Event()
_received: list[int] = []  # the signals that arrived, first first
_installed: list[bool] = []
_in_fit: list[bool] = []  # non-empty while a Stop callback's fit runs


def install() -> None:
    """Makes SIGINT and SIGTERM raise KeyboardInterrupt and be remembered."""
    for signum in SIGNALS:
        signal.signal(signum, _handler)
    _installed[:] = [True]


def reinstall() -> None:
    """`install` again if it was, after a library took a signal over (TensorFlow's
    multi-worker preemption notifier takes SIGTERM)."""
    if _installed:
        install()


def _handler(signum, frame):
    del frame
    _received.append(signum)
    first = not _requested.is_set()
    _requested.set()
    if first and _in_fit:
        # A training step is under way: `Stop` raises when it ends, at a point
        # where TensorFlow's state is whole (a raise in the middle of a step's
        # Python has crashed the interpreter at exit). A second signal raises now.
        return
    raise KeyboardInterrupt


def requested() -> bool:
    return _requested.is_set()


def received() -> int:
    """The first signal that asked the run to stop; SIGINT when none did (Python's
    own handler raised the KeyboardInterrupt)."""
    return _received[0] if _received else signal.SIGINT


def check() -> None:
    """Raises KeyboardInterrupt if Ctrl-C was pressed, even if its raise was lost
    or deferred."""
    if _requested.is_set():
        _in_fit.clear()  # the fit ends here: a later signal raises at once
        raise KeyboardInterrupt


class Stop(keras.callbacks.Callback):
    """Where a fit stops for Ctrl-C or SIGTERM: after the step it arrived in (the
    handler defers to it while the fit runs) and, placed after the backups, after
    every epoch's backup is written (so a resume loses nothing)."""

    def on_train_begin(self, logs=None):
        _in_fit.append(True)  # one per fit under way (concurrent.py runs several)

    def on_train_end(self, logs=None):
        if _in_fit:
            _in_fit.pop()

    def on_train_batch_end(self, batch, logs=None):
        check()

    def on_epoch_end(self, epoch, logs=None):
        check()
