"""Fits side by side (tf_distill/training/concurrent.py): the same models as one
at a time, finished in order, and a failure that still surfaces."""

import threading

import keras
import numpy as np
import pytest

from tests.conftest import run_mode, tiny
from tf_distill.training import concurrent


def _weights(run_dir, name):
    return keras.models.load_model(run_dir.model(name).keras).get_weights()


@pytest.mark.slow
def test_students_fitted_two_at_a_time_equal_those_fitted_one_at_a_time(tmp_path):
    """Three seeds of the student alone and three distilled (with dropout, so
    the random draws of each fit must stay its own), two fits at a time."""
    runs = {}
    for workers in (1, 2):
        config = tiny()
        config.num_seeds = 3
        config.student.dropout = 0.3
        config.concurrent_fits = workers
        config.deterministic = True
        runs[workers] = run_mode(config, tmp_path / f"fits{workers}", "all")
    names = [
        f"{base}{suffix}"
        for base in ("student", "distilling")
        for suffix in ("", "_seed43", "_seed44")
    ]
    for name in names:
        one, two = _weights(runs[1], name), _weights(runs[2], name)
        for a, b in zip(one, two, strict=True):
            np.testing.assert_array_equal(a, b, err_msg=name)
    # Different seeds, different students: the comparison above can fail.
    assert not np.array_equal(
        _weights(runs[2], "student")[0], _weights(runs[2], "student_seed43")[0]
    )


def test_fits_overlap_and_finish_in_the_order_given():
    started, finished = [], []
    both_running = threading.Barrier(2, timeout=30)

    def job(name):
        def fit():
            started.append(name)
            both_running.wait()  # fails unless two fits run at once
            return name.upper()

        return concurrent.Job(
            name, fit, lambda result: finished.append(result) or result
        )

    assert concurrent.run_all([job("a"), job("b")], workers=2) == ["A", "B"]
    assert finished == ["A", "B"] and sorted(started) == ["a", "b"]


def test_a_failed_fit_raises_and_nothing_after_it_is_finished():
    finished = []

    def fails():
        raise ValueError("student_seed43: loss became nan")

    jobs = [
        concurrent.Job("a", lambda: 1, finished.append),
        concurrent.Job("b", fails, finished.append),
        concurrent.Job("c", lambda: 3, finished.append),
    ]
    with pytest.raises(ValueError, match="loss became nan"):
        concurrent.run_all(jobs, workers=2)
    assert finished == [1]
