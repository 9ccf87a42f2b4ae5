"""The runner: `run(config, workdir=..., mode=...)` looks `config.task` up in the
task table (tasks.TASKS) and runs the mode that task's `modes` name.

    run(config, workdir=..., mode=...)  ->  tasks.get(config.task).modes[mode]

It never names a task: each task's package holds its modes, the check of its
config and its summary, and every mode opens the run context all tasks share
(tasks/context.py).
"""

from __future__ import annotations

import hashlib
import os

import ml_collections

from tf_distill import tasks
from tf_distill.outputs.rundir import RunDir

# Every task's modes, in the order `main.py --help` lists them; all but the last
# two train models.
MODES = ("teacher", "student", "distilling", "all", "sweep", "export", "evaluate")
TRAINING_MODES = MODES[:5]


def run(
    config: ml_collections.ConfigDict,
    *,
    workdir: str,
    mode: str,
    tensorboard_dir: str | None = None,
) -> dict[str, dict]:
    """Runs what `mode` names for `config.task` and writes the run directory.

    Args:
        config: a config from `configs/`; validated here before any work.
        workdir: the run directory.
        mode: one of MODES that the task offers.
        tensorboard_dir: TensorBoard logs, one sub-folder per model; defaults to
            `default_tensorboard(workdir)`.

    Returns:
        What the mode measured, keyed by model name.

    Raises:
        ValueError: bad mode or config value, or data that does not fit.
        FileNotFoundError: no teacher to distil from, or missing data files.
    """
    if mode not in MODES:
        raise ValueError(f"Unknown mode {mode!r}; valid: {', '.join(MODES)}")
    task = task_of(config)
    if mode not in task.modes:
        raise ValueError(
            f"--model={mode} is not a mode of the {task.name} task; valid: "
            f"{', '.join(task.modes)}"
        )
    task.validate(config)
    run_dir = run_dir_of(workdir, tensorboard_dir)
    check_writable(run_dir.root, "--workdir")
    check_writable(run_dir.tensorboard, "the TensorBoard folder")
    return task.modes[mode](config, run_dir)


def check_writable(path: str, what: str) -> None:
    """Refuses a folder that cannot be made or written: `path` or a parent is a
    file, or the nearest existing folder is not writable by this user."""
    existing = os.path.abspath(path)
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise ValueError(f"{what} {path}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"{what} {path}: {existing} is not writable by this user")


def task_of(config: ml_collections.ConfigDict) -> tasks.Task:
    """The task `config.task` names."""
    if "task" not in config:
        raise ValueError(
            "config.task is missing: start the config from a shipped one's "
            "base_config() (configs/default.py or configs/digits_diffusion.py)"
        )
    return tasks.get(config.task)


def summary(
    mode: str,
    results: dict[str, dict],
    run_dir: RunDir,
    config: ml_collections.ConfigDict,
) -> str:
    """What the terminal shows when a mode ends: the results (the task's summary),
    and where they are."""
    lines = [f"--model={mode} done. Run directory: {run_dir.root}"]
    lines += task_of(config).summary(mode, results, run_dir)
    if mode in TRAINING_MODES:
        lines.append(f"  TensorBoard: tensorboard --logdir {run_dir.tensorboard}")
    return "\n".join(lines)


def run_dir_of(workdir: str, tensorboard_dir: str | None = None) -> RunDir:
    """The run directory `run` writes for this workdir."""
    return RunDir(workdir, tensorboard_dir or default_tensorboard(workdir))


def default_tensorboard(workdir: str) -> str:
    """TensorBoard logs of a run directory, keyed by it: `tensorboard/<name>` for
    `runs/<name>` (main.py's default workdir), else `tensorboard/<folder
    name>-<hash of its path>`, so that two run directories never share a curve."""
    workdir = os.path.abspath(workdir)
    name = os.path.basename(workdir.rstrip(os.sep)) or "run"
    if os.path.dirname(workdir) == os.path.abspath("runs"):
        return os.path.join("tensorboard", name)
    digest = hashlib.sha256(workdir.encode()).hexdigest()[:8]
    return os.path.join("tensorboard", f"{name}-{digest}")
