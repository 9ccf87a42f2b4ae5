"""A SavedModel as the teacher (config.teacher_path to a folder, and
tf_distill.load_teacher): its signature called on the raw pixels, probabilities
turned into log-probabilities, and what does not fit refused in one line."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import tf_distill
from tests.conftest import run_mode, tiny
from tf_distill.shipping import export

SHAPE = (8, 8, 1)


def classifier(classes=3, softmax=False):
    keras.utils.set_random_seed(0)
    inputs = keras.Input(SHAPE)
    x = keras.layers.Flatten()(inputs)
    x = keras.layers.Dense(classes, activation="softmax" if softmax else None)(x)
    return keras.Model(inputs, x)


def pixels(n=5):
    rng = np.random.default_rng(1)
    return rng.integers(0, 17, (n, *SHAPE)).astype(np.float32)


def test_our_own_export_teaches_with_the_logits_it_was_trained_with(tmp_path):
    model = classifier()
    export.export_saved_model(model, str(tmp_path / "sm"), class_names=("a", "b", "c"))
    teacher = tf_distill.load_teacher(str(tmp_path / "sm"), input_shape=SHAPE)
    assert teacher.output_shape == (None, 3) and not teacher.trainable_weights
    np.testing.assert_allclose(
        teacher.predict(pixels(), verbose=0),
        model.predict(pixels(), verbose=0),
        rtol=1e-5,
        atol=1e-5,
    )


def test_a_softmax_teacher_gives_log_probabilities_not_probabilities(tmp_path):
    model = classifier(softmax=True)
    model.export(str(tmp_path / "sm"), verbose=False)  # Keras' own: endpoint "serve"
    probabilities = model.predict(pixels(), verbose=0)
    teacher = tf_distill.load_teacher(
        str(tmp_path / "sm"),
        input_shape=SHAPE,
        signature="serve",
        outputs="probabilities",
    )
    got = teacher.predict(pixels(), verbose=0)
    np.testing.assert_allclose(got, np.log(probabilities), rtol=1e-5, atol=1e-5)
    # What the loss sees at T: softmax(log p / T), so T=1 gives p back.
    np.testing.assert_allclose(
        tf.nn.softmax(got).numpy(), probabilities, rtol=1e-5, atol=1e-6
    )


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"signature": "predict"}, r"SavedModel .*sm: .*'predict'.*serving_default"),
        ({"output_key": "scores"}, r"has outputs class_id, class_name, logits, .*"),
        ({"input_shape": (9, 9, 1)}, r"takes inputs of shape \(None, 8, 8, 1\)"),
        ({"outputs": "probs"}, r"outputs='probs'; valid: logits, probabilities"),
    ],
)
def test_what_does_not_fit_is_refused_in_one_line(tmp_path, kwargs, message):
    export.export_saved_model(classifier(), str(tmp_path / "sm"), class_names="abc")
    kwargs = {"input_shape": SHAPE, **kwargs}
    with pytest.raises(ValueError, match=message) as error:
        tf_distill.load_teacher(str(tmp_path / "sm"), **kwargs)
    assert "\n" not in str(error.value)


def test_a_shipped_teacher_folder_distils_from_the_command_line(tmp_path):
    """--model=teacher, then another run distils from the teacher's exported
    SavedModel folder: the student's agreement with it is its agreement with the
    .keras teacher it was; a teacher of the wrong class count is refused before
    any work."""
    from tf_distill.outputs import files
    from tf_distill.tasks.classifier import settings as config_lib

    first = run_mode(tiny(), tmp_path / "a", "teacher")
    config = tiny()
    config.teacher_path = first.model("teacher").saved_model
    run_dir = run_mode(config, tmp_path / "b", "distilling")
    metrics = files.read_json(run_dir.model("distilling").metrics)
    splits = config_lib.load_data(config)
    models = [first.model("teacher").keras, run_dir.model("distilling").keras]
    teacher, student = (keras.models.load_model(p) for p in models)
    x = splits.x_test.astype(np.float32)
    agree = np.mean(
        teacher.predict(x, verbose=0).argmax(1)
        == student.predict(x, verbose=0).argmax(1)
    )
    assert metrics["test_agreement_with_teacher"] == pytest.approx(agree, abs=1e-6)
    wrong = tmp_path / "wrong"
    export.export_saved_model(classifier(classes=4), str(wrong), class_names="abcd")
    config.teacher_path = str(wrong)
    with pytest.raises(ValueError, match=r"maps \(None, 8, 8, 1\) -> \(None, 4\)"):
        run_mode(config, tmp_path / "c", "distilling")
