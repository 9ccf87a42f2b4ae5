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
    """Two seeds of the student alone and two distilled (with dropout, so the
    random draws of each fit must stay its own), two fits at a time: each job
    built while another fits, the teacher's cache made between them."""
    runs = {}
    for workers in (1, 2):
        config = tiny()
        config.num_seeds = 2
        config.student.dropout = 0.3
        config.concurrent_fits = workers
        config.deterministic = True
        runs[workers] = run_mode(config, tmp_path / f"fits{workers}", "all")
    names = [
        f"{base}{suffix}"
        for base in ("student", "distilling")
        for suffix in ("", "_seed43")
    ]
    for name in names:
        one, two = _weights(runs[1], name), _weights(runs[2], name)
        for a, b in zip(one, two, strict=True):
            np.testing.assert_array_equal(a, b, err_msg=name)
    # Different seeds, different students: the comparison above can fail.
    assert not np.array_equal(
        _weights(runs[2], "student")[0], _weights(runs[2], "student_seed43")[0]
    )


def test_fits_overlap_builds_wait_for_a_free_worker_and_all_finish_in_order():
    events = []
    both_running = threading.Barrier(2, timeout=30)

    def job(name, fit=None):
        def finish(result):
            events.append(f"finish {result}")
            return result

        def build():
            events.append(f"build {name}")
            return fit, finish

        return concurrent.Job(name, build)

    def meets_the_other(name):
        def fit():
            both_running.wait()  # fails unless two fits run at once
            return name.upper()

        return fit

    jobs = [
        job("a", meets_the_other("a")),
        job("b", meets_the_other("b")),
        job("reused"),  # nothing to fit: finished with None
        job("c", lambda: "C"),
    ]
    assert concurrent.run_all(jobs, workers=2) == ["A", "B", None, "C"]
    finished = [e for e in events if e.startswith("finish")]
    assert finished == ["finish A", "finish B", "finish None", "finish C"]
    # Two built at first; the third only once the first's fit is done.
    assert events[:2] == ["build a", "build b"]
    assert events.index("build reused") > 1


def test_a_failed_fit_raises_and_nothing_after_it_is_finished():
    finished = []

    def fails():
        raise ValueError("student_seed43: loss became nan")

    def job(name, fit):
        return concurrent.Job(name, lambda: (fit, finished.append))

    jobs = [job("a", lambda: 1), job("b", fails), job("c", lambda: 3)]
    with pytest.raises(ValueError, match="loss became nan"):
        concurrent.run_all(jobs, workers=2)
    assert finished == [1]
