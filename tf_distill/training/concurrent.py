"""Fitting several models at once, on the cores one small model leaves idle.

A model of the main job (an MLP on 8x8 digits) keeps one core about busy: its
steps are too small for TensorFlow to spread, and much of an epoch is Python
(callbacks, validation, the step calls). Two such fits in two threads use both
cores of a two-core machine: TensorFlow releases Python's lock while it
computes, and Keras keeps its global state per thread.

What stays sequential, in the order the jobs are given: building each model
(the seeds set before a build decide its initial weights, so those must not
interleave) and finishing it (choosing weights, saving, exporting, recording it
as trained). Only `fit` runs in the pool. Every fit's randomness comes from its
own seeds (the model's seed generators, the pipeline's (seed, epoch) order), so
a model trained beside another ends with the weights it gets alone
(tests/test_concurrent.py).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from concurrent import futures
from typing import Any

import keras


@dataclasses.dataclass(frozen=True)
class Job:
    """One model's training: `fit` (None when there is nothing to train, e.g.
    a model an earlier run finished) and `finish(fit's result or None)`."""

    name: str
    fit: Callable[[], Any] | None
    finish: Callable[[Any], Any]

    def run(self) -> Any:
        return self.finish(None if self.fit is None else self.fit())


def run_all(jobs: list[Job], workers: int = 1) -> list[Any]:
    """Each job's `finish` result, in order; up to `workers` fits at a time.

    A fit that fails (a NaN, Ctrl-C) raises here once the fits already under way
    end; a Ctrl-C stops them at their next step (interrupt.Stop)."""
    if workers <= 1 or sum(job.fit is not None for job in jobs) <= 1:
        return [job.run() for job in jobs]
    policy = keras.mixed_precision.global_policy()

    def fit(job: Job):
        keras.mixed_precision.set_global_policy(policy)  # per thread in Keras
        return job.fit()

    with futures.ThreadPoolExecutor(workers, thread_name_prefix="fit") as pool:
        pending = [None if j.fit is None else pool.submit(fit, j) for j in jobs]
        try:
            return [
                job.finish(None if done is None else done.result())
                for job, done in zip(jobs, pending, strict=True)
            ]
        except BaseException:
            for done in pending:
                if done is not None:
                    done.cancel()  # those not started yet
            raise
