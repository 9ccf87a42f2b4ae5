"""The diffusion training steps (tf_distill/tasks/diffusion/train_steps.py) on real
digits, a few seconds each: the teacher learns, the EMA follows, the frozen teacher
stays frozen and the student starts from it."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import whole_and_resumed
from tf_distill.tasks.diffusion import progressive, train_steps, unet


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits

    x = load_digits().images.astype(np.float32)[..., None] / 8.0 - 1.0  # [-1, 1]
    return x[:256]


def _network(seed=0, multipliers=(1,)):
    keras.utils.set_random_seed(seed)
    return unet.build(
        image_shape=(8, 8, 1), channels=8, multipliers=multipliers, blocks=1
    )


def _dataset(x, batch=64):
    return tf.data.Dataset.from_tensor_slices(x).batch(batch, drop_remainder=True)


def test_the_teacher_learns_and_its_ema_follows(digits):
    trainer = train_steps.DiffusionTrainer(
        _network(multipliers=(1, 2)),
        prediction="v",
        weighting="v_mse",
        ema_decay=0.9,
        seed=0,
    )
    trainer.compile(optimizer=keras.optimizers.Adam(2e-3), jit_compile=False)
    start = trainer.evaluate(_dataset(digits), verbose=0, return_dict=True)["x_mse"]
    history = trainer.fit(_dataset(digits), epochs=4, verbose=0).history
    assert history["loss"][-1] < history["loss"][0]
    end = trainer.evaluate(_dataset(digits), verbose=0, return_dict=True)["x_mse"]
    assert end < 0.8 * start  # the EMA network denoises better than at the start
    # The EMA trails the network: close to it, not equal.
    net, ema = trainer.network.get_weights(), trainer.ema.get_weights()
    assert max(np.abs(n - e).max() for n, e in zip(net, ema, strict=True)) > 0


def test_a_distillation_round_trains_the_student_and_never_the_teacher(digits):
    """Eager train steps (no tf.function to trace: seconds, not tens of them)."""
    teacher = _network(1)
    trainer = train_steps.DiffusionTrainer(
        teacher, prediction="v", weighting="v_mse", ema_decay=0.0, seed=0
    )
    trainer.compile(optimizer="adam", jit_compile=False)
    batch = tf.constant(digits[:32])
    for _ in range(2):
        trainer.train_step(batch)
    # ema_decay=0: the EMA is the network itself (the reference's rounds).
    pairs = zip(teacher.get_weights(), trainer.ema.get_weights(), strict=True)
    for n, e in pairs:
        np.testing.assert_array_equal(n, e)
    frozen = [w.copy() for w in teacher.get_weights()]
    student = keras.models.clone_model(teacher)
    student.set_weights(teacher.get_weights())  # starts from the teacher
    distiller = train_steps.ProgressiveDistiller(
        student, teacher, student_steps=4, prediction="v", weighting="v_mse", seed=0
    )
    distiller.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=False)
    losses = [float(distiller.train_step(batch)["loss"]) for _ in range(3)]
    assert np.isfinite(losses).all()
    for before, after in zip(frozen, teacher.get_weights(), strict=True):
        np.testing.assert_array_equal(before, after)
    pairs = zip(student.get_weights(), teacher.get_weights(), strict=True)
    assert any(not np.array_equal(s, t) for s, t in pairs)


def test_epsilon_prediction_and_unknown_weightings_are_refused():
    with pytest.raises(ValueError, match="epsilon-prediction cannot be distilled"):
        train_steps.DiffusionTrainer(
            _network(), prediction="eps", weighting="v_mse", seed=0
        )
    with pytest.raises(ValueError, match="weighting='snr'"):
        train_steps.ProgressiveDistiller(
            _network(),
            _network(),
            student_steps=2,
            prediction="x",
            weighting="snr",
            seed=0,
        )
    with pytest.raises(ValueError, match="cannot be halved"):
        unet.build(image_shape=(7, 7, 1), multipliers=(1, 2))


def test_sampling_gives_images_in_the_data_range():
    network = _network()
    noise = tf.random.stateless_normal((4, 8, 8, 1), seed=(0, 1))
    images = progressive.sample(
        lambda z, lam: network([z, lam]), noise, 4, prediction="v"
    )
    assert images.shape == (4, 8, 8, 1)
    assert float(tf.reduce_max(tf.abs(images))) <= 1.0


def test_a_resumed_teacher_fit_draws_the_noise_an_uninterrupted_one_would(
    digits, tmp_path, monkeypatch
):
    """The noise and times come from the trainer's SeedGenerator, whose state the
    weights' backup leaves out (backups.SeedBackup keeps it): without it a resumed
    round differed from an uninterrupted one by up to 6.7e-4 in its weights."""
    from tf_distill.training import fitting

    def fit(name):
        trainer = train_steps.DiffusionTrainer(
            _network(), prediction="v", weighting="v_mse", ema_decay=0.9, seed=0
        )
        trainer.compile(optimizer=keras.optimizers.Adam(2e-3), jit_compile=False)
        fitting.fit(
            trainer,
            name="teacher",
            make_train_ds=lambda epochs: _dataset(digits).repeat(len(epochs)),
            val_ds=_dataset(digits[:64]),
            epochs=3,
            steps_per_epoch=4,
            backup_dir=str(tmp_path / name / "backup"),
            tensorboard_dir=str(tmp_path / name / "tb"),
            early_stopping=fitting.EarlyStopping(monitor="val_loss", patience=0),
        )
        return trainer.get_weights()

    whole, resumed = whole_and_resumed(fit, monkeypatch)
    for a, b in zip(whole, resumed, strict=True):
        np.testing.assert_array_equal(a, b)
