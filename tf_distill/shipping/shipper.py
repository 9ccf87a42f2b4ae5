"""Shipping a trained classifier: its exports, their sizes in metrics.json, and the
models an interrupted run had trained (exported now if their export had not ended).

`record` saves a trained model and its metrics.json and records it as "trained";
"finished" is recorded after the export, so a run killed while exporting resumes
by exporting, not by training again.
"""

from __future__ import annotations

import numpy as np
from absl import logging

from tf_distill.models import loading
from tf_distill.outputs import files
from tf_distill.outputs.rundir import ModelKey, RunDir
from tf_distill.reports import metrics_file
from tf_distill.shipping import export


class Shipping:
    """Exports the models of one run and reuses those a crashed run finished."""

    def __init__(self, settings, splits, strategy, run_dir: RunDir, state):
        self.settings = settings  # classifier.Settings
        self.splits = splits
        self.strategy = strategy
        self.run_dir = run_dir
        self.state = state  # resume.RunState

    def reuse(self, key: ModelKey, *, ship: bool, load_model: bool = True):
        """(model or None, metrics) of a model an earlier run finished, or an
        interrupted one trained: exported now if the interruption came before
        its export finished."""
        paths = self.run_dir.model(key)
        metrics = files.read_json(paths.metrics)
        if self.state.finished(key.name):
            logging.info("%s is finished; reusing it", key.name)
            model = loading.load(paths.keras, self.strategy) if load_model else None
            return model, metrics
        logging.info("%s was trained before the interruption; exporting it", key.name)
        model = loading.load(paths.keras, self.strategy)
        return model, self.ship(key, model, metrics, ship=ship)

    def record(self, key: ModelKey, model, result, selection, *, ship: bool, **about):
        """Saves a trained model with the weights `selection` kept (model.keras),
        writes its metrics.json (metrics_file.describe, `about`: seed,
        train_examples, teacher_seconds, and `extra` keys), records it as trained,
        then ships it. "Trained" comes before the export: a run killed while
        exporting resumes by exporting this model, not by training it again."""
        paths = self.run_dir.model(key)
        files.save_keras(model, paths.keras)
        extra = about.pop("extra", None) or {}
        metrics = metrics_file.describe(
            key,
            model,
            result,
            selection,
            splits=self.splits,
            strategy=self.strategy,
            fingerprint=self.settings.fingerprint,
            config=self.settings.config,
            **about,
        )
        metrics.update(extra)
        files.write_json(paths.metrics, metrics)
        self.state.mark_trained(key.name)
        metrics_file.log(metrics, selection)
        return self.ship(key, model, metrics, ship=ship)

    def ship(self, key: ModelKey, model, metrics: dict, *, ship: bool) -> dict:
        """Exports a saved model (if `ship`), records the artefacts' sizes in its
        metrics.json and marks it finished. Returns the metrics."""
        paths = self.run_dir.model(key)
        artefact_bytes = {}
        if ship:
            logging.info("Exporting %s to %s", key.name, paths.dir)
            artefact_bytes = export.export_model(
                model,
                paths,
                class_names=self.splits.class_names,
                representative=calibration_images(self.settings, self.splits.x_train),
                pixel_max=self.splits.input_scale,
            )
        metrics["artefact_bytes"] = artefact_bytes
        metrics["saved_model_bytes"] = artefact_bytes.get("saved_model")
        files.write_json(paths.metrics, metrics)
        self.state.mark_finished(key.name)
        return metrics


def calibration_images(settings, x_train: np.ndarray) -> np.ndarray | None:
    """The int8 LiteRT calibration images `settings` asks for; None: no LiteRT."""
    if not settings.export_tflite:
        return None
    return export.representative_images(
        x_train, settings.representative_examples, settings.seed
    )
