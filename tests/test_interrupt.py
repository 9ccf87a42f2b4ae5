"""Ctrl-C stops training even when Python swallows its first KeyboardInterrupt."""

import os
import signal
import threading

import keras
import numpy as np
import pytest

from tf_distill.training import interrupt

# The swallowed KeyboardInterrupt is the point of these tests, not a warning.
pytestmark = pytest.mark.filterwarnings(
    "ignore::pytest.PytestUnraisableExceptionWarning"
)


@pytest.fixture
def handler(monkeypatch):
    monkeypatch.setattr(interrupt, "_requested", threading.Event())
    previous = signal.getsignal(signal.SIGINT)
    interrupt.install()
    yield
    signal.signal(signal.SIGINT, previous)


class _PressesCtrlCWhenCollected:
    """A finaliser during which SIGINT arrives, as a tf.data iterator's may: Python
    prints "Exception ignored in" and goes on, so the KeyboardInterrupt is lost."""

    def __del__(self):
        os.kill(os.getpid(), signal.SIGINT)


class _CtrlCInAFinaliser(keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        if batch == 1:
            _PressesCtrlCWhenCollected()  # collected at once, its raise swallowed


def _fit(callbacks, seen):
    """Two epochs of 10 steps; `seen` gets the index of every step that ended."""
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(optimizer="sgd", loss="mse")
    x = np.zeros((40, 3), "float32")
    counter = keras.callbacks.LambdaCallback(
        on_train_batch_end=lambda batch, logs: seen.append(batch)
    )
    model.fit(
        x, x[:, :2], batch_size=4, epochs=2, verbose=0, callbacks=[counter, *callbacks]
    )


def test_a_swallowed_ctrl_c_is_lost_without_the_check(handler):
    seen = []
    _fit([_CtrlCInAFinaliser()], seen)
    assert len(seen) == 20  # what happened in CI: the run went on to the end
    assert interrupt.requested()


def test_the_check_stops_at_the_end_of_the_step_ctrl_c_was_pressed_in(handler):
    seen = []
    with pytest.raises(KeyboardInterrupt):
        _fit([_CtrlCInAFinaliser(), interrupt.Stop()], seen)
    assert seen == [0, 1]  # the step during which Ctrl-C was pressed


def test_the_check_does_nothing_without_ctrl_c(handler):
    seen = []
    _fit([interrupt.Stop()], seen)
    assert len(seen) == 20
