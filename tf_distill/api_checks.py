"""The Python API's arguments, checked before any work: each mistake a user makes
(NumPy arrays, unbatched or one-hot data, labels out of range, shapes that do not
match the models, a teacher sharing weights with the student or ending in a
softmax) is one ValueError naming the argument, never a TensorFlow traceback from
the middle of training."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from tf_distill.teacher import outputs


def check_models(teacher, student) -> None:
    for name, model in (("teacher", teacher), ("student", student)):
        if not isinstance(model, keras.Model):
            raise ValueError(
                f"{name} must be a keras.Model, got {type(model).__name__}"
            )
    t_out, s_out = teacher.output_shape, student.output_shape
    if t_out[-1] != s_out[-1]:
        raise ValueError(
            f"The teacher has {t_out[-1]} outputs and the student {s_out[-1]}: "
            "both must give logits over the same classes"
        )
    # A layer in both models would train with the student and so change the
    # "frozen" teacher under it.
    teachers = {id(v) for v in teacher.weights}
    shared = [v.path for v in student.weights if id(v) in teachers]
    if shared:
        raise ValueError(
            f"The student shares {len(shared)} weight(s) with the teacher "
            f"({', '.join(shared[:3])}): training it would change the teacher; "
            "give the student layers of its own"
        )


def check_epochs(epochs) -> None:
    if isinstance(epochs, bool) or not isinstance(epochs, int | np.integer):
        raise ValueError(f"epochs must be an int, got {epochs!r}")
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")


def check_data(data, name: str, teacher, student) -> None:
    """`data` (argument `name`) is a tf.data.Dataset of (x, y) batches that fits
    both models: x of their input shape, y integer labels of shape (batch,), in
    range on its first batch; and the teacher gives logits on that batch."""
    if not isinstance(data, tf.data.Dataset):
        raise ValueError(
            f"{name} must be a tf.data.Dataset of (x, y) batches, got "
            f"{type(data).__name__}: for arrays, "
            "tf.data.Dataset.from_tensor_slices((x, y)).batch(64)"
        )
    spec = data.element_spec
    if not isinstance(spec, tuple) or len(spec) != 2:
        raise ValueError(f"{name} must yield (x, y) batches; it yields {spec}")
    x_spec, y_spec = spec
    if not y_spec.dtype.is_integer:
        raise ValueError(
            f"{name}'s labels must be integer class indices, got {y_spec.dtype.name}"
            f"{' (one-hot? use tf.argmax(y, -1))' if y_spec.shape.rank == 2 else ''}"
        )
    if y_spec.shape.rank not in (None, 1):  # None: a generator's unknown shape
        hint = {0: " (unbatched? add .batch(64))", 2: " (one-hot? tf.argmax(y, -1))"}
        raise ValueError(
            f"{name}'s labels must have shape (batch,), got {y_spec.shape}"
            f"{hint.get(y_spec.shape.rank, '')}"
        )
    for role, model in (("teacher", teacher), ("student", student)):
        if x_spec.shape.rank is None:
            break  # unknown until the data flows; Keras then names the mismatch
        expected = tuple(model.input_shape[1:])
        got = tuple(x_spec.shape[1:])
        if len(expected) != len(got) or any(
            e is not None and g is not None and e != g
            for e, g in zip(expected, got, strict=True)
        ):
            raise ValueError(
                f"{name} yields x of shape {tuple(x_spec.shape)}, but the {role} "
                f"takes {tuple(model.input_shape)}"
                f"{' (unbatched? add .batch(64))' if got == expected[1:] else ''}"
            )
    _check_first_batch(data, name, teacher)


def _check_first_batch(data, name, teacher) -> None:
    first = next(iter(data.take(1)), None)
    if first is None:
        raise ValueError(f"{name} is empty")
    x, y = first
    classes = teacher.output_shape[-1]
    labels = np.asarray(y)
    outside = labels[(labels < 0) | (labels >= classes)]
    if outside.size:
        raise ValueError(
            f"{name} has labels {sorted(set(outside.tolist()))[:5]} outside "
            f"0..{classes - 1} (the models' {classes} classes)"
        )
    outputs.check_logits(np.asarray(teacher(x, training=False)), "The teacher")
