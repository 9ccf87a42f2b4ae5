"""A SavedModel as a teacher: TF Hub and Kaggle classifiers, a TF Serving export,
another team's model, or a student this package shipped.

The folder is loaded with `keras.layers.TFSMLayer` (Keras' own reloader); one
named signature is called, one of its outputs is kept, and a teacher that gives
probabilities has them turned into log-probabilities, which the distillation loss
treats exactly as logits (softmax(log p / T) is p sharpened or softened by T, as
softmax(z / T) is for logits z). The layer is frozen.

A SavedModel runs its own graph: load only SavedModels you trust.
"""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import tensorflow as tf

OUTPUTS = ("logits", "probabilities")


@dataclasses.dataclass(frozen=True)
class SavedModelSpec:
    """How to call a SavedModel teacher (the `config.teacher.*` keys of that name)."""

    signature: str = "serving_default"
    output_key: str | None = None  # None: the only output, else "logits"
    outputs: str = "logits"  # or "probabilities"


class SignatureLayer(keras.layers.TFSMLayer):
    """TFSMLayer calling a signature with its one input by name (signatures take
    keyword arguments only), cast to the input's dtype (our exports take uint8
    pixels, the pipelines give float32 holding the same values), keeping one
    output and turning probabilities into log-probabilities."""

    def __init__(self, filepath, *, spec: SavedModelSpec, **kwargs):
        super().__init__(filepath, call_endpoint=spec.signature, **kwargs)
        self.spec = spec
        # The concrete function, which knows its inputs and outputs: the named
        # signature if there is one, else the endpoint's traced function.
        signatures = self._reloaded_obj.signatures
        if spec.signature in signatures:
            self.call_endpoint_fn = signatures[spec.signature]
        elif getattr(self.call_endpoint_fn, "concrete_functions", None):
            self.call_endpoint_fn = self.call_endpoint_fn.concrete_functions[0]
        args, named = self.call_endpoint_fn.structured_input_signature
        self.input_name, self.input_spec_tf = (
            next(iter(named.items())) if named else (None, args[0])
        )
        self.output_key = _output_key(
            filepath, spec, self.call_endpoint_fn.structured_outputs
        )

    def call(self, inputs, training=False):
        del training  # a frozen teacher: always inference
        x = tf.cast(inputs, self.input_spec_tf.dtype)
        out = (
            self.call_endpoint_fn(**{self.input_name: x})
            if self.input_name
            else self.call_endpoint_fn(x)
        )
        if isinstance(out, dict):
            out = out[self.output_key]
        out = tf.cast(out, tf.float32)
        if self.spec.outputs == "probabilities":
            # The smallest normal float32: a probability of 0 gives a finite -87.
            out = tf.math.log(tf.maximum(out, np.finfo(np.float32).tiny))
        return out


def load(path: str, *, input_shape, spec: SavedModelSpec) -> keras.Model:
    """The SavedModel in folder `path` as a frozen keras.Model from the data's
    images (float32 holding raw pixel values) to logits.

    Raises:
        ValueError: in one line, naming `path` and what does not fit: the
            signature (listing those it has), its inputs, the output key (listing
            the outputs), or the input shape.
    """
    if spec.outputs not in OUTPUTS:
        raise ValueError(
            f"config.teacher.outputs={spec.outputs!r}; valid: {', '.join(OUTPUTS)}"
        )
    try:
        layer = SignatureLayer(path, spec=spec, trainable=False, name="saved_model")
    except (ValueError, OSError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ValueError(f"SavedModel {path}: {first}") from None
    _check_inputs(path, spec, layer, input_shape)
    inputs = keras.Input(tuple(input_shape), name="pixels")
    model = keras.Model(inputs, layer(inputs), name="teacher")
    model.trainable = False
    return model


def _output_key(path, spec, outputs) -> str | None:
    if not isinstance(outputs, dict):
        return None
    keys = sorted(outputs)
    key = spec.output_key or (
        keys[0] if len(keys) == 1 else "logits" if "logits" in keys else None
    )
    if key not in outputs:
        raise ValueError(
            f"SavedModel {path}: signature {spec.signature!r} has outputs "
            f"{', '.join(keys)}; name the teacher's with config.teacher.output_key"
        )
    return key


def _check_inputs(path, spec, layer, input_shape) -> None:
    args, named = layer.call_endpoint_fn.structured_input_signature
    count = len(named) + len(args)
    if count != 1:
        raise ValueError(
            f"SavedModel {path}: signature {spec.signature!r} takes {count} inputs; "
            "a teacher takes one batch of images"
        )
    want = tf.TensorShape((None, *input_shape))
    if not layer.input_spec_tf.shape.is_compatible_with(want):
        raise ValueError(
            f"SavedModel {path}: signature {spec.signature!r} takes inputs of shape "
            f"{tuple(layer.input_spec_tf.shape)}, but the data's images are "
            f"{tuple(want)}"
        )


def load_teacher(
    path: str,
    *,
    input_shape,
    signature: str = "serving_default",
    output_key: str | None = None,
    outputs: str = "logits",
) -> keras.Model:
    """A SavedModel teacher for the Python API:
    `tf_distill.distill(teacher=tf_distill.load_teacher(path, input_shape=...))`.

    Args:
        path: the SavedModel folder (load only ones you trust).
        input_shape: the images' (height, width, channels), as the student's.
        signature: the signature (or endpoint, e.g. Keras' "serve") to call.
        output_key: which output of a signature returning several; None: the
            only one, else "logits".
        outputs: "logits", or "probabilities" (turned into log-probabilities).
    """
    spec = SavedModelSpec(signature=signature, output_key=output_key, outputs=outputs)
    return load(path, input_shape=input_shape, spec=spec)
