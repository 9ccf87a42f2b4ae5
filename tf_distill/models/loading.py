"""Models read from files: a saved .keras model, checked against the data, and
copies of a model computing in another dtype (the teacher's bfloat16 pass, the
float32 export)."""

from __future__ import annotations

import os
from collections.abc import Sequence

import keras
import tensorflow as tf

from tf_distill.models import saved_teacher


def check_fits(
    model: keras.Model, *, input_shape: Sequence[int], num_classes: int, path: str
) -> None:
    """A loaded model must fit the data: same input shape and number of classes.

    Raises:
        ValueError: naming `path` and both mappings.
    """
    want_in, want_out = (None, *input_shape), (None, num_classes)
    got_in, got_out = tuple(model.input_shape), tuple(model.output_shape)
    if got_in != want_in or got_out != want_out:
        raise ValueError(
            f"Model {path} maps {got_in} -> {got_out}, but the data needs "
            f"{want_in} -> {want_out}"
        )
    dtype = str(model.outputs[0].dtype)
    if "float" not in dtype:  # no gradient flows through integer outputs
        raise ValueError(
            f"Model {path} outputs {dtype}; logits are floating point (a cast or "
            "argmax at its end?)"
        )


def copy_with_policy(
    model: keras.Model, policy: str, strategy: tf.distribute.Strategy | None = None
) -> keras.Model:
    """A copy of `model` with the same weights, computing in dtype `policy`.

    `model` itself is untouched. Variables stay float32 under every policy, so
    only the arithmetic changes ("float32", "mixed_bfloat16", ...).
    """
    with (strategy or tf.distribute.get_strategy()).scope():
        copy = keras.models.clone_model(model)
        copy.set_weights(model.get_weights())
    for layer in copy.layers:
        layer.dtype_policy = policy
    return copy


def computes_in_float32(model: keras.Model) -> bool:
    """Whether every layer of `model` computes in float32 (no mixed precision)."""
    return all(layer.dtype_policy.compute_dtype == "float32" for layer in model.layers)


def teacher_for_inference(
    teacher: keras.Model, dtype: str, strategy: tf.distribute.Strategy | None = None
) -> keras.Model:
    """The teacher as the caching pass runs it: itself, or a bfloat16 copy.

    bfloat16 is faster only on CPUs with bfloat16 instructions (AVX512-BF16, AMX)
    and on accelerators; the copy leaves the teacher itself untouched.
    """
    if dtype == "float32":
        return teacher
    return copy_with_policy(teacher, "mixed_bfloat16", strategy)


def load(
    path: str,
    strategy: tf.distribute.Strategy | None = None,
    *,
    saved_model: saved_teacher.SavedModelSpec | None = None,
    input_shape: Sequence[int] | None = None,
) -> keras.Model:
    """A saved .keras model, its variables created under `strategy`; with
    `saved_model` (a teacher's), a SavedModel folder too (saved_teacher.py),
    taking images of `input_shape`.

    Raises:
        FileNotFoundError: nothing at `path`.
        ValueError: `path` is a folder (a SavedModel is for serving, not for
            training on) or a file Keras cannot read, saying which.
    """
    if os.path.isdir(path) and saved_model is not None:
        with (strategy or tf.distribute.get_strategy()).scope():
            return saved_teacher.load(path, input_shape=input_shape, spec=saved_model)
    if os.path.isdir(path):
        raise ValueError(
            f"{path} is a folder (a SavedModel?); a model to train on is a .keras "
            "file, as model.save('model.keras') writes (a SavedModel can teach: "
            "config.teacher_path)"
        )
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No model file at {path}")
    try:
        with (strategy or tf.distribute.get_strategy()).scope():
            return keras.models.load_model(path)
    except Exception as e:  # a zip Keras cannot read: say what it is
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ValueError(
            f"{path} is not a Keras model file Keras can load "
            f"({type(e).__name__}: {reason[:200]}); expected a .keras file"
        ) from None
