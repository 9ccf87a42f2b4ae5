"""The capacity curve (reports/capacity.py, benchmarks/capacity.py): the students'
sizes, the recipe chosen on validation, the verdict per size, and where a run's
student sits on a published curve."""

import json

import ml_collections
import numpy as np
import pytest

from tf_distill.data.splits import Splits
from tf_distill.models import architectures
from tf_distill.reports import capacity


def _splits():
    x = np.zeros((4, 28, 28, 1), np.uint8)
    y = np.arange(4, dtype=np.int32) % 2
    return Splits(x, y, x, y, x, y, 10, 255.0, tuple("0123456789"), "test")


def _teacher(arch="convnet", layers=(32, 64, 128)):
    return ml_collections.ConfigDict({"arch": arch, "layers": layers})


def test_students_are_the_teachers_family_at_the_asked_fractions():
    splits = _splits()
    total = capacity.params_of("convnet", (32, 64, 128), splits)
    students = capacity.students(_teacher(), [4, 16, 64], [32], splits)
    assert [s["arch"] for s in students] == ["convnet"] * 3 + ["mlp"]
    for student, fraction in zip(students, [4, 16, 64], strict=False):
        built = architectures.build_for(
            architectures.ModelSpec("convnet", tuple(student["layers"])),
            splits,
            name="s",
        )
        assert built.count_params() == student["params"]
        # Within a factor 1.5 of the target, on the grid of widths.
        assert 1 / 1.5 < student["params"] * fraction / total < 1.5
        assert student["fraction_of_teacher"] == pytest.approx(
            student["params"] / total
        )
        # One factor for every width: the layers keep the teacher's proportions.
        widths = student["layers"]
        assert widths[1] / widths[0] == pytest.approx(2, rel=0.35)
    assert students[3]["layers"] == [32] and students[3]["name"] == "mlp 32"


def test_a_teacher_without_widths_is_refused_in_one_line():
    with pytest.raises(ValueError, match="'mobilenet_v3_small' has no widths"):
        capacity.students(_teacher("mobilenet_v3_small", ()), [4], [], _splits())


def _runs(test, val, seeds=(42, 43, 44)):
    return [
        {"seed": s, "test_accuracy": t, "validation_accuracy": v}
        for s, t, v in zip(seeds, test, val, strict=True)
    ]


def _curve(rows, teacher_accuracy=0.90):
    config = ml_collections.ConfigDict(
        {
            "dataset": "fashion_mnist",
            "name": "capacity_test",
            "teacher": {"arch": "convnet", "layers": (32, 64, 128), "epochs": 30},
            "student": {"epochs": 20},
            "distill": {"alpha": 0.1},
        }
    )
    teacher = {"test_accuracy": teacher_accuracy, "params": 104_202}
    return capacity.curve(config, teacher, rows, train_examples=10_800)


def _row(name, params, alone, recipes, arch="convnet"):
    return {
        "name": name,
        "arch": arch,
        "layers": [1],
        "params": params,
        "fraction_of_teacher": params / 104_202,
        "alone": alone,
        "recipes": recipes,
        "seconds": 1.0,
    }


def test_the_recipe_is_chosen_on_validation_and_each_size_gets_a_verdict():
    alone = _runs([0.80, 0.81, 0.79], [0.80, 0.80, 0.80])
    # T=4 is better on test but worse on validation: T=1 must be chosen.
    t1 = _runs([0.83, 0.84, 0.82], [0.82, 0.82, 0.82])
    t4 = _runs([0.88, 0.88, 0.88], [0.81, 0.81, 0.81])
    rows = [
        _row("convnet 16/32/64", 26_000, alone, [(1.0, t1), (4.0, t4)]),
        # The teacher leads by less than a point: nothing to recover.
        _row("convnet 31/62/124", 98_000, _runs([0.895] * 3, [0.9] * 3), [(1.0, t1)]),
        _row(
            "convnet 2/4/8", 700, alone, [(1.0, _runs([0.80, 0.80, 0.80], [0.8] * 3))]
        ),
        _row("mlp 32", 25_450, alone, [(1.0, _runs([0.7] * 3, [0.7] * 3))], "mlp"),
    ]
    curve = _curve(rows)
    first, no_lead, small, mlp = curve["sizes"]
    assert first["temperature"] == 1.0
    assert first["distilled"]["test_accuracy"] == pytest.approx(0.83)
    assert first["gain"] == pytest.approx(0.03)
    assert first["gap_recovered"] == pytest.approx(np.mean([3 / 10, 3 / 9, 3 / 11]))
    assert first["pays"] == "yes"
    assert no_lead["pays"] == "no lead"
    assert small["pays"] == "no"  # gains +0.00, +-0.01, +0.01: CI spans 0
    assert mlp["pays"] == "hurts"
    table = capacity.markdown(curve)
    assert len(table.strip().splitlines()) == 4 + len(rows)  # title, blank, head
    assert "| convnet 16/32/64 | 26,000 (1/4) |" in table
    assert "| -6.50 [-8.98, -4.02] | - | +0.50 | no lead |" in table  # no lead


def test_where_a_student_sits_names_its_neighbours_of_its_family(tmp_path):
    alone = _runs([0.80] * 3, [0.8] * 3)
    recipe = [(1.0, _runs([0.81, 0.82, 0.83], [0.8] * 3))]
    curve = _curve(
        [
            _row("convnet 16/32/64", 26_000, alone, recipe),
            _row("convnet 4/8/16", 2_000, alone, recipe),
            _row("mlp 32", 25_450, alone, recipe, "mlp"),
        ]
    )
    between = capacity.where_sentence(curve, 9_098, "convnet")
    assert "sits between convnet 4/8/16 (2,000 params)" in between
    assert "convnet 16/32/64 (26,000 params)" in between and "mlp 32" not in between
    assert "sits nearest mlp 32" in capacity.where_sentence(curve, 1_000, "mlp")
    assert "nearest convnet 4/8/16" in capacity.where_sentence(curve, 100, "convnet")
    capacity.plot(curve, str(tmp_path / "capacity.png"))
    assert (tmp_path / "capacity.png").stat().st_size > 10_000


def test_the_report_finds_a_curve_published_for_its_data_set(tmp_path, monkeypatch):
    monkeypatch.setattr(capacity, "CURVES_DIR", str(tmp_path))
    alone = _runs([0.80] * 3, [0.8] * 3)
    curve = _curve([_row("convnet 4/8/16", 2_000, alone, [(1.0, alone)])])
    student = {
        "params": 1_500,
        "config": {"dataset": "fashion_mnist", "student": {"arch": "convnet"}},
    }
    assert capacity.for_student(student) is None  # nothing published yet
    (tmp_path / "fashion_mnist.json").write_text(json.dumps(curve))
    assert "sits nearest convnet 4/8/16" in capacity.for_student(student)
    other = {**student, "config": {**student["config"], "dataset": "mnist"}}
    assert capacity.for_student(other) is None
    # A folder of the user's images is no one data set: never matched.
    (tmp_path / "image_folder.json").write_text(json.dumps(curve))
    mine = {**student, "config": {**student["config"], "dataset": "image_folder"}}
    assert capacity.for_student(mine) is None
