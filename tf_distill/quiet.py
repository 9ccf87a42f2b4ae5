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


class RunLog(logging.Handler):
    """Every log line of a command-line run, in `<run dir>/run.log`.

    The terminal shows warnings, errors and the lines the run prints (a line per
    model, the summary); the info lines (the data, the config, each model's test
    measures, where files went) go here. Lines logged before the run directory
    exists are kept in memory and written when it does (`attach`), so a run
    refused before any work leaves no file behind.
    """

    def __init__(self):
        super().__init__(logging.INFO)
        self._pending: list[str] = []
        self._path: str | None = None

    def emit(self, record: logging.LogRecord) -> None:
        line = self.format(record)
        if self._path is None:
            self._pending.append(line)
            return
        with open(self._path, "a", encoding="utf-8") as f:
            f.write(line + "\n")

    def attach(self, path: str) -> None:
        self._path = path
        with open(path, "a", encoding="utf-8") as f:
            f.writelines(line + "\n" for line in self._pending)
        self._pending = []


_RUN_LOG: list[RunLog] = []


def log_to_run_dir(terminal: int = logging.WARNING) -> None:
    """Every line to run.log (RunLog); the terminal from level `terminal` up."""
    from absl import logging as absl_logging

    handler = absl_logging.get_absl_handler()
    run_log = RunLog()
    run_log.setFormatter(absl_logging.PythonFormatter())
    for f in handler.filters:
        run_log.addFilter(f)
    handler.setLevel(terminal)
    logging.getLogger("absl").addHandler(run_log)
    _RUN_LOG[:] = [run_log]


def attach_run_log(path: str) -> None:
    """Starts writing run.log at `path` (once the run directory exists); nothing
    when the program did not ask for it (the Python API)."""
    for run_log in _RUN_LOG:
        run_log.attach(path)
