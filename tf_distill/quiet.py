"""Keeping TensorFlow's chatter off the terminal: only tf-distill's own logs show.

Imports nothing heavy, so the command line (cli.py) can use it before TensorFlow
loads.
"""

from __future__ import annotations

import contextlib
import logging
import os

_OURS = os.path.dirname(os.path.abspath(__file__))


@contextlib.contextmanager
def stderr_silenced(silenced: bool = True):
    """Points file descriptor 2 at /dev/null for the block.

    TensorFlow's C++ logs while it loads come before its log level can be set,
    and the LiteRT converter prints its progress there. An exception raised inside
    is still reported: Python prints it after the block, and its message carries
    the converter's error.
    """
    if not silenced:
        yield
        return
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


class OursOnly(logging.Filter):
    """Passes warnings and errors, and the info lines of tf-distill (and `also`);
    drops TensorFlow's info lines (saver timings, fingerprints, assets)."""

    def __init__(self, *also: str):
        super().__init__()
        self._also = {os.path.abspath(path) for path in also}

    def filter(self, record: logging.LogRecord) -> bool:
        path = os.path.abspath(record.pathname)
        return (
            record.levelno >= logging.WARNING
            or path.startswith(_OURS)
            or path in self._also
        )


def only_ours(*also: str) -> None:
    """Filters absl's log handler and TensorFlow's logger with OursOnly."""
    from absl import logging as absl_logging

    absl_logging.get_absl_handler().addFilter(OursOnly(*also))
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
