"""A finished run directory: the same command reuses, another config is refused
naming its keys, and `finished=replace` leaves nothing that depended on what it
replaced (tf_distill/tasks/rerun.py)."""

import pytest

from tests.test_train import run_in
from tf_distill.tasks import rerun


def _stamp(tmp_path, model):
    return (tmp_path / "run" / model / "model.keras").stat().st_mtime_ns


def test_the_same_command_reuses_what_is_finished(tiny_config, tmp_path, caplog):
    first = run_in(tmp_path, tiny_config, "student")
    stamp = _stamp(tmp_path, "student")
    with caplog.at_level("INFO", logger="absl"):
        again = run_in(tmp_path, tiny_config, "student")
    assert _stamp(tmp_path, "student") == stamp  # not trained again
    assert again["student"]["test_accuracy"] == first["student"]["test_accuracy"]
    assert "Reusing student, finished with this config" in caplog.text

    tiny_config.finished = "replace"  # trains it again; no other key differs
    run_in(tmp_path, tiny_config, "student")
    assert _stamp(tmp_path, "student") != stamp


def test_another_config_is_refused_naming_the_keys(tiny_config, tmp_path):
    run_in(tmp_path, tiny_config, "teacher")
    stamp = _stamp(tmp_path, "teacher")
    _recorded_before_teacher_keep(tmp_path)
    run_in(tmp_path, tiny_config, "teacher")  # an older version's: reused
    assert _stamp(tmp_path, "teacher") == stamp
    keep = tiny_config.copy_and_resolve_references()
    keep.teacher.keep = "last"
    with pytest.raises(ValueError, match=r"\(teacher: config.teacher.keep\)"):
        run_in(tmp_path, keep, "teacher")
    tiny_config.teacher.epochs = 3
    tiny_config.distill.temperature = 2.0
    with pytest.raises(
        ValueError,
        match=r"holds teacher trained with another config \(teacher: "
        r"config.distill.temperature, config.teacher.epochs\)",
    ):
        run_in(tmp_path, tiny_config, "teacher")
    assert _stamp(tmp_path, "teacher") == stamp
    # A mode that trains other models leaves the finished teacher alone.
    run_in(tmp_path, tiny_config, "distilling")
    assert _stamp(tmp_path, "teacher") == stamp


def test_a_replaced_teacher_takes_its_students_and_the_report_along(
    tiny_config, tmp_path
):
    run_in(tmp_path, tiny_config, "all")
    run = tmp_path / "run"
    assert (run / "report.md").exists() and (run / "distilling").exists()
    student = _stamp(tmp_path, "student")
    tiny_config.teacher.layers = (16,)
    tiny_config.finished = "replace"
    run_in(tmp_path, tiny_config, "teacher")
    assert not (run / "distilling").exists()  # distilled from the old teacher
    assert not list(run.glob("report.*")) and not (run / "accuracy.png").exists()
    assert _stamp(tmp_path, "student") == student  # owes the teacher nothing


def _recorded_before_teacher_keep(tmp_path):
    """The teacher's metrics.json as a version before config.teacher.keep wrote
    it: its recorded config without the key (rerun.ADDED); the fingerprint of
    keep="auto" is that of a config without it."""
    import json

    path = tmp_path / "run" / "teacher" / "metrics.json"
    metrics = json.loads(path.read_text())
    del metrics["config"]["teacher"]["keep"]
    path.write_text(json.dumps(metrics))


def test_a_config_without_a_newer_key_has_the_same_fingerprint(tiny_config):
    from tf_distill.tasks import context

    older = tiny_config.copy_and_resolve_references()
    del older.teacher["keep"]
    assert context.config_fingerprint(older) == context.config_fingerprint(tiny_config)


def test_differing_names_nested_keys_and_reads_tuples_as_json_lists():
    old = {"name": "a", "teacher": {"layers": [32], "epochs": 2}, "seed": 1}
    new = {"name": "b", "teacher": {"layers": (32,), "epochs": 3}, "seed": 1}
    assert rerun.differing(old, new) == ["config.teacher.epochs"]
    assert rerun.differing(None, new) == []


def test_the_diffusion_task_reuses_and_refuses_by_the_same_rule(tmp_path):
    from tests.test_diffusion_task import _run, tiny

    _run(tiny(), tmp_path, "teacher")
    teacher = tmp_path / "w" / "teacher" / "model.keras"
    stamp = teacher.stat().st_mtime_ns
    _run(tiny(), tmp_path, "teacher")
    assert teacher.stat().st_mtime_ns == stamp
    with pytest.raises(ValueError, match=r"config.diffusion.ema_decay\)"):
        _run(tiny(**{"diffusion.ema_decay": 0.5}), tmp_path, "teacher")
    assert teacher.stat().st_mtime_ns == stamp
