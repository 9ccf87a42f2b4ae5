"""Several replicas and workers, on this machine's CPU.

Replicas: the CPU split into two logical devices (tests/replicas_main.py, in a
fresh process). Workers: local processes on 127.0.0.1 ports with TF_CONFIG.
"""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import types

import numpy as np
import pytest

from tests.conftest import REPO, tiny_flags
from tests.test_main import MAIN, run_main
from tf_distill.training import distribute

ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")


def test_two_replicas_give_the_losses_and_weights_of_one(tmp_path):
    """The loss is averaged over the global batch, by construction: with the
    same data, seed and weights, MirroredStrategy over 2 devices retraces one
    device, including the epoch's last batch (13 images, split 7 + 6), and so
    does the input made per replica, as under several workers (6 + 7)."""
    proc = subprocess.run(
        [sys.executable, os.path.join(REPO, "tests", "replicas_main.py"), "out.json"],
        cwd=tmp_path,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((tmp_path / "out.json").read_text())
    assert results["replicas"] == [1, 2, 2]
    one, *others = results["losses"]
    assert len(one) == 21
    for other, weights in zip(others, results["weights"][1:], strict=True):
        np.testing.assert_allclose(other, one, atol=1e-5, rtol=0)
        for w_one, w_other in zip(results["weights"][0], weights, strict=True):
            np.testing.assert_allclose(w_other, w_one, atol=1e-5, rtol=0)


def test_the_global_batch_must_split_evenly_across_replicas():
    two_replicas = types.SimpleNamespace(num_replicas_in_sync=2)
    distribute.check_batch_size(64, two_replicas)
    with pytest.raises(ValueError, match="batch_size=65 is the global batch"):
        distribute.check_batch_size(65, two_replicas)


def test_the_chief_is_worker_index_0_and_the_workers_follow():
    def strategy(cluster, task_type, task_id):
        spec = types.SimpleNamespace(as_dict=lambda: cluster)
        resolver = types.SimpleNamespace(
            cluster_spec=lambda: spec, task_type=task_type, task_id=task_id
        )
        return types.SimpleNamespace(cluster_resolver=resolver)

    with_chief = {"chief": ["a:1"], "worker": ["b:1", "c:1"]}
    assert distribute.worker_index(strategy(with_chief, "chief", 0)) == (0, 3)
    assert distribute.worker_index(strategy(with_chief, "worker", 1)) == (2, 3)
    workers = {"worker": ["b:1", "c:1"]}
    assert distribute.worker_index(strategy(workers, "worker", 0)) == (0, 2)
    assert distribute.is_chief(strategy(workers, "worker", 0))
    assert distribute.worker_index(types.SimpleNamespace()) == (0, 1)  # one process


def test_multi_worker_needs_tf_config(tmp_path, monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ValueError, match="needs the TF_CONFIG environment"):
        distribute.make_strategy("multi_worker")


def _worker(tmp_path, tf_config, *flags):
    """main.py as one worker of the TF_CONFIG cluster, on the tiny config."""
    return subprocess.Popen(
        [sys.executable, MAIN, "--config.strategy=multi_worker", *flags, *tiny_flags()],
        cwd=tmp_path,
        env=dict(ENV, TF_CONFIG=json.dumps(tf_config)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.mark.slow
def test_two_workers_distil_as_one_and_only_the_chief_writes(tmp_path):
    proc = run_main(tmp_path, "--model=teacher", "--workdir=chief", *tiny_flags())
    assert proc.returncode == 0, proc.stderr[-3000:]
    teacher = tmp_path / "chief" / "teacher" / "model.keras"

    cluster = {"worker": [f"127.0.0.1:{p}" for p in _free_ports(2)]}
    workers = []
    for index in range(2):  # one --workdir both see: they split the teacher pass
        tf_config = {"cluster": cluster, "task": {"type": "worker", "index": index}}
        workers.append(
            _worker(
                tmp_path,
                tf_config,
                "--model=distilling",
                "--workdir=chief",
                f"--config.teacher_path={teacher}",
                "--config.distribute.shared_workdir=True",
            )
        )
    try:
        outs = [w.communicate(timeout=600) for w in workers]
    finally:
        for w in workers:
            w.kill()
    for w, (_, err) in zip(workers, outs, strict=True):
        assert w.returncode == 0, err[-3000:]
    # The chief (its info lines are in run.log) computed its part of the
    # teacher's logits; the other worker wrote the rest into the same folder.
    run_log = (tmp_path / "chief" / "run.log").read_text()
    [(count, total)] = re.findall(
        r"Worker 1 of 2 computes (\d+) of the (\d+) rows of the teacher's logits "
        r"on \d+ train images",
        run_log,
    )
    assert 0 < int(count) < int(total)
    shards = sorted(os.listdir(tmp_path / "chief" / "teacher_cache" / "train"))
    assert len(shards) == 3 and shards[0] == "manifest.json", shards
    assert "with 2 replica(s), global batch 64 (32 per replica)" in run_log

    distilled = tmp_path / "chief" / "distilling"
    metrics = json.loads((distilled / "metrics.json").read_text())
    assert metrics["epochs_run"] == 2 and metrics["replicas"] == 2
    # Each worker made only its half of every global batch (distribute.
    # worker_batches), and the two halves train as one worker's whole batch.
    proc = run_main(
        tmp_path,
        "--model=distilling",
        "--workdir=single",
        f"--config.teacher_path={teacher}",
        *tiny_flags(),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    single = json.loads((tmp_path / "single/distilling/metrics.json").read_text())
    np.testing.assert_allclose(
        metrics["history"]["loss"], single["history"]["loss"], rtol=0, atol=1e-5
    )
    assert (distilled / "model.keras").is_file()
    assert (distilled / "saved_model" / "saved_model.pb").is_file()
    # TensorBoard runs are keyed by the workdir (experiment.default_tensorboard).
    [tensorboard] = (tmp_path / "tensorboard").glob("chief-*")
    assert (tensorboard / "distilling" / "train").is_dir()
    # The other worker wrote to scratch, removed at the end: nothing of it is left.
    leftovers = [p for p in (tmp_path / "chief").iterdir() if p.name.startswith(".")]
    assert not leftovers, leftovers


@pytest.mark.slow
def test_a_missing_worker_is_waited_for_said_and_given_up_on(tmp_path):
    """TensorFlow would wait an hour for it, silently, deaf to Ctrl-C and SIGTERM."""
    ports = _free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}  # worker 1 never starts
    tf_config = {"cluster": cluster, "task": {"type": "worker", "index": 0}}

    def start(timeout):
        return _worker(
            tmp_path,
            tf_config,
            "--model=student",
            "--workdir=w",
            f"--config.distribute.connect_timeout={timeout}",
        )

    proc = start(2.0)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, err[-2000:]
    assert f"Waiting for workers 127.0.0.1:{ports[1]} (TF_CONFIG)" in err
    assert err.strip().splitlines()[-1] == (
        f"error: workers 127.0.0.1:{ports[1]} did not start within 2 s "
        "(config.distribute.connect_timeout): start them with the same TF_CONFIG "
        "cluster, or check their addresses"
    )

    proc = start(120.0)  # a scheduler stops it while it waits
    lines = []
    while not any("Waiting for workers" in line for line in lines):
        line = proc.stderr.readline()
        assert line, "".join(lines)[-2000:]
        lines.append(line)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 128 + signal.SIGTERM, err[-2000:]
    assert err.strip().splitlines()[-1].startswith("interrupted by SIGTERM: ")
    assert not (tmp_path / "w").exists()
