"""Distillation methods beyond Hinton's loss (tf_distill/distillation/), each against
NumPy and its paper's own identities; and a user's own method."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from configs import default
from tests.conftest import REPO, run_mode, set_key, tiny_flags
from tests.test_main import run_main
from tf_distill import experiment
from tf_distill.distillation import losses, methods, registry
from tf_distill.distillation.distiller import Distiller
from tf_distill.distillation.hint import Hint
from tf_distill.outputs import files
from tf_distill.tasks.classifier import checks


def _softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _np_dkd(labels, z_t, z_s, t):
    """TCKD and NCKD with plain probabilities, float64 (Zhao et al. 2022, eq. 7)."""
    p_t, p_s = _softmax(z_t / t), _softmax(z_s / t)
    rows = np.arange(len(labels))
    b_t = np.stack([p_t[rows, labels], 1 - p_t[rows, labels]], -1)
    b_s = np.stack([p_s[rows, labels], 1 - p_s[rows, labels]], -1)
    tckd = (b_t * np.log(b_t / b_s)).sum(-1)
    others = np.ones_like(p_t, bool)
    others[rows, labels] = False
    nckd = []
    for r in rows:
        q_t = p_t[r, others[r]] / p_t[r, others[r]].sum()
        q_s = p_s[r, others[r]] / p_s[r, others[r]].sum()
        nckd.append((q_t * np.log(q_t / q_s)).sum())
    return tckd, np.array(nckd)


@pytest.fixture
def logits():
    rng = np.random.default_rng(0)
    z_t = rng.normal(0, 3, (6, 5))
    z_s = rng.normal(0, 3, (6, 5))
    labels = np.array([0, 1, 2, 3, 4, 2])
    return labels, z_t, z_s


@pytest.mark.parametrize("temperature", [1.0, 4.0])
def test_tckd_and_nckd_match_numpy(logits, temperature):
    labels, z_t, z_s = logits
    tckd, nckd = losses.decoupled_kd(
        labels=labels,
        teacher_logits=z_t.astype(np.float32),
        student_logits=z_s.astype(np.float32),
        temperature=temperature,
    )
    want_t, want_n = _np_dkd(labels, z_t, z_s, temperature)
    np.testing.assert_allclose(tckd, want_t, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(nckd, want_n, rtol=1e-4, atol=1e-6)


def test_kd_decouples_into_tckd_plus_weighted_nckd(logits):
    """The paper's eq. (5): KD = TCKD + (1 - p_target_teacher) NCKD."""
    labels, z_t, z_s = logits
    z_t, z_s = z_t.astype(np.float32), z_s.astype(np.float32)
    tckd, nckd = losses.decoupled_kd(
        labels=labels, teacher_logits=z_t, student_logits=z_s, temperature=2.0
    )
    kd = losses.kd_loss(teacher_logits=z_t, student_logits=z_s, temperature=2.0) / 4
    p_target = _softmax(z_t / 2.0)[np.arange(6), labels]
    np.testing.assert_allclose(kd, tckd + (1 - p_target) * nckd, rtol=1e-4)


def test_dkd_loss_weights_its_terms_and_warms_up(logits):
    labels, z_t, z_s = logits
    dkd = methods.DKD(temperature=2.0, alpha=0.5, beta=3.0, warmup_epochs=4)
    dkd.warmup.assign(dkd.weight_at(1))  # the second epoch: 2 / 4
    out = dkd(
        labels=labels,
        teacher_logits=z_t.astype(np.float32),
        student_logits=z_s.astype(np.float32),
    )
    tckd, nckd = _np_dkd(labels, z_t, z_s, 2.0)
    ce = -np.log(_softmax(z_s)[np.arange(6), labels])
    want = ce + 0.5 * 4.0 * (0.5 * tckd + 3.0 * nckd)
    np.testing.assert_allclose(out["loss"], want, rtol=1e-4)
    assert list(out) == list(dkd.scalars)
    assert [dkd.weight_at(e) for e in (0, 3, 10)] == [0.25, 1.0, 1.0]
    assert methods.DKD(temperature=1.0, warmup_epochs=0).weight_at(0) == 1.0


