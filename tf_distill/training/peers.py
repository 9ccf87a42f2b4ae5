"""Waiting for the other workers in plain Python, before TensorFlow does.

`MultiWorkerMirroredStrategy()` connects to every task of TF_CONFIG inside one C++
call that holds the GIL for up to an hour when a peer is missing: nothing is
printed, no Python signal handler runs (Ctrl-C and SIGTERM do nothing) and no
timeout can be set. So `wait_for_peers` first listens on this task's own address
and connects to every other task's, saying which are missing, until all answer or
`config.distribute.connect_timeout` seconds pass (then one line, exit 1). Ctrl-C
and SIGTERM stop it within a poll. It keeps listening for a moment after seeing
everyone, so that a peer still polling sees this task too, then frees the port
for TensorFlow's server.

`guarded` is the backstop around the strategy's construction itself (a peer that
dies in between): faulthandler's watchdog, which needs no GIL, ends the process
after the same timeout; and SIGINT is the default action there, so Ctrl-C still
kills it.
"""

from __future__ import annotations

import contextlib
import faulthandler
import json
import os
import signal
import socket
import time

from absl import logging

_POLL_SECONDS = 0.5
_SAY_EVERY_SECONDS = 10.0
_LINGER_SECONDS = 3.0  # > a few polls: every peer still polling sees this task


def cluster() -> tuple[str, list[str]]:
    """(this task's address, the other tasks' addresses) from TF_CONFIG."""
    spec = json.loads(os.environ["TF_CONFIG"])
    task = spec.get("task", {})
    addresses = {
        (job, i): address
        for job, tasks in spec.get("cluster", {}).items()
        for i, address in enumerate(tasks)
    }
    own = addresses.pop((task.get("type"), int(task.get("index", 0))), None)
    if own is None:
        raise ValueError(
            f"TF_CONFIG's task {task} is not in its cluster {spec.get('cluster')}"
        )
    return own, sorted(addresses.values())


def _split(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


def _answers(address: str) -> bool:
    try:
        with socket.create_connection(_split(address), timeout=_POLL_SECONDS):
            return True
    except OSError:
        return False


def wait_for_peers(timeout: float) -> None:
    """Returns once every other task of TF_CONFIG accepts a connection.

    Raises:
        ValueError: some did not within `timeout` seconds (naming them).
    """
    own, others = cluster()
    if not others:
        return
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        # The address TF_CONFIG names for this task, as TensorFlow's server
        # would bind it; unavailable (in use, not ours): peers then wait for
        # TensorFlow's own server instead.
        with contextlib.suppress(OSError):
            listener.bind(_split(own))
            listener.listen(len(others) + 1)
        listener.setblocking(False)
        _poll(others, timeout, listener)
        _linger(listener)
    finally:
        listener.close()


def _poll(others: list[str], timeout: float, listener: socket.socket) -> None:
    start = last_said = time.monotonic()
    missing = list(others)
    # Warnings: the terminal shows them (info lines go to run.log, which no
    # worker has before the cluster is up), and a job that waits needs saying.
    logging.warning(
        "Waiting for workers %s (TF_CONFIG), for up to %.0f s "
        "(config.distribute.connect_timeout)",
        ", ".join(missing),
        timeout,
    )
    while True:
        _accept_all(listener)
        missing = [a for a in missing if not _answers(a)]
        if not missing:
            return
        now = time.monotonic()
        if now - start >= timeout:
            raise ValueError(
                f"workers {', '.join(missing)} did not start within {timeout:.0f} s "
                "(config.distribute.connect_timeout): start them with the same "
                "TF_CONFIG cluster, or check their addresses"
            )
        if now - last_said >= _SAY_EVERY_SECONDS:
            logging.warning(
                "Still waiting for %s (%.0f s of %.0f s)",
                ", ".join(missing),
                now - start,
                timeout,
            )
            last_said = now
        time.sleep(_POLL_SECONDS)


def _accept_all(listener: socket.socket) -> None:
    """Accepts and closes the peers' probes (the connection was the answer)."""
    while True:
        try:
            connection, _ = listener.accept()
        except OSError:  # none waiting, or not listening
            return
        connection.close()


def _linger(listener: socket.socket) -> None:
    end = time.monotonic() + _LINGER_SECONDS
    while time.monotonic() < end:
        _accept_all(listener)
        time.sleep(_POLL_SECONDS / 5)


@contextlib.contextmanager
def guarded(timeout: float):
    """Around the strategy's construction: ended by faulthandler after `timeout`
    seconds (exit 1, saying why first), and killable with Ctrl-C."""
    logging.info(
        "Connecting to the workers; the process ends if this takes over %.0f s "
        "(config.distribute.connect_timeout)",
        timeout,
    )
    previous = signal.signal(signal.SIGINT, signal.SIG_DFL)
    with open(os.devnull, "w") as devnull:
        faulthandler.dump_traceback_later(timeout, exit=True, file=devnull)
        try:
            yield
        finally:
            faulthandler.cancel_dump_traceback_later()
            signal.signal(signal.SIGINT, previous)
