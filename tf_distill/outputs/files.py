"""Writing the run directory: every file appears whole or not at all.

Each output is written under a temporary name in the same folder, then renamed, so a
crash or a bad input never leaves a half-written model or JSON file behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import tempfile

import keras


def write_json(path: str, obj) -> None:
    """Writes `obj` as indented JSON to `path`, atomically."""
    with replacing_file(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(obj, f, indent=2, sort_keys=False)
            f.write("\n")


def read_json(path: str):
    """The JSON in `path`; a file that is not JSON (truncated, edited) is a
    ValueError naming it."""
    with open(path, encoding="utf-8") as f:
        try:
            return json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path} is not valid JSON ({e})") from None


def write_text(path: str, text: str) -> None:
    with replacing_file(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)


def save_keras(model: keras.Model, path: str, what: str | None = None) -> None:
    """`model.save(path)` (a .keras file), atomically, and only once Keras has
    loaded it back (safe_mode): a model with a layer Keras cannot rebuild (a
    custom layer not registered as serializable) saves without complaint and
    then never loads, so the run would end well and leave nothing usable.

    Raises:
        ValueError: the saved file does not load, naming the model (`what`, by
            default its name and `path`) and why.
    """
    with replacing_file(path, suffix=".keras") as tmp:
        model.save(tmp)
        try:
            keras.models.load_model(tmp, compile=False)
        except Exception as e:
            reason = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise ValueError(
                f"{what or f'{model.name} ({path})'} cannot be loaded back from a "
                f".keras file ({type(e).__name__}: {reason[:160]}); a custom layer "
                "must be registered with @keras.saving.register_keras_serializable() "
                "and implement get_config()"
            ) from None


@contextlib.contextmanager
def replacing_dir(path: str):
    """Yields a fresh temporary folder that replaces `path` when the block succeeds."""
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(path)}.", dir=parent)
    os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700; outputs are shared
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if os.path.isdir(path):
        shutil.rmtree(path)
    os.replace(tmp, path)


@contextlib.contextmanager
def replacing_file(path: str, suffix: str = ""):
    """Yields a temporary file name that replaces `path` when the block succeeds."""
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    tmp = None
    try:
        # Inside the try: a Ctrl-C at any point leaves no temporary file behind.
        fd, tmp = tempfile.mkstemp(
            prefix=f".{os.path.basename(path)}.", suffix=suffix, dir=parent
        )
        os.close(fd)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; outputs are shared
        yield tmp
    except BaseException:
        if tmp is not None:
            with contextlib.suppress(FileNotFoundError):
                os.remove(tmp)
        raise
    os.replace(tmp, path)


class Busy(ValueError):
    """Another process holds the run directory."""


@contextlib.contextmanager
def locked(folder: str):
    """Holds an exclusive lock on `folder` for the block: one run at a time.

    An OS lock (flock) on the folder itself: released when the process ends,
    however it ends, so a killed run never leaves the folder locked. While held,
    `<folder>/.lock` names the holder's process for the message of a second run.

    Raises:
        Busy: another process holds it (the message gives its PID).
    """
    os.makedirs(folder, exist_ok=True)
    note = os.path.join(folder, ".lock")
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        try:
            holder = open(note, encoding="utf-8").read().strip() or "unknown"
        except OSError:
            holder = "unknown"
        raise Busy(
            f"{folder} is in use by another run (process {holder}); wait for it "
            "to end or use another --workdir"
        ) from None
    try:
        with open(note, "w", encoding="utf-8") as f:
            f.write(f"{os.getpid()}\n")
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(note)
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def size_bytes(path: str) -> int:
    """Bytes on disk of a file, or of everything under a folder."""
    if os.path.isfile(path):
        return os.path.getsize(path)
    return sum(
        os.path.getsize(os.path.join(root, name))
        for root, _, names in os.walk(path)
        for name in names
    )


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
