"""The training library in-process: fairness of the comparison and the run directory."""

import json

import numpy as np
import pytest

from tf_distill import train


@pytest.mark.slow
def test_distilling_with_alpha_one_reproduces_the_student_alone(tiny_config, tmp_path):
    """alpha=1 is pure cross-entropy: from the same initial weights and the same
    batches in the same order, the distilled run must retrace the student alone.
    This is what makes "distilled minus student alone" distillation's effect."""
    tiny_config.distill.alpha = 1.0
    tiny_config.student.epochs = 3
    results = train.run(
        tiny_config, workdir=str(tmp_path / "run"), mode="all",
        tensorboard_dir=str(tmp_path / "tb"),
    )  # fmt: skip
    alone, distilled = results["student"]["history"], results["distilling"]["history"]
    np.testing.assert_allclose(alone["loss"], distilled["loss"], rtol=1e-5)
    np.testing.assert_allclose(alone["val_accuracy"], distilled["val_accuracy"])
    assert results["student"]["test_accuracy"] == pytest.approx(
        results["distilling"]["test_accuracy"]
    )
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert report["distilled_minus_student_accuracy"] == pytest.approx(0.0)


def test_unknown_mode_is_rejected_before_anything_is_written(tiny_config, tmp_path):
    with pytest.raises(ValueError, match="Unknown mode 'distil'; valid: teacher"):
        train.run(tiny_config, workdir=str(tmp_path / "run"), mode="distil")
    assert not (tmp_path / "run").exists()
