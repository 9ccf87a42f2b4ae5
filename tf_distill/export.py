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
import ml_collections
import numpy as np
import tensorflow as tf
from absl import logging

from tf_distill import data, models, outputs

SIGNATURE = "serving_default"
CLASS_NAMES_SIGNATURE = "class_names"
TFLITE_KINDS = ("float32", "int8")
MODEL_NAMES = ("teacher", "student", "distilling")  # the run directory's model folders


def role(model_name: str) -> str:
    """The prefix of a model's LiteRT files: "teacher" or "student"."""
    return "teacher" if model_name == "teacher" else "student"


def tflite_name(model_name: str, kind: str) -> str:
    """`student_int8.tflite` and the like: the file name of one LiteRT artefact."""
    return f"{role(model_name)}_{kind}.tflite"


def export_model(
    model: keras.Model,
    model_dir: str,
    *,
    model_name: str,
    class_names: Sequence[str],
    representative: np.ndarray | None,
) -> dict[str, int]:
    """Writes every artefact of one trained model into `model_dir`.

    Args:
        model: the trained Keras model (uint8-valued pixels in, logits out).
        model_dir: the model's folder in the run directory.
        model_name: "teacher", "student" or "distilling"; names the LiteRT files.
        class_names: one name per class, in class_id order.
        representative: training images (uint8) that calibrate the int8 LiteRT
            file; None writes no LiteRT file.

    Returns:
        Bytes on disk of each artefact, keyed "saved_model", "tflite_float32", ...
    """
    if not models.computes_in_float32(model):
        # Exports compute in float32 whatever the training policy: LiteRT has no
        # bfloat16 kernels, and CPUs serve float32 fastest. Same (float32) weights.
        model = models.copy_with_policy(model, "float32")
    saved_model = os.path.join(model_dir, "saved_model")
    export_saved_model(model, saved_model, class_names=class_names)
    outputs.write_text(
        os.path.join(model_dir, "class_names.txt"),
        "".join(f"{name}\n" for name in class_names),
    )
    sizes = {"saved_model": outputs.size_bytes(saved_model)}
    for kind in TFLITE_KINDS:
        path = os.path.join(model_dir, tflite_name(model_name, kind))
        if representative is None:
            # A LiteRT file from an earlier run would no longer match this model.
            with contextlib.suppress(FileNotFoundError):
                os.remove(path)
            continue
        export_tflite(
            model, path, representative=representative if kind == "int8" else None
        )
        sizes[f"tflite_{kind}"] = outputs.size_bytes(path)
    # Measured on the previous artefacts (--model=evaluate): stale now.
    with contextlib.suppress(FileNotFoundError):
        os.remove(os.path.join(model_dir, "evaluation.json"))
    return sizes


def export_saved_model(
    model: keras.Model, path: str, *, class_names: Sequence[str]
) -> None:
    """Writes `model` alone as a SavedModel at `path`, for TensorFlow Serving.

    `serving_default` takes `pixels`, uint8 of shape (batch, *input shape), and
    returns `logits`, `probabilities` (softmax), `class_id` (argmax) and
    `class_name`; a pixels tensor of another shape fails with a message giving
    both shapes. `class_names` takes nothing and returns every class name.
    """
    archive = _archive(model, class_names=tuple(class_names))
    with outputs.replacing_dir(path) as tmp:
        archive.write_out(tmp, verbose=False)


def export_tflite(
    model: keras.Model, path: str, *, representative: np.ndarray | None = None
) -> None:
    """Writes `model` as a LiteRT flatbuffer with a `serving_default` signature.

    The signature takes uint8 `pixels` and returns `logits`, `probabilities` and
    `class_id`. With `representative` (uint8 training images), weights and
    activations are quantised to int8 by post-training calibration on them; the
    input stays uint8 pixels and the outputs float32, so the int8 file is a drop-in
    replacement for the float32 one.
    """
    with tempfile.TemporaryDirectory() as tmp:
        _archive(model, class_names=None).write_out(tmp, verbose=False)
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
            flatbuffer = converter.convert()
    with outputs.replacing_file(path, suffix=".tflite") as tmp_path:
        with open(tmp_path, "wb") as f:
            f.write(flatbuffer)


def _archive(model, *, class_names):
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
        logits = tf.cast(model(tf.cast(pixels, tf.float32), training=False), tf.float32)
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
    return x_train[np.sort(picked)]


def trained_models(workdir: str) -> list[str]:
    """The names of the models trained in `workdir` (those with a model.keras)."""
    found = [
        name
        for name in MODEL_NAMES
        if os.path.isfile(os.path.join(workdir, name, "model.keras"))
    ]
    if not found:
        raise FileNotFoundError(
            f"No trained model in {workdir} (looked for "
            f"{', '.join(f'{n}/model.keras' for n in MODEL_NAMES)}). Train one first "
            "with the same --config and --workdir, e.g. --model=all."
        )
    return found


def reexport(config: ml_collections.ConfigDict, *, workdir: str) -> dict[str, dict]:
    """`--model=export`: rewrites every trained model's artefacts, no training.

    Reads `<workdir>/<model>/model.keras` and writes what `export_model` writes,
    with the data of `config` giving the class names and the int8 calibration
    images. Returns the artefact sizes per model.
    """
    names = trained_models(workdir)
    splits = data.load(config)
    loaded = {}
    for name in names:  # every model is loaded and checked before any is rewritten
        path = os.path.join(workdir, name, "model.keras")
        loaded[name] = keras.models.load_model(path)
        models.check_fits(
            loaded[name],
            input_shape=splits.input_shape,
            num_classes=splits.num_classes,
            path=path,
        )
    representative = representative_for(config, splits)
    results = {}
    for name, model in loaded.items():
        results[name] = export_model(
            model,
            os.path.join(workdir, name),
            model_name=name,
            class_names=splits.class_names,
            representative=representative,
        )
        logging.info("Exported %s: %s", name, results[name])
    return results


def representative_for(config, splits) -> np.ndarray | None:
    """The int8 calibration images `config.export` asks for; None: no LiteRT."""
    if not config.export.tflite:
        return None
    return representative_images(
        splits.x_train, config.export.representative_examples, config.seed
    )