def test_dkd_splits_an_unlabelled_example_at_the_teachers_top_class(logits):
    labels, z_t, z_s = logits
    z_t, z_s = z_t.astype(np.float32), z_s.astype(np.float32)
    dkd = methods.DKD(temperature=2.0)
    unlabelled = dkd(labels=np.full(6, -1), teacher_logits=z_t, student_logits=z_s)
    as_top = dkd(labels=z_t.argmax(-1), teacher_logits=z_t, student_logits=z_s)
    np.testing.assert_allclose(unlabelled["tckd"], as_top["tckd"], rtol=1e-6)
    np.testing.assert_allclose(unlabelled["nckd"], as_top["nckd"], rtol=1e-6)
    np.testing.assert_array_equal(unlabelled["hard_loss"], 0.0)


def test_dkd_refuses_two_classes_and_bad_weights():
    dkd = methods.DKD(temperature=4.0)
    two = tf.zeros((3, 2))
    with pytest.raises(ValueError, match="at least 3 classes"):
        dkd(labels=tf.constant([0, 1, 0]), teacher_logits=two, student_logits=two)
    with pytest.raises(ValueError, match="beta must be >= 0"):
        methods.DKD(temperature=4.0, beta=-1.0)
    with pytest.raises(ValueError, match="temperature must be > 0"):
        methods.DKD(temperature=0.0)


def test_the_distiller_runs_dkds_warm_up_epoch_by_epoch():
    keras.utils.set_random_seed(0)
    student = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    dkd = methods.DKD(temperature=2.0, warmup_epochs=4)
    distiller = Distiller(student=student, teacher=None, method=dkd)
    distiller.compile(optimizer="sgd")
    x = np.random.default_rng(1).normal(size=(8, 4)).astype(np.float32)
    data = (x, np.arange(8) % 3, np.random.default_rng(2).normal(size=(8, 3)))
    seen = []
    probe = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: seen.append(float(dkd.warmup.numpy()))
    )
    history = distiller.fit(
        tf.data.Dataset.from_tensor_slices(data).batch(4),
        epochs=3,
        callbacks=[probe],
        verbose=0,
    )
    assert seen == [0.25, 0.5, 0.75]
    assert {"tckd", "nckd", "hard_loss"} <= set(history.history)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"distill.dkd.beta": -1.0}, "config.distill.dkd.beta=-1.0"),
        ({"distill.dkd.warmup_epochs": -1}, "config.distill.dkd.warmup_epochs=-1"),
        (
            {"augment.mixup": 0.2, "distill.alpha": 0.0},
            "no single target class, which dkd needs",
        ),
    ],
)
def test_dkd_configs_that_cannot_work_are_refused(overrides, message):
    config = default.base_config()
    config.distill.method = "dkd"
    for key, value in overrides.items():
        set_key(config, key, value)
    with pytest.raises(ValueError, match=message):
        checks.validate(config)


def test_a_dkd_run_logs_its_terms_and_the_sweep_refuses_it(tiny_config, tmp_path):
    tiny_config.distill.method = "dkd"
    tiny_config.distill.dkd.warmup_epochs = 2
    run_dir = run_mode(tiny_config, tmp_path)
    metrics = files.read_json(os.path.join(run_dir.root, "distilling", "metrics.json"))
    assert metrics["method"] == "dkd" and metrics["beta"] == 8.0
    # The teacher does not see the validation split by default: DKD's terms are
    # logged for training only.
    assert {"tckd", "nckd", "val_loss"} <= set(metrics["history"])
    assert "val_tckd" not in metrics["history"]
    report = open(os.path.join(run_dir.root, "report.md")).read()
    assert (
        "| distilled student (dkd, T=4, alpha=1, beta=8, warmup_epochs=2, "
        "teacher's logits cached) |" in report
    )
    with pytest.raises(ValueError, match="sweeps KD's temperature x alpha"):
        experiment.run(
            tiny_config,
            workdir=run_dir.root,
            mode="sweep",
            tensorboard_dir=run_dir.tensorboard,
        )


