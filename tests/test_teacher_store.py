"""The teacher's cached logits on disk (tf_distill/teacher/store.py): made once,
read back by a later run with the same teacher, images and settings, made anew
for any other, and resumed at the first missing shard after a crash."""

import json
import os
import threading

import keras
import numpy as np
import pytest

from tests.conftest import run_mode
from tf_distill.outputs import files
from tf_distill.teacher import cache, store

MADE_FROM = {"teacher": "t1", "data": "d1", "settings": "s1"}


class Rows:
    """compute() for cached_rows: row i is (i, 2i); counts the rows asked for,
    and raises at `fail_at` (a crash in the middle of the pass)."""

    def __init__(self, fail_at=None):
        self.asked, self.fail_at = [], fail_at

    def __call__(self, start, stop):
        if start == self.fail_at:
            raise KeyboardInterrupt
        self.asked.append((start, stop))
        i = np.arange(start, stop, dtype=np.float32)
        return {"logits": np.stack([i, 2 * i], axis=1)}


def _rows(folder, compute, made_from=MADE_FROM, count=10, part=None):
    return store.cached_rows(
        str(folder),
        made_from=made_from,
        count=count,
        compute=compute,
        what="rows",
        shard=4,
        part=part,
    )


def test_rows_are_made_once_then_read_back(tmp_path):
    first = Rows()
    rows, _ = _rows(tmp_path / "c", first)
    assert first.asked == [(0, 4), (4, 8), (8, 10)]
    np.testing.assert_array_equal(rows["logits"][:, 1], 2 * np.arange(10))
    again = Rows()
    reread, seconds = _rows(tmp_path / "c", again)
    assert again.asked == [] and seconds == 0.0
    np.testing.assert_array_equal(reread["logits"], rows["logits"])


@pytest.mark.parametrize("changed", ["teacher", "data", "settings"])
def test_rows_of_another_teacher_data_or_settings_are_made_anew(
    tmp_path, changed, monkeypatch
):
    _rows(tmp_path / "c", Rows())
    said = []
    monkeypatch.setattr(store.logging, "info", lambda text, *a: said.append(text % a))
    other = Rows()
    _rows(tmp_path / "c", other, made_from={**MADE_FROM, changed: "other"})
    assert other.asked == [(0, 4), (4, 8), (8, 10)]
    assert f"was made from another {changed}: making rows anew" in said[0]
    manifest = files.read_json(str(tmp_path / "c" / "manifest.json"))
    assert manifest["made_from"][changed] == "other" and manifest["complete"]


def test_a_crashed_pass_resumes_at_its_first_missing_shard(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        _rows(tmp_path / "c", Rows(fail_at=8))
    manifest = json.loads((tmp_path / "c" / "manifest.json").read_text())
    assert manifest["complete"] is False
    assert sorted(os.listdir(tmp_path / "c")) == [
        "manifest.json",
        "rows_0000000000.npz",
        "rows_0000000004.npz",
    ]
    resumed = Rows()
    rows, _ = _rows(tmp_path / "c", resumed)
    assert resumed.asked == [(8, 10)]
    np.testing.assert_array_equal(rows["logits"][:, 0], np.arange(10))


def test_workers_sharing_the_folder_split_the_pass_and_all_read_every_row(tmp_path):
    """Three workers (threads here, processes under multi_worker) on one folder:
    each computes every third shard, the chief keeps the manifest, all end with
    every row; a later run reads them back."""
    computes = [Rows() for _ in range(3)]
    results = [None] * 3

    def worker(index):
        part = store.Part(index, 3, patience=30)
        results[index] = _rows(tmp_path / "c", computes[index], count=22, part=part)

    threads = [threading.Thread(target=worker, args=(i,)) for i in (2, 1, 0)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # 22 rows over 3 workers: shards of at most 8 rows (4 here), 0-3 to worker
    # 1, 4-7 to worker 2, 8-11 to worker 3, 12-15 to worker 1, ...
    assert computes[0].asked == [(0, 4), (12, 16)]
    assert computes[1].asked == [(4, 8), (16, 20)]
    assert computes[2].asked == [(8, 12), (20, 22)]
    for rows, _ in results:
        np.testing.assert_array_equal(rows["logits"][:, 0], np.arange(22))
    assert files.read_json(str(tmp_path / "c" / "manifest.json"))["complete"]
    alone = Rows()
    rows, _ = _rows(tmp_path / "c", alone, count=22, part=store.Part(0, 3))
    assert alone.asked == []


def test_a_worker_whose_peers_never_write_gives_up_in_one_line(tmp_path):
    """A non-chief whose folder the chief never writes (no shared file system)."""
    part = store.Part(1, 2, patience=0.5)
    with pytest.raises(ValueError, match="shared_workdir=True needs a --workdir"):
        _rows(tmp_path / "c", Rows(), part=part)


def test_the_fingerprint_follows_the_weights_and_the_images():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    same = store.fingerprint(model)
    assert store.fingerprint(model) == same
    model.layers[0].kernel.assign(model.layers[0].kernel + 1.0)
    assert store.fingerprint(model) != same
    x = np.zeros((4, 2), np.uint8)
    assert store.fingerprint(x) != store.fingerprint(x[:3])
    assert store.fingerprint(x) != store.fingerprint(x.astype(np.float32))


def test_a_second_distilling_run_reads_the_teachers_logits_back(
    tiny_config, tmp_path, monkeypatch
):
    run_dir = run_mode(tiny_config, tmp_path, "teacher")
    calls = []
    real = cache.teacher_logits
    monkeypatch.setattr(
        cache, "teacher_logits", lambda *a, **k: calls.append(1) or real(*a, **k)
    )
    run_mode(tiny_config, tmp_path, "distilling")
    assert calls  # the first distilled student runs the teacher once
    calls.clear()
    tiny_config.distill.temperature = 2.0  # another T: the same logits
    tiny_config.distill.alpha = 0.5
    tiny_config.finished = "replace"  # the distilled student of T=4 gives way
    run_mode(tiny_config, tmp_path, "distilling")
    assert calls == []
    metrics = files.read_json(run_dir.model("distilling").metrics)
    assert metrics["temperature"] == 2.0 and metrics["teacher_pass_seconds"] == 0.0
    # A retrained teacher (another seed, other weights) is not read from the cache.
    tiny_config.seed = 7
    run_mode(tiny_config, tmp_path, "teacher")
    run_mode(tiny_config, tmp_path, "distilling")
    assert calls
