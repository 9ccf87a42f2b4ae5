"""Shipping a trained model: a SavedModel for serving, LiteRT files for devices.

Every artefact takes the raw input a client has, uint8 pixels of the data set's
shape, and does training's preprocessing inside (the model's first layer rescales),
so a server or a phone app feeds pixels straight in. What one model's folder holds:

    saved_model/            serving_default: pixels -> logits, probabilities,
                            class_id, class_name;  class_names: () -> class_names
    <role>_float32.tflite   LiteRT flatbuffer, float32 (if config.export.tflite)
    <role>_int8.tflite      LiteRT, int8 weights and activations, post-training
                            quantised on training images; float32 outputs
    class_names.txt         one class name a line; line i is class_id i

`<role>` is "teacher" for the teacher and "student" for the student alone and the
distilled student. Only the model itself is exported: a student's files hold no
teacher variable.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import warnings
from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

from tf_distill import quiet
from tf_distill.data import image_files
from tf_distill.models import loading
from tf_distill.outputs import files
from tf_distill.outputs.rundir import ModelPaths
from tf_distill.training import progress

SIGNATURE = "serving_default"
CLASS_NAMES_SIGNATURE = "class_names"
TFLITE_KINDS = ("float32", "int8")


def export_model(
    model: keras.Model,
    paths: ModelPaths,
    *,
    class_names: Sequence[str],
    representative: np.ndarray | None,
    pixel_max: float | None = None,
) -> dict[str, int]:
    """Writes every artefact of one trained model into its folder.

    Args:
        model: the trained Keras model (uint8-valued pixels in, logits out).
        paths: the model's paths in the run directory (rundir.RunDir.model).
        class_names: one name per class, in class_id order.
        representative: training images (uint8) that calibrate the int8 LiteRT
            file; None writes no LiteRT file.
        pixel_max: the largest raw pixel value of the training data (16 for
            digits, 255 for images); every artefact clips its input to it, so a
            client sending 0..255 to a 0..16 model gets the brightest valid pixel
            rather than an input the model never saw. None: no clipping.

    Returns:
        Bytes on disk of each artefact, keyed "saved_model", "tflite_float32", ...
    """
    if not loading.computes_in_float32(model):
        # Exports compute in float32 whatever the training policy: LiteRT has no
        # bfloat16 kernels, and CPUs serve float32 fastest. Same (float32) weights.
        model = loading.copy_with_policy(model, "float32")
    count = 1 + (0 if representative is None else len(TFLITE_KINDS))
    name = os.path.basename(os.path.normpath(paths.dir))
    with progress.Pass(f"Exporting {name}", count, unit="files") as shown:
        export_saved_model(
            model, paths.saved_model, class_names=class_names, pixel_max=pixel_max
        )
        shown.update(1)
        files.write_text(
            paths.class_names, "".join(f"{name}\n" for name in class_names)
        )
        sizes = {"saved_model": files.size_bytes(paths.saved_model)}
        for kind in TFLITE_KINDS:
            path = paths.tflite(kind)
            if representative is None:
                # A LiteRT file from an earlier run would no longer match this model.
                with contextlib.suppress(FileNotFoundError):
                    os.remove(path)
                continue
            export_tflite(
                model,
                path,
                representative=representative if kind == "int8" else None,
                pixel_max=pixel_max,
            )
            sizes[f"tflite_{kind}"] = files.size_bytes(path)
            shown.update(1)
    # Measured on the previous artefacts (--model=evaluate): stale now.
    with contextlib.suppress(FileNotFoundError):
        os.remove(paths.evaluation)
    return sizes


def export_saved_model(
    model: keras.Model,
    path: str,
    *,
    class_names: Sequence[str],
    pixel_max: float | None = None,
) -> None:
    """Writes `model` alone as a SavedModel at `path`, for TensorFlow Serving.

    `serving_default` takes `pixels`, uint8 of shape (batch, *input shape), and
    returns `logits`, `probabilities` (softmax), `class_id` (argmax) and
    `class_name`; a pixels tensor of another shape fails with a message giving
    both shapes. `class_names` takes nothing and returns every class name.
    """
    archive = _archive(model, class_names=tuple(class_names), pixel_max=pixel_max)
    with files.replacing_dir(path) as tmp:
        archive.write_out(tmp, verbose=False)


def export_tflite(
    model: keras.Model,
    path: str,
    *,
    representative: np.ndarray | None = None,
    pixel_max: float | None = None,
) -> None:
    """Writes `model` as a LiteRT flatbuffer with a `serving_default` signature.

    The signature takes uint8 `pixels` and returns `logits`, `probabilities` and
    `class_id`. With `representative` (uint8 training images), weights and
    activations are quantised to int8 by post-training calibration on them; the
    input stays uint8 pixels and the outputs float32, so the int8 file is a drop-in
    replacement for the float32 one.
    """
    with tempfile.TemporaryDirectory() as tmp:
        _archive(model, class_names=None, pixel_max=pixel_max).write_out(
            tmp, verbose=False
        )
        converter = tf.lite.TFLiteConverter.from_saved_model(
            tmp, signature_keys=[SIGNATURE]
        )
        if representative is not None:
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.representative_dataset = lambda: (
                {"pixels": representative[i : i + 1]}
                for i in range(len(representative))
            )
        with warnings.catch_warnings():
            # int8 calibration runs TensorFlow's own tf.lite.Interpreter, which
            # warns that it is deprecated: the converter's business, not the user's.
            warnings.filterwarnings(
                "ignore", message=".*tf.lite.Interpreter is deprecated"
            )
            with quiet.stderr_silenced():  # the converter's progress lines
                flatbuffer = converter.convert()
    with files.replacing_file(path, suffix=".tflite") as tmp_path:
        with open(tmp_path, "wb") as f:
            f.write(flatbuffer)


def _archive(model, *, class_names, pixel_max):
    """The export of `model` alone: `serving_default` (and `class_names`, if given).

    LiteRT has no string tensors in its builtin ops, so its archive (class_names
    None) leaves out `class_name`; its class names go in class_names.txt.
    """
    input_shape = tuple(model.input_shape[1:])
    # No `archive.track(model)`: in Keras 3.15 that stores every weight twice, once
    # per Keras variable and once per tf.Variable the endpoint captures (2x the size
    # on disk and 2x the memory in TF Serving; keras-team/keras#23553). The
    # endpoint's captured variables are all serving needs, each stored once.
    archive = keras.export.ExportArchive()

    def serve(pixels):
        if class_names is not None:
            # Fails with both shapes in the message, instead of deep in a Reshape.
            pixels = tf.ensure_shape(pixels, (None, *input_shape))
        x = tf.cast(pixels, tf.float32)
        if pixel_max is not None and pixel_max < 255:
            x = tf.minimum(x, float(pixel_max))  # float: LiteRT has no uint8 Minimum
        logits = tf.cast(model(x, training=False), tf.float32)
        class_id = tf.argmax(logits, axis=-1, output_type=tf.int32)
        out = {
            "logits": logits,
            "probabilities": tf.nn.softmax(logits, axis=-1),
            "class_id": class_id,
        }
        if class_names is not None:
            out["class_name"] = tf.gather(tf.constant(class_names), class_id)
        return out

    spec = tf.TensorSpec((None, *input_shape), tf.uint8, name="pixels")
    archive.add_endpoint(SIGNATURE, serve, input_signature=[spec])
    if class_names is not None:
        archive.add_endpoint(
            CLASS_NAMES_SIGNATURE,
            lambda: {"class_names": tf.constant(class_names)},
            input_signature=[],
        )
    return archive


def representative_images(x_train: np.ndarray, count: int, seed: int) -> np.ndarray:
    """`count` training images drawn without replacement, for int8 calibration."""
    rng = np.random.default_rng(seed)
    picked = rng.choice(len(x_train), size=min(count, len(x_train)), replace=False)
    return image_files.as_array(x_train[np.sort(picked)])
