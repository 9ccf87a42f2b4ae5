"""Several teachers as one (tf_distill/distillation/ensemble.py): the committee's
probabilities, and a run that distils it."""

import os

import keras
import numpy as np
import pytest

from configs import default
from tests.conftest import run_mode
from tf_distill import experiment
from tf_distill.distillation import ensemble
from tf_distill.outputs import files
from tf_distill.tasks.classifier import checks


def _softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _members(n=3):
    members = []
    for seed in range(n):
        keras.utils.set_random_seed(seed)
        members.append(
            keras.Sequential([keras.Input((4,)), keras.layers.Dense(5)], name="t")
        )
    return members


@pytest.mark.parametrize("temperature", [1.0, 4.0])
def test_the_committee_averages_probabilities_not_logits(temperature):
    members = _members()
    committee = ensemble.build(members, temperature)
    x = np.random.default_rng(0).normal(0, 3, size=(16, 4)).astype(np.float32)
    logits = [m(x).numpy() for m in members]
    p_mean = np.mean([_softmax(z / temperature) for z in logits], axis=0)
    got = _softmax(committee(x).numpy() / temperature)
    np.testing.assert_allclose(got, p_mean, atol=1e-6)
    # Averaging logits is another model (a product of experts): the test can tell.
    p_logit_mean = _softmax(np.mean(logits, axis=0) / temperature)
    assert np.abs(p_logit_mean - p_mean).max() > 1e-2
    assert not any(m.trainable for m in members)


def test_a_committee_needs_two_teachers_of_one_shape():
    with pytest.raises(ValueError, match=">= 2 teachers"):
        ensemble.build(_members(1), 4.0)
    other = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    with pytest.raises(ValueError, match="the teachers differ"):
        ensemble.build([*_members(1), other], 4.0)


def test_bad_teacher_paths_are_refused_before_any_work(tmp_path):
    config = default.base_config()
    config.teacher_paths = (str(tmp_path / "a.keras"),)
    with pytest.raises(ValueError, match="an ensemble needs >= 2 teachers"):
        checks.validate(config)
    config.teacher_paths = (str(tmp_path / "a.keras"), str(tmp_path / "b.keras"))
    with pytest.raises(
        ValueError, match=r"no \.keras file or folder at \['.*a\.keras'\]"
    ):
        checks.validate(config)


def test_all_with_a_committee_distils_it_and_reports_it(tiny_config, tmp_path):
    paths = []
    for seed in (1, 2):
        tiny_config.seed = seed
        run_mode(tiny_config, tmp_path / f"t{seed}", mode="teacher")
        paths.append(str(tmp_path / f"t{seed}" / "w" / "teacher" / "model.keras"))
    tiny_config.seed = 42
    tiny_config.teacher_paths = tuple(paths)
    run_dir = run_mode(tiny_config, tmp_path / "committee", mode="all")
    assert not os.path.exists(os.path.join(run_dir.root, "teacher"))  # none trained
    members = files.read_json(run_dir.file("ensemble.json"))
    assert [m["path"] for m in members["ensemble"]] == paths
    report = files.read_json(run_dir.file("report.json"))
    assert report["models"]["teacher"]["test_accuracy"] == members["test_accuracy"]
    text = open(run_dir.file("report.md")).read()
    assert "| teacher (ensemble of 2: " in text
    distilled = report["models"]["distilling"]
    assert 0 < distilled["test_agreement_with_teacher"] <= 1
    with pytest.raises(ValueError, match="--model=sweep varies the temperature"):
        experiment.run(tiny_config, workdir=run_dir.root, mode="sweep")
