"""Fitting several models at once, on the cores one small model leaves idle.

A model of the main job (an MLP on 8x8 digits) keeps about one core busy: its
steps are too small for TensorFlow to spread, and much of an epoch is Python
(callbacks, the step calls). Two such fits in two threads use more of a two-core
machine: TensorFlow releases Python's lock while it computes, and Keras keeps its
global state per thread. Python's lock still caps it: the main job ran at 130% of
a core, 2 min 47 s against 3 min 10 s one fit at a time (docs/speed.md).

What stays sequential, in the order the jobs are given, in this thread: building
each model (the seeds set before a build decide its initial weights) and
finishing it (choosing weights, saving, exporting, recording it as trained). A
job is built only when a worker is free for it, so at most `workers` models fit
at once, and one more is being finished (one at a time: as without this module).
Every fit's randomness comes from its own seeds (the model's seed generators, the
pipeline's (seed, epoch) order), so a model trained beside another ends with the
weights it gets alone (tests/test_concurrent.py).
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Callable
from concurrent import futures
from typing import Any

import keras

Fit = Callable[[], Any]
Finish = Callable[[Any], Any]


@dataclasses.dataclass(frozen=True)
class Job:
    """One model's training. `build()` makes the model and returns (`fit`,
    `finish`): `fit` None when there is nothing to train (a model an earlier run
    finished), `finish(fit's result or None)` the job's result."""

    name: str
    build: Callable[[], tuple[Fit | None, Finish]]

    def run(self) -> Any:
        fit, finish = self.build()
        return finish(None if fit is None else fit())


def run_all(jobs: list[Job], workers: int = 1) -> list[Any]:
    """Each job's result, in order; up to `workers` fits at a time.

    A fit that fails (a NaN, Ctrl-C) raises here once the fits already under way
    end (a Ctrl-C stops them at their next step: interrupt.Stop); no job after
    it is finished."""
    if workers <= 1 or len(jobs) <= 1:
        return [job.run() for job in jobs]
    policy = keras.mixed_precision.global_policy()

    def fit_in_thread(fit):
        keras.mixed_precision.set_global_policy(policy)  # per thread in Keras
        return fit()

    results, queue = [], collections.deque(jobs)
    running = collections.deque()  # (finish, future or None), in job order
    with futures.ThreadPoolExecutor(workers, thread_name_prefix="fit") as pool:

        def start_next():
            fit, finish = queue.popleft().build()
            done = None if fit is None else pool.submit(fit_in_thread, fit)
            running.append((finish, done))

        try:
            while queue or running:
                while queue and len(running) < workers:
                    start_next()
                finish, done = running.popleft()
                result = None if done is None else done.result()
                if queue:
                    start_next()  # the next fit runs while this one finishes
                results.append(finish(result))
        except BaseException:
            for _, done in running:
                if done is not None:
                    done.cancel()  # those not started yet
            raise
    return results
