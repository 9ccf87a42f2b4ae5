"""Fitting one model of a run: the teacher, a student alone, a distilled student.

`Trainer` holds what the models of one run share (data pipelines, strategy,
output folders, crash backups, the teacher's cached logits); train.py decides
which models a mode trains. Each trained model gets `<workdir>/<name>/` with
metrics.json and model.keras (and its exports), and TensorBoard logs in
`<tensorboard_dir>/<name>/`.
"""

from __future__ import annotations

import math
import os
import shutil
import sys
import time

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from tf_distill import (
    augment,
    data,
    export,
    measure,
    models,
    monitoring,
    outputs,
    resume,
)
from tf_distill.distiller import Distiller


def load(path: str, strategy: tf.distribute.Strategy) -> keras.Model:
    logging.info("Loading %s", path)
    with strategy.scope():
        return keras.models.load_model(path)


def _divisor_at_most(n, limit):
    return max(d for d in range(1, min(n, limit) + 1) if n % d == 0)


class Trainer:
    """Shared state of one run: data pipelines, strategy, where outputs go."""

    def __init__(self, config, splits, strategy, workdir, tensorboard_dir, state):
        self.config = config
        self.splits = splits
        self.strategy = strategy
        self.workdir = workdir
        self.tensorboard_dir = tensorboard_dir
        self.state = state  # what a crashed run finished, and its backups
        batch = config.batch_size
        self.val_ds = data.pipeline(splits.x_val, splits.y_val, batch_size=batch)
        self.test_ds = data.pipeline(splits.x_test, splits.y_test, batch_size=batch)
        self.steps_per_epoch = math.ceil(len(splits.y_train) / batch)
        self.steps_per_execution = _divisor_at_most(
            self.steps_per_epoch, config.steps_per_execution
        )
        if self.steps_per_execution != config.steps_per_execution:
            # The training dataset runs on across epochs (see _train_ds), and Keras
            # runs whole executions, so one must not straddle two epochs.
            logging.warning(
                "steps_per_execution %d lowered to %d, the largest divisor of the "
                "%d steps per epoch at most that",
                config.steps_per_execution,
                self.steps_per_execution,
                self.steps_per_epoch,
            )
        self._teacher_test_classes = None  # for the students' agreement
        self.teacher_test_accuracy = None
        self._cache = None  # (train logits, val logits, seconds), computed once

    def set_teacher(self, teacher: keras.Model) -> None:
        """The teacher the students are compared with (test-split agreement), when
        it was loaded rather than trained by this Trainer."""
        metrics = measure.test_metrics(teacher, self.test_ds)
        self._teacher_test_classes = metrics["classes"]
        self.teacher_test_accuracy = metrics["accuracy"]

    def _train_ds(self, epochs, seed, teacher_logits=None):
        """The batches of `epochs` (a range); epoch e's order depends on (seed, e)
        alone, so the models of one seed see the same batches and a resumed run
        continues with the order the uninterrupted one would have had."""
        return data.pipeline(
            self.splits.x_train,
            self.splits.y_train,
            batch_size=self.config.batch_size,
            extra=teacher_logits,
            shuffle_seed=seed,
            epochs=epochs,
            # A fresh augmentation, same seed, for every model: the same draws.
            augment=augment.build(
                self.config.augment,
                input_shape=self.splits.input_shape,
                input_scale=self.splits.input_scale,
                seed=seed,
            ),
        )

    def _reuse(self, name, *, load_model=True):
        """A model an interrupted run had finished: its model (if `load_model`)
        and metrics."""
        logging.info("%s was finished before the interruption; reusing it", name)
        model_dir = os.path.join(self.workdir, name)
        model = (
            load(os.path.join(model_dir, "model.keras"), self.strategy)
            if load_model
            else None
        )
        return model, outputs.read_json(os.path.join(model_dir, "metrics.json"))

    def _build(self, model_config, role, seed):
        # The same seed before every build: the student alone and the distilled
        # student of one seed start from identical weights, so their gap is
        # distillation's. It also seeds the dropout of the fit that follows.
        keras.utils.set_random_seed(seed)
        return models.build_for(model_config, self.splits, name=role)

    def _optimizer(self, epochs):
        opt = self.config.optimizer
        schedule = keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=opt.learning_rate,
            decay_steps=epochs * self.steps_per_epoch,
            alpha=opt.final_lr_fraction,
        )
        return keras.optimizers.Adam(learning_rate=schedule, amsgrad=opt.amsgrad)

    def supervised(self, name, model_config, *, seed, ship=True):
        """Trains a model on the labels alone (the teacher, or the baseline student).

        `ship`: also write its SavedModel and LiteRT files (export.py).
        """
        if self.state.finished(name):
            return self._reuse(name)
        role = "teacher" if name == "teacher" else "student"
        with self.strategy.scope():
            model = self._build(model_config, role, seed)
            model.compile(
                optimizer=self._optimizer(model_config.epochs),
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
                steps_per_execution=self.steps_per_execution,
            )
        fitted = self._fit(
            model,
            lambda epoch_range: self._train_ds(epoch_range, seed),
            self.val_ds,
            model_config.epochs,
            name,
        )
        metrics = self._finish(name, model, model, fitted, ship=ship, seed=seed)
        return model, metrics

    def _cached_logits(self, teacher):
        """The teacher's logits on the training and validation splits, computed
        once per run in large batches, and the seconds that took."""
        if self._cache is None:
            cfg = self.config.distill
            start = time.perf_counter()
            inference_teacher = teacher_for_inference(
                teacher, cfg.teacher_dtype, self.strategy
            )
            train_logits = self._teacher_logits(inference_teacher, self.splits.x_train)
            val_logits = self._teacher_logits(inference_teacher, self.splits.x_val)
            seconds = time.perf_counter() - start
            logging.info(
                "Cached the teacher's logits for %d + %d examples in %.1f s "
                "(computed in %s, stored as %s)",
                len(train_logits),
                len(val_logits),
                seconds,
                cfg.teacher_dtype,
                cfg.cache_dtype,
            )
            self._cache = (train_logits, val_logits, seconds)
        return self._cache

    def distill(
        self, teacher, *, name="distilling", seed, temperature, alpha, ship=True
    ):
        """Distils `teacher` into a fresh student built from config.student.

        With `config.distill.cache_teacher_logits` (the default; the input pipeline
        has no random augmentation, so the teacher's outputs never change) the
        teacher runs once per run over the training and validation data in large
        batches, and its logits travel with each example; otherwise it runs in
        every step. Both give the same loss on the same batch
        (tests/test_distiller.py). Returns the metrics.
        """
        if self.state.finished(name):
            return self._reuse(name, load_model=False)[1]
        cfg = self.config.distill
        epochs = cfg.epochs or self.config.student.epochs
        train_logits = val_logits = None
        teacher_seconds = 0.0
        # Augmented images change every epoch, so their logits cannot be cached:
        # the teacher runs in the step, on the student's augmented batch.
        cache = cfg.cache_teacher_logits and not augment.enabled(self.config.augment)
        if cache:
            train_logits, val_logits, teacher_seconds = self._cached_logits(teacher)
        else:
            logging.info(
                "The teacher runs in every training step (not cached%s).",
                ": the training images are augmented"
                if cfg.cache_teacher_logits
                else "",
            )
        val_ds = (
            self.val_ds
            if val_logits is None
            else data.pipeline(
                self.splits.x_val,
                self.splits.y_val,
                batch_size=self.config.batch_size,
                extra=val_logits,
            )
        )
        with self.strategy.scope():
            student = self._build(self.config.student, "student", seed)
            distiller = Distiller(
                student=student,
                # Unused with cached logits; then the teacher is not even traced.
                teacher=None if cache else teacher,
                temperature=temperature,
                alpha=alpha,
            )
            distiller.compile(
                optimizer=self._optimizer(epochs),
                steps_per_execution=self.steps_per_execution,
            )
        fitted = self._fit(
            distiller,
            lambda epoch_range: self._train_ds(epoch_range, seed, train_logits),
            val_ds,
            epochs,
            name,
        )
        return self._finish(
            name,
            distiller,
            student,
            fitted,
            ship=ship,
            seed=seed,
            teacher_seconds=teacher_seconds,
            extra={"temperature": temperature, "alpha": alpha},
        )

    def _teacher_logits(self, teacher, x):
        """The teacher's logits on `x`, in one inference pass of large batches."""
        cfg = self.config.distill
        ds = data.pipeline(x, batch_size=cfg.teacher_batch_size)
        logits = teacher.predict(ds, verbose=0)
        return logits.astype(cfg.cache_dtype)

    def _fit(self, model, make_train_ds, val_ds, epochs, name):
        """Fits `model`, resuming from its backup if a crashed run left one.

        Returns a dict: the logs of every epoch (those before a crash included),
        the seconds and number of epochs this process spent fitting, and the
        weights of the epoch best on `config.early_stopping.monitor` and of the
        last epoch, with the best epoch's number (1-based).
        """
        backup_dir = self.state.model_dir(name)
        start_epoch = resume.start_epoch(backup_dir)
        history = resume.history_so_far(backup_dir, start_epoch)
        if start_epoch:
            logging.info(
                "Resuming %s at epoch %d of %d from the backup in %s",
                name,
                start_epoch + 1,
                epochs,
                backup_dir,
            )
        es = self.config.early_stopping
        # Always tracks the best epoch (the report gives the test accuracy of its
        # weights and of the last epoch's); stops early only with a patience.
        best = resume.ResumableEarlyStopping(
            backup_dir,
            monitor=es.monitor,
            mode="max" if es.monitor.endswith("accuracy") else "min",
            patience=es.patience if es.patience > 0 else epochs + 1,
            restore_best_weights=True,  # keeps them; _finish decides what ships
        )
        callbacks = [
            monitoring.TensorBoard(
                os.path.join(self.tensorboard_dir, name),
                every_steps=self.config.tensorboard.every_steps,
                steps_per_epoch=self.steps_per_epoch,
            ),
            resume.StopOnNaN(name, self.steps_per_epoch),
            best,
            resume.HistoryBackup(backup_dir, history),  # before the weights' backup
            keras.callbacks.BackupAndRestore(
                backup_dir, double_checkpoint=True, delete_checkpoint=False
            ),
        ]
        logging.info("Training %s for up to %d epochs", name, epochs)
        start = time.perf_counter()
        try:
            model.fit(
                make_train_ds(range(start_epoch, epochs)),
                validation_data=val_ds,
                epochs=epochs,
                steps_per_epoch=self.steps_per_epoch,
                callbacks=callbacks,
                shuffle=False,  # the pipeline shuffles with the run's seed
                # A progress bar on a terminal, one line per epoch in logs and CI.
                verbose=1 if sys.stdout.isatty() else 2,
            )
        except resume.TrainingDiverged:
            shutil.rmtree(backup_dir, ignore_errors=True)  # resuming would diverge
            raise
        seconds = time.perf_counter() - start
        last_weights = model.get_weights()
        epochs_run = len(history.get("loss", []))
        best_epoch = best.best_epoch + 1 if best.best_weights is not None else None
        return {
            "history": history,
            "seconds": seconds,
            "epochs": epochs_run - start_epoch,
            "last_weights": last_weights,
            # The same list when the last epoch was the best: measured once.
            "best_weights": last_weights
            if best_epoch in (None, epochs_run)
            else best.best_weights,
            "best_epoch": best_epoch,
        }

    def _finish(
        self,
        name,
        fitted_model,
        model,
        fitted,
        *,
        ship,
        seed,
        teacher_seconds=0.0,
        extra=None,
    ):
        """Evaluates `model` on the test split and writes its part of the run dir.

        `fitted_model` is what was fitted (the Distiller, or `model` itself). The
        test accuracy of the best-on-validation weights and of the last epoch's
        are both measured; the model keeps (and ships) the best weights when early
        stopping is on, the last epoch's when it is off (fixed epochs, as the
        published recipes do). `train_seconds` is the wall time of this process
        (the teacher's caching pass included); `examples_per_second` is the
        training throughput of the epochs it ran (after a resume, not those
        before the crash).
        """
        history = fitted["history"]
        last = measure.test_metrics(model, self.test_ds)  # fit ends on the last
        if fitted["best_weights"] is fitted["last_weights"]:
            best = last
        else:
            fitted_model.set_weights(fitted["best_weights"])
            best = measure.test_metrics(model, self.test_ds)
        keeps_best = self.config.early_stopping.patience > 0
        kept = best if keeps_best else last
        fitted_model.set_weights(
            fitted["best_weights"] if keeps_best else fitted["last_weights"]
        )
        model_dir = os.path.join(self.workdir, name)
        outputs.save_keras(model, os.path.join(model_dir, "model.keras"))
        artefact_bytes = {}
        if ship:
            artefact_bytes = export.export_model(
                model,
                model_dir,
                model_name=name,
                class_names=self.splits.class_names,
                representative=export.representative_for(self.config, self.splits),
            )
        metrics = {
            "model": name,
            "seed": seed,
            "test_accuracy": kept["accuracy"],
            "test_loss": kept["loss"],
            "weights": "best_validation" if keeps_best else "last_epoch",
            "test_accuracy_best_validation": best["accuracy"],
            "test_accuracy_last_epoch": last["accuracy"],
            "best_epoch": fitted["best_epoch"],
            "epochs_run": len(history["loss"]),
            "train_seconds": fitted["seconds"] + teacher_seconds,
            "teacher_pass_seconds": teacher_seconds,
            "examples_per_second": len(self.splits.y_train)
            * fitted["epochs"]
            / fitted["seconds"],
            "inference_examples_per_second": measure.inference_examples_per_second(
                model, self.splits.x_test
            ),
            "inference_batch_size": measure.INFERENCE_BATCH,
            "params": model.count_params(),
            "saved_model_bytes": artefact_bytes.get("saved_model"),
            "artefact_bytes": artefact_bytes,
            "data": {"source": self.splits.source, **self.splits.sizes()},
            "strategy": type(self.strategy).__name__,
            "replicas": self.strategy.num_replicas_in_sync,
            **(extra or {}),
            "history": {k: [float(v) for v in vs] for k, vs in history.items()},
        }
        if name == "teacher":  # what the students are compared with
            self._teacher_test_classes = kept["classes"]
            self.teacher_test_accuracy = kept["accuracy"]
        elif self._teacher_test_classes is not None:
            metrics["test_agreement_with_teacher"] = float(
                np.mean(kept["classes"] == self._teacher_test_classes)
            )
        outputs.write_json(os.path.join(model_dir, "metrics.json"), metrics)
        self.state.mark_finished(name)
        logging.info(
            "%s: test accuracy %.4f (best-on-validation weights %.4f, last epoch "
            "%.4f), test loss %.4f, %d epochs in %.1f s",
            name,
            kept["accuracy"],
            best["accuracy"],
            last["accuracy"],
            kept["loss"],
            metrics["epochs_run"],
            metrics["train_seconds"],
        )
        return metrics


def teacher_for_inference(
    teacher: keras.Model, dtype: str, strategy: tf.distribute.Strategy | None = None
) -> keras.Model:
    """The teacher as the caching pass runs it: itself, or a bfloat16 copy.

    bfloat16 is faster only on CPUs with bfloat16 instructions (AVX512-BF16, AMX)
    and on accelerators; the copy leaves the teacher itself untouched.
    """
    if dtype == "float32":
        return teacher
    return models.copy_with_policy(teacher, "mixed_bfloat16", strategy)
