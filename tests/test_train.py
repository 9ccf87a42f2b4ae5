"""The training library in-process: fairness of the comparison and the run directory."""

import json

import keras
import numpy as np
import pytest

from tests.conftest import needs_shared_data
from tf_distill import experiment
from tf_distill.models import architectures, loading


def run_in(tmp_path, config, mode, name="run"):
    """train.run into tmp_path/<name>, TensorBoard logs in tmp_path/tb."""
    return experiment.run(
        config,
        workdir=str(tmp_path / name),
        mode=mode,
        tensorboard_dir=str(tmp_path / "tb"),
    )


@pytest.mark.slow
def test_distilling_with_alpha_one_reproduces_the_student_alone(tiny_config, tmp_path):
    """alpha=1 is pure cross-entropy: from the same initial weights and the same
    batches in the same order, the distilled run must retrace the student alone.
    This is what makes "distilled minus student alone" distillation's effect."""
    tiny_config.distill.alpha = 1.0
    tiny_config.student.epochs = 3
    results = run_in(tmp_path, tiny_config, "all", "run")
    alone, distilled = results["student"]["history"], results["distilling"]["history"]
    np.testing.assert_allclose(alone["loss"], distilled["loss"], rtol=1e-5)
    np.testing.assert_allclose(alone["val_accuracy"], distilled["val_accuracy"])
    # Without the validation teacher (the default) the distilled student validates
    # on the labels alone: its val_loss is the student alone's cross-entropy.
    assert not tiny_config.distill.validation_teacher
    np.testing.assert_allclose(alone["val_loss"], distilled["val_loss"], rtol=1e-5)
    assert "val_soft_loss" not in distilled and "val_agreement" not in distilled
    assert results["student"]["test_accuracy"] == pytest.approx(
        results["distilling"]["test_accuracy"]
    )
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert report["distilled_minus_student_accuracy"] == pytest.approx(0.0)


def test_unknown_mode_is_rejected_before_anything_is_written(tiny_config, tmp_path):
    with pytest.raises(ValueError, match="Unknown mode 'distil'; valid: teacher"):
        experiment.run(tiny_config, workdir=str(tmp_path / "run"), mode="distil")
    assert not (tmp_path / "run").exists()


@pytest.mark.real_data
@needs_shared_data("fashion_mnist")
def test_one_teacher_epoch_on_real_fashion_mnist(tmp_path):
    from configs import fashion_mnist_mlp

    config = fashion_mnist_mlp.get_config()
    config.name = "fashion_mnist_mlp"
    config.teacher.epochs = 1
    results = run_in(tmp_path, config, "teacher", "run")
    metrics = results["teacher"]
    assert metrics["data"]["train"] == 54000 and metrics["data"]["test"] == 10000
    assert metrics["test_accuracy"] >= 0.84


@pytest.mark.slow
def test_cached_and_online_teacher_train_the_same_student(tiny_config, tmp_path):
    workdir, tb = str(tmp_path / "run"), str(tmp_path / "tb")
    experiment.run(tiny_config, workdir=workdir, mode="teacher", tensorboard_dir=tb)
    tiny_config.distill.validation_teacher = True  # validation losses compared too
    tiny_config.finished = "replace"  # the second distilling run replaces the first
    histories = {}
    for cached in (True, False):
        tiny_config.distill.cache_teacher_logits = cached
        results = experiment.run(
            tiny_config, workdir=workdir, mode="distilling", tensorboard_dir=tb
        )
        histories[cached] = results["distilling"]["history"]
        assert (results["distilling"]["teacher_pass_seconds"] > 0) == cached
    for key in ("loss", "soft_loss", "val_loss", "val_soft_loss", "val_agreement"):
        np.testing.assert_allclose(
            histories[True][key], histories[False][key], rtol=1e-5, err_msg=key
        )


@pytest.mark.parametrize(
    "shape, features", [((28, 28, 1), 7 * 7 * 16), ((8, 8, 1), 2 * 2 * 16)]
)
def test_the_convnet_convolves_at_full_resolution_and_pools(shape, features):
    model = architectures.build(
        architectures.ModelSpec("convnet", layers=(8, 16)),
        input_shape=shape,
        num_classes=10,
        input_scale=255.0,
        name="teacher",
    )
    assert model.get_layer("conv_0").output.shape[1:3] == shape[:2]  # stride 1
    assert model.get_layer("pool_1").output.shape[1:] == (
        shape[0] // 4,
        shape[1] // 4,
        16,
    )
    assert int(np.prod(model.get_layer("pool_1").output.shape[1:])) == features
    logits = model(np.zeros((2, *shape), np.float32))
    assert logits.shape == (2, 10)


def test_bfloat16_teacher_copy_stays_close_and_leaves_the_teacher_alone():
    from tf_distill.tasks.classifier import settings as config_lib

    splits = config_lib.load_data(config_for_digits())
    keras.utils.set_random_seed(0)
    teacher = architectures.build(
        architectures.ModelSpec("mlp", layers=(64,)),
        input_shape=splits.input_shape,
        num_classes=10,
        input_scale=16.0,
        name="teacher",
    )
    before = [w.copy() for w in teacher.get_weights()]
    copy = loading.teacher_for_inference(teacher, "bfloat16")
    x = splits.x_test.astype(np.float32)
    exact, approx = teacher.predict(x, verbose=0), copy.predict(x, verbose=0)
    assert approx.dtype.name == "bfloat16"
    approx = approx.astype(np.float32)
    assert np.abs(approx - exact).max() < 0.05 * np.abs(exact).max()
    assert np.mean(approx.argmax(1) == exact.argmax(1)) > 0.98
    assert teacher.layers[-1].dtype_policy.name == "float32"
    for a, b in zip(before, teacher.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert loading.teacher_for_inference(teacher, "float32") is teacher


@pytest.mark.slow
def test_steps_per_execution_changes_speed_not_results(tiny_config, tmp_path):
    # 21 steps per epoch: 7 divides them, 5 is lowered to 3 (no execution may run
    # into the next epoch's batches).
    histories = []
    for steps in (1, 7, 5):
        tiny_config.steps_per_execution = steps
        results = run_in(tmp_path, tiny_config, "student", f"run{steps}")
        histories.append(results["student"]["history"])
    for key in ("loss", "val_loss", "val_accuracy"):
        for other in histories[1:]:
            np.testing.assert_allclose(histories[0][key], other[key], rtol=1e-5)


def config_for_digits():
    from configs import default

    return default.base_config()


@pytest.mark.slow
def test_mixed_bfloat16_trains_with_float32_logits_and_losses(tiny_config, tmp_path):
    tiny_config.mixed_precision = "mixed_bfloat16"
    try:
        results = run_in(tmp_path, tiny_config, "all", "run")
        # The run sets the policy for itself and restores the process's.
        assert keras.mixed_precision.global_policy().name == "float32"
        student = keras.models.load_model(
            tmp_path / "run" / "distilling" / "model.keras"
        )
        assert student.get_layer("dense_0").compute_dtype == "bfloat16"
        assert student.get_layer("logits").compute_dtype == "float32"
    finally:
        keras.mixed_precision.set_global_policy("float32")
    history = results["distilling"]["history"]
    assert (
        all(np.isfinite(history["loss"])) and history["loss"][-1] < history["loss"][0]
    )
