"""Running what was shipped, as a client would: the SavedModel and the LiteRT files.

`open_artefact(path)` gives a `Classifier` for a `saved_model/` folder or a `.tflite`
file; `evaluate_artefacts` (`--model=evaluate`) measures every artefact of a model on
the test split with the measures of metrics.json (measure.classification_metrics), so
a user checks what they ship rather than the Keras model they trained.
"""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf
from absl import logging

from tf_distill.data import image_files
from tf_distill.models import measure
from tf_distill.outputs import files
from tf_distill.outputs.rundir import ModelPaths
from tf_distill.shipping import export

BATCH = 256  # examples per call when evaluating; any size works


class Classifier:
    """An exported model: uint8 pixels in, float32 logits out."""

    path: str
    input_shape: tuple[int, ...]

    def logits(self, pixels: np.ndarray) -> np.ndarray:
        """Logits for `pixels`, uint8 of shape (batch, *input_shape), in batches;
        an image folder's ImageFiles are decoded a batch at a time."""
        out = []
        for i in range(0, max(len(pixels), 1), BATCH):
            chunk = image_files.as_array(pixels[i : i + BATCH])
            check_pixels(chunk, self.input_shape, self.path)
            out.append(self._call(chunk))
        return np.concatenate(out)

    def _call(self, pixels: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class SavedModelClassifier(Classifier):
    """The SavedModel's `serving_default` signature, as TensorFlow Serving calls it."""

    def __init__(self, path: str):
        self.path = path
        loaded = tf.saved_model.load(path)
        self._serve = loaded.signatures[export.SIGNATURE]
        spec = self._serve.structured_input_signature[1]["pixels"]
        self.input_shape = tuple(spec.shape[1:])
        names = loaded.signatures[export.CLASS_NAMES_SIGNATURE]()["class_names"]
        self.class_names = [n.decode() for n in names.numpy()]

    def _call(self, pixels):
        return self._serve(pixels=tf.constant(pixels))["logits"].numpy()


class LiteRTClassifier(Classifier):
    """A `.tflite` file in the LiteRT interpreter (`ai_edge_litert`)."""

    def __init__(self, path: str):
        # Imported here: the interpreter is only needed to run LiteRT files.
        from ai_edge_litert.interpreter import Interpreter

        self.path = path
        interpreter = Interpreter(model_path=path)
        self._run = interpreter.get_signature_runner(export.SIGNATURE)
        details = self._run.get_input_details()["pixels"]
        self.input_shape = tuple(int(n) for n in details["shape_signature"][1:])

    def _call(self, pixels):
        # A copy: the interpreter may reuse its output buffer on the next call.
        return np.array(self._run(pixels=pixels)["logits"], copy=True)


def open_artefact(path: str) -> Classifier:
    """The `Classifier` for a SavedModel folder or a `.tflite` file."""
    if path.endswith(".tflite") and os.path.isfile(path):
        return LiteRTClassifier(path)
    if os.path.isfile(os.path.join(path, "saved_model.pb")):
        return SavedModelClassifier(path)
    raise FileNotFoundError(f"No exported model at {path}")


def check_pixels(pixels, input_shape, path) -> None:
    """Refuses input the artefact would reject deep inside, with a clear message."""
    want = f"uint8 pixels of shape (batch, {', '.join(map(str, input_shape))})"
    if not isinstance(pixels, np.ndarray):
        raise TypeError(f"{path} takes a NumPy array of {want}; got {type(pixels)}")
    if pixels.dtype != np.uint8 or tuple(pixels.shape[1:]) != tuple(input_shape):
        raise ValueError(
            f"{path} takes {want}; got {pixels.dtype} of shape {pixels.shape}"
        )


def artefacts(paths: ModelPaths) -> dict[str, str]:
    """The exported artefacts present in a model's folder, by kind."""
    found = {"saved_model": paths.saved_model}
    for kind in export.TFLITE_KINDS:
        found[f"tflite_{kind}"] = paths.tflite(kind)
    return {kind: path for kind, path in found.items() if os.path.exists(path)}


def evaluate_artefacts(paths: ModelPaths, x: np.ndarray, y: np.ndarray) -> dict:
    """Every exported artefact of one model on (x, y), as a client runs it.

    Returns:
        {kind: {"test_accuracy", "test_loss", "bytes"}} per artefact present.

    Raises:
        FileNotFoundError: the model's folder holds no export.
    """
    found = artefacts(paths)
    if not found:
        raise FileNotFoundError(
            f"{paths.dir} holds no export; run --model=export first"
        )
    result = {}
    for kind, path in found.items():
        measured = measure.classification_metrics(open_artefact(path).logits(x), y)
        result[kind] = {
            "test_accuracy": measured.accuracy,
            "test_loss": measured.loss,
            "bytes": files.size_bytes(path),
        }
        logging.info(
            "%s %s: test accuracy %.4f, test loss %.4f",
            paths.key.name,
            kind,
            measured.accuracy,
            measured.loss,
        )
    return result


def format_table(results: dict) -> str:
    """A Markdown table of `evaluate_run`'s results, one row per artefact."""
    rows = [
        "| model | artefact | test acc. | test loss | KiB |",
        "|---|---|---|---|---|",
    ]
    for name, result in results.items():
        for kind, r in result.items():
            size = f"{r['bytes'] / 1024:,.0f}" if "bytes" in r else ""
            rows.append(
                f"| {name} | {kind} | {r['test_accuracy']:.4f} | "
                f"{r['test_loss']:.4f} | {size} |"
            )
    return "\n".join(rows)
