"""Tasks: what a config distils. Each task is a package whose `TASK` holds its
modes, the check of its config and its summary; the runner (experiment.py) looks
`config.task` up in `TASKS` and never names a task.

A task's package is imported only when its task runs, so the diffusion task loads
none of the classifier's modules (tests/test_layout.py). A new task is a package
beside these two with a `TASK = Task(...)` and a line in `TASKS`.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable, Mapping

# config.task -> the package that defines its TASK.
TASKS = {
    "classifier": "tf_distill.tasks.classifier",
    "diffusion": "tf_distill.tasks.diffusion",
}


@dataclasses.dataclass(frozen=True)
class Task:
    """One task's interface, as Model Garden's `Task` (official/core/base_task.py).

    Attributes:
        name: the value of `config.task`.
        modes: `--model` name -> `mode(config, run_dir) -> {model name: metrics}`;
            each mode opens a `context.RunContext`.
        validate: `validate(config)` raises ValueError naming `config.KEY`, its
            value and what was expected; called before any work.
        summary: `summary(mode, results, run_dir) -> [line, ...]`, what the
            terminal shows of a mode's results (experiment.summary frames them).
    """

    name: str
    modes: Mapping[str, Callable]
    validate: Callable
    summary: Callable


def get(name: str) -> Task:
    """The task `config.task` names.

    Raises:
        ValueError: an unknown name, listing the valid ones.
    """
    if name not in TASKS:
        raise ValueError(f"config.task={name!r}: valid: {', '.join(TASKS)}")
    return importlib.import_module(TASKS[name]).TASK
