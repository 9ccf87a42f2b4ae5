"""Writing the run directory: every file appears whole or not at all.

Each output is written under a temporary name in the same folder, then renamed, so a
crash or a bad input never leaves a half-written model or JSON file behind.
"""

from __future__ import annotations

import contextlib
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
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def write_text(path: str, text: str) -> None:
    with replacing_file(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)


def save_keras(model: keras.Model, path: str) -> None:
    """`model.save(path)` (a .keras file), atomically."""
    with replacing_file(path, suffix=".keras") as tmp:
        model.save(tmp)


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
    fd, tmp = tempfile.mkstemp(
        prefix=f".{os.path.basename(path)}.", suffix=suffix, dir=parent
    )
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; outputs are shared
    try:
        yield tmp
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise
    os.replace(tmp, path)


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
