"""The teacher's cached logits on disk, in the run directory, row i for example i.

    <run>/teacher_cache/<name>/manifest.json    what the rows were made from
    <run>/teacher_cache/<name>/rows_<start>.npz  rows [start, start + shard)

The manifest records what the rows were made from: the teacher's weights, the
images and the settings that change the logits (dtype, top-k, views). A later run
that asks for the same three reads the rows back instead of running the teacher
(a second `--model=distilling` with another T or alpha); one that asks for
anything else is told in one line what differs and the rows are made anew, since
they are derived data and nothing of the user's is lost.

Why shards of .npz files: each is written whole and renamed into place, so a crash
loses at most the shard in flight, and the same command resumes the pass at the
first shard missing. The manifest says `complete` only after the last one. A
finished cache is small (rows x classes numbers: 2.2 MB for MNIST's 55,000 images
in float32) and is read back into memory whole. Workers that share the folder
split the pass by shard (`Part`): each writes its own, the chief keeps the
manifest.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
import time
from collections.abc import Callable

import keras
import numpy as np
from absl import logging

from tf_distill.outputs import files
from tf_distill.training import interrupt, progress

SHARD = 8192  # rows per file


def fingerprint(*parts) -> str:
    """16 hex digits identifying arrays, image files (their paths, sizes and
    times), models (their weights) and plain values."""
    digest = hashlib.sha256()
    for part in parts:
        if isinstance(part, keras.Model):
            for weight in part.weights:
                value = np.asarray(weight.numpy())
                digest.update(f"{weight.path}{value.shape}{value.dtype}".encode())
                digest.update(np.ascontiguousarray(value).tobytes())
        elif hasattr(part, "fingerprint"):  # ImageFiles, records.RecordImages
            digest.update(part.fingerprint().encode())
        elif isinstance(part, np.ndarray):
            digest.update(f"{part.shape}{part.dtype}".encode())
            digest.update(np.ascontiguousarray(part).tobytes())
        else:
            digest.update(repr(part).encode())
    return digest.hexdigest()[:16]


@dataclasses.dataclass(frozen=True)
class Part:
    """This worker's part of a pass split between `count` workers that all see
    the cache's folder (config.distribute.shared_workdir): worker `index` (0,
    the chief, keeps the manifest) computes every count-th shard from its index,
    then waits for the others' shards, giving up when none appeared for
    `patience` seconds."""

    index: int
    count: int
    patience: float = 300.0


def cached_rows(
    folder: str,
    *,
    made_from: dict[str, str],
    count: int,
    compute: Callable[[int, int], dict[str, np.ndarray]],
    what: str,
    shard: int = SHARD,
    part: Part | None = None,
) -> tuple[dict[str, np.ndarray], float]:
    """The rows `compute(start, stop)` gives for examples 0..count-1, from
    `folder` when it holds them for the same `made_from`, else computed there.

    Args:
        folder: the cache's folder in the run directory.
        made_from: fingerprints of what the rows depend on ("teacher", "data",
            "settings"); any change makes the rows anew.
        count: the number of examples.
        compute: rows [start, stop) as named arrays of equal length.
        what: what the rows are, for the log ("the teacher's logits on 55,000
            training images").
        shard: rows per file (with `part`, at most an equal share of `count`,
            so that every worker has a shard to compute).
        part: this worker's part of a split pass; None: every shard here.

    Returns:
        (the named arrays of all rows, the seconds spent computing; 0 if read).
    """
    if part is not None:
        shard = min(shard, max(1, -(-count // part.count)))
    manifest = {"made_from": made_from, "count": count, "shard": shard}
    path = os.path.join(folder, "manifest.json")
    if part is None or part.index == 0:
        complete = _open(folder, manifest, what)
    else:  # the chief says which rows the folder holds
        complete = _await(lambda: _read_manifest(path, manifest), folder, what, part)
    if complete:
        return _read(folder, count, shard), 0.0
    seconds, made = _fill(folder, count, shard, compute, what, part)
    if part is not None:
        # The others make shards as large at about our pace: a slow teacher
        # may take longer than part.patience over one.
        patience = max(part.patience, 3 * seconds / max(made, 1))
        _await(
            lambda: None if _missing(folder, count, shard) else True,
            folder,
            what,
            dataclasses.replace(part, patience=patience),
        )
    if part is None or part.index == 0:
        files.write_json(path, {**manifest, "complete": True})
    logging.info("Cached %s in %.1f s, in %s", what, seconds, folder)
    return _read(folder, count, shard), seconds


def _open(folder: str, manifest: dict, what: str) -> bool:
    """Whether `folder` holds every row `manifest` names; else it is made ready
    for them (emptied when it holds other rows) and marked incomplete."""
    path = os.path.join(folder, "manifest.json")
    old = files.read_json(path) if os.path.isfile(path) else None
    if old is not None and _same(old, manifest):
        if old.get("complete"):
            logging.info(
                "Read %s from %s (made from the same teacher, data and settings)",
                what,
                folder,
            )
            return True
        logging.info("Resuming %s in %s at its first missing shard", what, folder)
    elif old is not None:
        made_from = manifest["made_from"]
        differs = [k for k in made_from if old["made_from"].get(k) != made_from[k]]
        logging.info(
            "The cache in %s was made from another %s: making %s anew",
            folder,
            " and ".join(differs) or "layout",
            what,
        )
        shutil.rmtree(folder)
    os.makedirs(folder, exist_ok=True)
    files.write_json(path, {**manifest, "complete": False})
    return False


def _read_manifest(path: str, manifest: dict):
    """None until `path` is the manifest of the same rows; then whether they
    are complete."""
    try:
        old = files.read_json(path)
    except (OSError, ValueError):  # not there yet, or being replaced
        return None
    return bool(old.get("complete")) if _same(old, manifest) else None


def _await(ready: Callable, folder: str, what: str, part: Part):
    """`ready()`'s first value that is not None, polled while the other workers
    write `folder`; an error once nothing in it changed for `part.patience`
    seconds."""
    last_change, seen = time.monotonic(), None
    while True:
        value = ready()
        if value is not None:
            return value
        now_seen = sorted(os.listdir(folder)) if os.path.isdir(folder) else []
        if now_seen != seen:
            seen, last_change = now_seen, time.monotonic()
        elif time.monotonic() - last_change > part.patience:
            raise ValueError(  # a setting to fix: main.py says it in one line
                f"{what}: worker {part.index + 1} of {part.count} saw no new "
                f"shard of the other workers in {folder} for {part.patience:.0f} s; "
                "config.distribute.shared_workdir=True needs a --workdir that "
                "every worker sees (a shared file system)"
            )
        interrupt.check()
        time.sleep(0.2)


def _same(old: dict, manifest: dict) -> bool:
    return all(old.get(k) == v for k, v in manifest.items())


def _shard_path(folder: str, start: int) -> str:
    return os.path.join(folder, f"rows_{start:010d}.npz")


def _missing(folder: str, count: int, shard: int) -> list[int]:
    """The first rows of the shards not yet in `folder`."""
    return [
        s for s in range(0, count, shard) if not os.path.isfile(_shard_path(folder, s))
    ]


def _fill(folder, count, shard, compute, what, part=None) -> tuple[float, int]:
    """Computes every missing shard (of this worker's `part`); the seconds it
    took and the number of shards."""
    begin = time.perf_counter()
    missing = _missing(folder, count, shard)
    if part is not None:
        missing = [s for s in missing if (s // shard) % part.count == part.index]
    todo = sum(min(count, s + shard) - s for s in missing)
    if part is not None:
        logging.info(
            "Worker %d of %d computes %d of the %d rows of %s",
            part.index + 1,
            part.count,
            todo,
            count,
            what,
        )
    with progress.Pass(f"Caching {what}", todo) as shown:
        for start in missing:
            stop = min(count, start + shard)
            rows = compute(start, stop)
            with files.replacing_file(_shard_path(folder, start), suffix=".npz") as tmp:
                np.savez(tmp, **rows)
            interrupt.check()  # the shard is kept: a rerun resumes after it
            shown.update(stop - start)
    return time.perf_counter() - begin, len(missing)


def _read(folder: str, count: int, shard: int) -> dict[str, np.ndarray]:
    parts: dict[str, list[np.ndarray]] = {}
    for start in range(0, count, shard):
        with np.load(_shard_path(folder, start)) as rows:
            for name in rows.files:
                parts.setdefault(name, []).append(rows[name])
    return {name: np.concatenate(arrays) for name, arrays in parts.items()}