def test_generations_chain_each_seed_on_the_previous_generation(tiny_config, tmp_path):
    """Born-again networks (Furlanello et al. 2018): generation 2 learns from
    generation 1's student of its seed, not from the teacher."""
    from tf_distill.data import batches
    from tf_distill.models import loading
    from tf_distill.tasks.classifier import settings as config_lib

    tiny_config.distill.generations = 2
    tiny_config.num_seeds = 2
    tiny_config.distill.validation_teacher = True  # val_agreement, checked below
    run_dir = run_mode(tiny_config, tmp_path)
    report = files.read_json(run_dir.file("report.json"))
    assert set(report["models"]) == {
        "teacher",
        "student",
        "distilling",
        "distilling_gen2",
    }
    assert report["models"]["distilling_gen2"]["n"] == 2
    assert "distilled student, generation 2" in open(run_dir.file("report.md")).read()
    assert os.path.isdir(os.path.join(run_dir.root, "distilling_gen2", "saved_model"))
    # --model=export rewrites every generation's exports, the later ones too.
    exported = experiment.run(
        tiny_config,
        workdir=run_dir.root,
        mode="export",
        tensorboard_dir=run_dir.tensorboard,
    )
    assert set(exported) == {"teacher", "student", "distilling", "distilling_gen2"}

    splits = config_lib.load_data(tiny_config)
    val = batches.pipeline(splits.x_val, batch_size=256)

    def logits(name):
        model = loading.load(os.path.join(run_dir.root, name, "model.keras"))
        return model.predict(val, verbose=0)

    gen2 = logits("distilling_gen2_seed43")
    history = files.read_json(
        os.path.join(run_dir.root, "distilling_gen2_seed43", "metrics.json")
    )["history"]
    with_gen1 = np.mean(losses.top1_agreement(logits("distilling_seed43"), gen2))
    with_teacher = np.mean(losses.top1_agreement(logits("teacher"), gen2))
    assert history["val_agreement"][-1] == pytest.approx(with_gen1, abs=1e-6)
    assert with_gen1 != pytest.approx(with_teacher, abs=1e-6)


def _mlp(units, name):
    from tf_distill.models import architectures

    return architectures.build(
        architectures.ModelSpec("mlp", layers=units),
        input_shape=(4,),
        num_classes=3,
        input_scale=1.0,
        name=name,
    )


def test_the_hint_regresses_student_features_onto_the_teachers():
    keras.utils.set_random_seed(0)
    student, teacher = _mlp((2,), "student"), _mlp((5,), "teacher")
    hint = Hint(
        temperature=2.0,
        alpha=0.5,
        teacher_layer="dense_0",
        student_layer="dense_0",
        weight=3.0,
    )
    features = hint.feature_models(student=student, teacher=teacher)
    assert isinstance(hint.regressor, keras.layers.Dense)
    x = np.random.default_rng(0).normal(size=(6, 4)).astype(np.float32)
    labels = np.array([0, 1, 2, 0, 1, 2])
    s_feat, s_logits = (v.numpy() for v in features.student(x))
    t_feat, t_logits = (v.numpy() for v in features.teacher(x))
    out = hint(
        labels=labels,
        teacher_logits=t_logits,
        student_logits=s_logits,
        teacher_features=t_feat,
        student_features=s_feat,
    )
    kernel, bias = hint.regressor.get_weights()
    want_hint = ((s_feat @ kernel + bias - t_feat) ** 2).mean(-1)
    np.testing.assert_allclose(out["hint_loss"], want_hint, rtol=1e-5)
    kd = methods.KD(temperature=2.0, alpha=0.5)(
        labels=labels, teacher_logits=t_logits, student_logits=s_logits
    )
    np.testing.assert_allclose(out["loss"], kd["loss"] + 3.0 * want_hint, rtol=1e-5)


def test_the_hint_regressor_fits_the_shapes_or_says_why_not():
    from tf_distill.distillation.hint import _regressor

    assert _regressor((7, 7, 16), (7, 7, 16)) is None
    conv = _regressor((7, 7, 8), (7, 7, 32))
    assert isinstance(conv, keras.layers.Conv2D) and conv.kernel.shape == (1, 1, 8, 32)
    with pytest.raises(ValueError, match=r"\(14, 14\) \(student\) and \(7, 7\)"):
        _regressor((14, 14, 8), (7, 7, 32))
    with pytest.raises(ValueError, match="not both feature maps or both vectors"):
        _regressor((16,), (7, 7, 32))


