"""What a run does with the finished models already in its run directory.

The rule, for every model the mode would train (`config.finished`):

- trained with this config (the same `config_fingerprint` in its metrics.json):
  reused, and the log says so; `--config.finished=replace` trains it again;
- trained with another config: the run is refused before any work, naming the
  keys that differ, since replacing it would leave models and a report of two
  configs side by side; `--config.finished=replace` replaces it, and first
  removes what depended on it (`Rules.dependents`: the students distilled from a
  replaced teacher, the report), so that nothing is left looking valid.

A model a crashed run left half done is not finished: its backup resumes it
(training/resume.py). Only the chief decides; other workers write no models.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from collections.abc import Callable

from absl import logging

from tf_distill.outputs import files
from tf_distill.outputs.rundir import RunDir

REUSE, REPLACE = "reuse", "replace"
POLICIES = (REUSE, REPLACE)
# Keys that change no model: left out of fingerprints and comparisons.
IGNORED = ("name", "finished", "backup_every_seconds", "concurrent_fits")
# Keys added since runs recorded their configs, with the value that does what
# runs did before them: at that value the key is left out of fingerprints and
# comparisons, so a run directory of an older tf-distill is reused, not refused.
ADDED = {("teacher", "keep"): "auto"}


def without_added_defaults(config: dict) -> dict:
    """`config` (a plain dict) without the ADDED keys that hold their old value."""
    out = dict(config)
    for (section, key), value in ADDED.items():
        if isinstance(out.get(section), dict) and out[section].get(key) == value:
            out[section] = {k: v for k, v in out[section].items() if k != key}
    return out


@dataclasses.dataclass(frozen=True)
class Rules:
    """A task's answers: which finished models a mode trains again, and what
    must go when one of them is replaced (paths relative to the run directory)."""

    writes: Callable[[str], bool]  # a finished model's name -> trained again?
    # (a replaced model, every finished model's name) -> paths to remove first
    dependents: Callable[[str, list[str]], tuple[str, ...]]
    # A model's metrics.json -> finished (not only trained: a crash before its
    # export leaves it to the resumed run, training/resume.RunState)
    finished: Callable[[dict], bool] = lambda metrics: True


def finished_models(run_dir: RunDir) -> list[str]:
    """Names (`teacher`, `student_seed43`, `sweep/T2_a0.5`) of the models in the
    run directory that have a model.keras and a metrics.json."""
    found = []
    for folder, _, names in os.walk(run_dir.root):
        if "model.keras" in names and "metrics.json" in names:
            name = os.path.relpath(folder, run_dir.root)
            if not name.startswith("."):  # a backup or a worker's own folder
                found.append(name.replace(os.sep, "/"))
    return sorted(found)


def plan(run_dir: RunDir, config: dict, fingerprint: str, rules: Rules) -> list[str]:
    """The finished models this run reuses, after refusing or clearing the ones
    it would replace (see the module's rule).

    Raises:
        ValueError: a model the mode trains was finished with another config,
            and `config["finished"]` is not "replace".
    """
    policy = config.get("finished", REUSE)
    if policy not in POLICIES:
        raise ValueError(
            f"config.finished={policy!r}: expected one of {', '.join(POLICIES)}"
        )
    present = finished_models(run_dir)
    recorded = {
        n: files.read_json(run_dir.model(n).metrics) for n in present if rules.writes(n)
    }
    mine = [n for n, metrics in recorded.items() if rules.finished(metrics)]
    if policy == REPLACE:
        for name in mine:
            _remove(run_dir, rules.dependents(name, present), because=name)
        return []
    same = [n for n in mine if recorded[n].get("config_fingerprint") == fingerprint]
    other = {
        n: differing(recorded[n].get("config"), config) for n in mine if n not in same
    }
    if other:
        name, keys = next(iter(other.items()))
        shown = ", ".join(keys[:5]) + (", ..." if len(keys) > 5 else "")
        raise ValueError(
            f"{run_dir.root} holds {', '.join(list(other)[:4])} trained with another "
            f"config ({name}: {shown or 'config not recorded'}): this run would "
            "replace them; pass --config.finished=replace to replace them (the "
            "students distilled from a replaced teacher and the report go too), "
            "or use another --workdir"
        )
    if same:
        logging.info(
            "Reusing %s, finished with this config in %s "
            "(--config.finished=replace trains again)",
            ", ".join(same),
            run_dir.root,
        )
    return same


def differing(recorded: dict | None, config: dict, prefix: str = "config") -> list:
    """The dotted keys whose values differ between two config dicts ([] when
    `recorded` is None: an older run did not record its config)."""
    if recorded is None:
        return []
    if prefix == "config":
        recorded, config = (
            without_added_defaults(recorded),
            without_added_defaults(config),
        )
    out = []
    for key in sorted(set(recorded) | set(config)):
        if prefix == "config" and key in IGNORED:
            continue
        a, b = recorded.get(key), config.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += differing(a, b, f"{prefix}.{key}")
        elif _plain(a) != _plain(b):
            out.append(f"{prefix}.{key}")
    return out


def _plain(value):
    """Tuples as lists, as a config reads back from JSON."""
    return list(value) if isinstance(value, tuple) else value


def _remove(run_dir: RunDir, paths: tuple[str, ...], *, because: str) -> None:
    for relative in paths:
        path = os.path.join(run_dir.root, relative)
        if os.path.isdir(path):
            shutil.rmtree(path)
        elif os.path.isfile(path):
            os.remove(path)
        else:
            continue
        logging.info(
            "Removed %s: it depended on %s, which this run replaces", path, because
        )
