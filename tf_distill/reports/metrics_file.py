"""metrics.json: what the run directory says of one trained model.

The fixed keys (`model`, `test_accuracy`, `test_loss`, `epochs_run`,
`train_seconds`, `examples_per_second`, `history`) and the rest the report reads;
the classifier task adds the method and the exports' sizes.
"""

from __future__ import annotations

import keras
from absl import logging

from tf_distill.models import measure
from tf_distill.outputs.rundir import ModelKey
from tf_distill.training import fitting


def describe(
    key: ModelKey,
    model: keras.Model,
    result: fitting.FitResult,
    selection: fitting.Selection,
    *,
    seed: int,
    teacher_seconds: float,
    splits,
    train_examples: int,
    strategy,
    fingerprint: str,
    config: dict | None = None,
) -> dict:
    """metrics.json's fields but for the method and the exports' sizes."""
    metrics = {
        "model": key.name,
        "config_fingerprint": fingerprint,
        "config": config,  # whose keys a rerun with another config names
        "seed": seed,
        "test_accuracy": selection.kept.accuracy,
        "test_loss": selection.kept.loss,
        "weights": selection.weights,
        "test_accuracy_best_validation": selection.best.accuracy,
        "test_accuracy_last_epoch": selection.last.accuracy,
        "best_epoch": result.best_epoch,
        # Of the kept weights: what settings are chosen on (sweep_report.py).
        "validation_accuracy": kept_validation_accuracy(result, selection),
        "epochs_run": result.epochs_run,
        # Every epoch's wall time (before a crash too), and the teacher's caching
        # pass.
        "train_seconds": result.seconds + teacher_seconds,
        "teacher_pass_seconds": teacher_seconds,
        # Training images per epoch: with transfer data, more than the labelled.
        "train_examples": train_examples,
        "examples_per_second": train_examples * result.epochs_run / result.seconds,
        "inference_examples_per_second": measure.inference_examples_per_second(
            model, splits.x_test
        ),
        "inference_batch_size": measure.INFERENCE_BATCH,
        "params": model.count_params(),
        "data": {"source": splits.source, **splits.sizes()},
        "strategy": type(strategy).__name__,
        "replicas": strategy.num_replicas_in_sync,
    }
    if key.base != "teacher" and selection.kept.agreement is not None:
        metrics["test_agreement_with_teacher"] = selection.kept.agreement
    metrics["history"] = {
        k: [None if v is None else float(v) for v in vs]
        for k, vs in result.history.items()
    }
    return metrics


def log(metrics: dict, selection: fitting.Selection) -> None:
    """One log line: what a trained model scored, with both weight sets."""
    logging.info(
        "%s: test accuracy %.4f (best-on-validation weights %.4f, last epoch %.4f), "
        "test loss %.4f, %d epochs in %.1f s",
        metrics["model"],
        selection.kept.accuracy,
        selection.best.accuracy,
        selection.last.accuracy,
        selection.kept.loss,
        metrics["epochs_run"],
        metrics["train_seconds"],
    )


def kept_validation_accuracy(result, selection) -> float | None:
    """The validation accuracy of the epoch whose weights the model kept."""
    curve = result.history.get("val_accuracy")
    if not curve:
        return None
    keeps_best = selection.weights == "best_validation" and result.best_epoch
    if keeps_best:
        return float(curve[result.best_epoch - 1])
    if result.kept_epoch and selection.weights.startswith("epoch_"):
        return float(curve[result.kept_epoch - 1])
    return next((float(v) for v in reversed(curve) if v is not None), None)