def test_a_hint_run_trains_a_regressor_the_exported_student_lacks(
    tiny_config, tmp_path
):
    import tensorflow as tf

    tiny_config.distill.method = "hint"
    tiny_config.distill.hint.teacher_layer = "dense_0"  # 32 units (TINY)
    tiny_config.distill.hint.student_layer = "dense_0"  # 8 units
    run_dir = run_mode(tiny_config, tmp_path)
    metrics = files.read_json(os.path.join(run_dir.root, "distilling", "metrics.json"))
    assert metrics["teacher"] == "per_step" and metrics["method"] == "hint"
    curve = metrics["history"]["hint_loss"]
    assert curve[-1] < curve[0]  # the regressor and the student learn the hint
    # The SavedModel's checkpoint holds the student's 8 + 10 unit layers alone:
    # (64 x 8 + 8) + (8 x 10 + 10) = 610 values, no 8 -> 32 regressor.
    saved = os.path.join(run_dir.root, "distilling", "saved_model")
    stored = tf.train.load_checkpoint(os.path.join(saved, "variables", "variables"))
    shapes = [
        shape
        for name, shape in stored.get_variable_to_shape_map().items()
        if name != "_CHECKPOINTABLE_OBJECT_GRAPH"
    ]
    assert sum(int(np.prod(shape)) for shape in shapes) == metrics["params"] == 610
    assert [8, 32] not in shapes


def test_a_hint_layer_that_does_not_exist_is_refused_before_any_work(
    tiny_config, tmp_path
):
    tiny_config.distill.method = "hint"
    tiny_config.distill.hint.teacher_layer = "dense_0"
    tiny_config.distill.hint.student_layer = "conv_0"
    with pytest.raises(ValueError, match="the student has no layer 'conv_0'"):
        run_mode(tiny_config, tmp_path)
    assert not (tmp_path / "w").exists()


MY_METHOD_CONFIG = os.path.join(REPO, "examples", "my_method_config.py")


def test_a_users_method_must_be_a_method_and_is_named_when_it_cannot_load():
    with pytest.raises(ValueError, match="valid: kd, dkd, hint, or package.module"):
        registry.method_class("fitnets")
    with pytest.raises(ValueError, match="cannot import 'tests.nowhere'"):
        registry.method_class("tests.nowhere:Method")
    with pytest.raises(ValueError, match="is not a subclass of"):
        registry.method_class("tests.builders:wrong_classes")
    assert registry.method_class("examples.my_method:LogitMatching").needs == "logits"


@pytest.mark.slow
def test_a_users_method_from_its_module_distils_with_its_own_keys(tmp_path):
    # --config.distill.method names the class; the config file adds its keys,
    # which --config flags then set like any other.
    proc = run_main(
        tmp_path,
        "--model=all",
        "--workdir=run",
        *tiny_flags(),
        "--config.num_seeds=1",
        "--config.distill.method=examples.my_method:LogitMatching",
        "--config.distill.logit_matching.label_weight=0.25",
        config=MY_METHOD_CONFIG,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = files.read_json(str(tmp_path / "run" / "distilling" / "metrics.json"))
    assert metrics["method"] == "logit_matching"
    assert metrics["label_weight"] == 0.25
    assert {"logit_loss", "hard_loss", "loss"} <= set(metrics["history"])
    assert metrics["history"]["logit_loss"][-1] < metrics["history"]["logit_loss"][0]


def test_a_users_method_refuses_a_bad_key_and_a_bad_teacher_in_one_line(tmp_path):
    proc = run_main(
        tmp_path,
        "--model=teacher",
        "--workdir=bad_key",
        "--config.distill.logit_matching.label_weight=-1.0",
        config=MY_METHOD_CONFIG,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == (
        "error: config.distill.logit_matching.label_weight=-1.0: expected >= 0"
    )
    assert "Traceback" not in proc.stderr
    # Its own check of the teacher: raw logits, not clipped ones.
    relu_teacher = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Flatten(),
            keras.layers.Dense(10, activation="relu", name="clipped"),
        ]
    )
    path = str(tmp_path / "relu.keras")
    relu_teacher.save(path)
    proc = run_main(
        tmp_path,
        "--model=distilling",
        "--workdir=bad_teacher",
        f"--config.teacher_path={path}",
        config=MY_METHOD_CONFIG,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == (
        "error: method logit_matching: the teacher's last layer clipped has "
        "activation relu; logit matching regresses raw logits"
    )
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "bad_key").exists()
    assert not (tmp_path / "bad_teacher").exists()
