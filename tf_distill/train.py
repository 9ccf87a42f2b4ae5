"""Training: the teacher, the student alone, the distilled student, by run mode.

`run(config, workdir=..., mode=...)` is the one entry point; main.py only parses
flags and calls it. Layout of what it writes (see DESIGN.md):

    <workdir>/config.json
    <workdir>/<model>/metrics.json, model.keras, and the exports (export.py)
    <workdir>/report.json, report.md, accuracy.png          (mode "all")
    <tensorboard_dir>/<model>/{train,validation}/           TensorBoard events
"""

from __future__ import annotations

import math
import os
import shutil
import sys
import time

import keras
import ml_collections
import numpy as np
import tensorflow as tf
from absl import logging

from tf_distill import (
    augment,
    data,
    distribute,
    export,
    losses,
    models,
    outputs,
    report,
    resume,
)
from tf_distill import config as config_lib
from tf_distill.distiller import Distiller

MODES = ("teacher", "student", "distilling", "all")


def run(
    config: ml_collections.ConfigDict,
    *,
    workdir: str,
    mode: str,
    tensorboard_dir: str | None = None,
) -> dict[str, dict]:
    """Trains what `mode` names and writes the run directory.

    Args:
        config: a config from `configs/`; validated here before any work.
        workdir: the run directory.
        mode: "teacher", "student", "distilling" or "all".
        tensorboard_dir: where TensorBoard logs go, one sub-folder per model;
            defaults to `tensorboard/<config.name>`.

    Returns:
        The metrics of each trained model, keyed by model name.

    Raises:
        ValueError: bad mode or config value.
        FileNotFoundError: no teacher to distil from, or missing data files.
    """
    if mode not in MODES:
        raise ValueError(f"Unknown mode {mode!r}; valid: {', '.join(MODES)}")
    config_lib.validate(config)
    if mode == "all" and config.teacher_path:
        raise ValueError(
            f"config.teacher_path={config.teacher_path!r} is for --model=distilling; "
            "--model=all trains its own teacher"
        )
    teacher_path = _teacher_path(config, workdir) if mode == "distilling" else None
    tensorboard_dir = tensorboard_dir or os.path.join("tensorboard", config.name)

    # The strategy comes first: MultiWorkerMirroredStrategy must exist before
    # TensorFlow's runtime starts.
    strategy = distribute.make_strategy(config.strategy)
    distribute.check_batch_size(config.batch_size, strategy)
    keras.utils.set_random_seed(config.seed)  # Python, NumPy and TensorFlow
    if config.deterministic:
        tf.config.experimental.enable_op_determinism()
    keras.mixed_precision.set_global_policy(config.mixed_precision or "float32")
    splits = data.load(config)  # bad data fails here, before anything is written
    logging.info("Config: %s", config.to_json(sort_keys=True))
    logging.info(
        "Data %s: %s, input %s, %d classes. Strategy %s with %d replica(s), "
        "global batch %d (%d per replica).",
        splits.source,
        splits.sizes(),
        splits.input_shape,
        splits.num_classes,
        type(strategy).__name__,
        strategy.num_replicas_in_sync,
        config.batch_size,
        config.batch_size // strategy.num_replicas_in_sync,
    )

    teacher = None
    if teacher_path:  # loaded and checked before anything is written
        teacher = _load(teacher_path, strategy)
        models.check_fits(
            teacher,
            input_shape=splits.input_shape,
            num_classes=splits.num_classes,
            path=teacher_path,
        )

    with distribute.output_dirs(strategy, workdir, tensorboard_dir) as dirs:
        workdir, tensorboard_dir = dirs
        os.makedirs(workdir, exist_ok=True)
        outputs.write_json(os.path.join(workdir, "config.json"), config.to_dict())
        state = resume.RunState(workdir, config=config.to_dict(), mode=mode)
        trainer = _Trainer(config, splits, strategy, workdir, tensorboard_dir, state)
        results = {}
        if mode in ("teacher", "all"):
            teacher, results["teacher"] = trainer.supervised("teacher", config.teacher)
        if mode in ("student", "all"):
            _, results["student"] = trainer.supervised("student", config.student)
        if mode in ("distilling", "all"):
            results["distilling"] = trainer.distill(teacher)
        if mode == "all":
            report.write(workdir, results)
        state.close()
    return results


def _divisor_at_most(n, limit):
    return max(d for d in range(1, min(n, limit) + 1) if n % d == 0)


def _load(path, strategy):
    logging.info("Loading %s", path)
    with strategy.scope():
        return keras.models.load_model(path)


def _teacher_path(config, workdir):
    """The teacher to distil from: config.teacher_path, else <workdir>/teacher."""
    path = config.teacher_path or os.path.join(workdir, "teacher", "model.keras")
    if not os.path.isfile(path):
        if config.teacher_path:
            raise FileNotFoundError(f"config.teacher_path {path!r} does not exist")
        raise FileNotFoundError(
            f"No trained teacher at {path}. Run --model=teacher first with the same "
            "--workdir, or set --config.teacher_path to a .keras teacher."
        )
    return path


class _Trainer:
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

    def _train_ds(self, epochs, teacher_logits=None):
        """The batches of `epochs` (a range); epoch e's order depends on (seed, e)
        alone, so every model sees the same batches and a resumed run continues
        with the order the uninterrupted one would have had."""
        return data.pipeline(
            self.splits.x_train,
            self.splits.y_train,
            batch_size=self.config.batch_size,
            extra=teacher_logits,
            shuffle_seed=self.config.seed,
            epochs=epochs,
            # A fresh augmentation, same seed, for every model: the same draws.
            augment=augment.build(
                self.config.augment,
                input_shape=self.splits.input_shape,
                input_scale=self.splits.input_scale,
                seed=self.config.seed,
            ),
        )

    def _reuse(self, name, *, load=True):
        """A model an interrupted run had finished: its model (if `load`) and
        metrics."""
        logging.info("%s was finished before the interruption; reusing it", name)
        model_dir = os.path.join(self.workdir, name)
        model = (
            _load(os.path.join(model_dir, "model.keras"), self.strategy)
            if load
            else None
        )
        return model, outputs.read_json(os.path.join(model_dir, "metrics.json"))

    def _build(self, model_config, name):
        # The same seed before every build: the student alone and the distilled
        # student start from identical weights, so their gap is distillation's.
        keras.utils.set_random_seed(self.config.seed)
        return models.build_for(model_config, self.splits, name=name)

    def _optimizer(self, epochs):
        opt = self.config.optimizer
        schedule = keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=opt.learning_rate,
            decay_steps=epochs * self.steps_per_epoch,
            alpha=opt.final_lr_fraction,
        )
        return keras.optimizers.Adam(learning_rate=schedule, amsgrad=opt.amsgrad)

    def supervised(self, name, model_config):
        """Trains a model on the labels alone (the teacher, or the baseline student)."""
        if self.state.finished(name):
            return self._reuse(name)
        with self.strategy.scope():
            model = self._build(model_config, name)
            model.compile(
                optimizer=self._optimizer(model_config.epochs),
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
                steps_per_execution=self.steps_per_execution,
            )
        fitted = self._fit(
            model, self._train_ds, self.val_ds, model_config.epochs, name
        )
        return model, self._finish(name, model, *fitted)

    def distill(self, teacher):
        """Distils `teacher` into a fresh student built from config.student.

        With `config.distill.cache_teacher_logits` (the default; the input pipeline
        has no random augmentation, so the teacher's outputs never change) the
        teacher runs once over the training and validation data in large batches,
        and its logits travel with each example; otherwise it runs in every step.
        Both give the same loss on the same batch (tests/test_distiller.py).
        """
        if self.state.finished("distilling"):
            return self._reuse("distilling", load=False)[1]
        cfg = self.config.distill
        epochs = cfg.epochs or self.config.student.epochs
        train_logits = val_logits = None
        teacher_seconds = 0.0
        # Augmented images change every epoch, so their logits cannot be cached:
        # the teacher runs in the step, on the student's augmented batch.
        cache = cfg.cache_teacher_logits and not augment.enabled(self.config.augment)
        if cache:
            start = time.perf_counter()
            inference_teacher = teacher_for_inference(
                teacher, cfg.teacher_dtype, self.strategy
            )
            train_logits = self._teacher_logits(inference_teacher, self.splits.x_train)
            val_logits = self._teacher_logits(inference_teacher, self.splits.x_val)
            teacher_seconds = time.perf_counter() - start
            logging.info(
                "Cached the teacher's logits for %d + %d examples in %.1f s "
                "(computed in %s, stored as %s)",
                len(train_logits),
                len(val_logits),
                teacher_seconds,
                cfg.teacher_dtype,
                cfg.cache_dtype,
            )
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
            student = self._build(self.config.student, "student")
            distiller = Distiller(
                student=student,
                # Unused with cached logits; then the teacher is not even traced.
                teacher=None if cache else teacher,
                temperature=cfg.temperature,
                alpha=cfg.alpha,
            )
            distiller.compile(
                optimizer=self._optimizer(epochs),
                steps_per_execution=self.steps_per_execution,
            )
        fitted = self._fit(
            distiller,
            lambda epoch_range: self._train_ds(epoch_range, train_logits),
            val_ds,
            epochs,
            "distilling",
        )
        return self._finish(
            "distilling", student, *fitted, teacher_seconds=teacher_seconds
        )

    def _teacher_logits(self, teacher, x):
        """The teacher's logits on `x`, in one inference pass of large batches."""
        cfg = self.config.distill
        ds = data.pipeline(x, batch_size=cfg.teacher_batch_size)
        logits = teacher.predict(ds, verbose=0)
        return logits.astype(cfg.cache_dtype)

    def _fit(self, model, make_train_ds, val_ds, epochs, name):
        """Fits `model`, resuming from its backup if a crashed run left one.

        Returns the logs of every epoch (those before a crash included), and the
        seconds and the number of epochs this process spent fitting.
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
        callbacks = [
            keras.callbacks.TensorBoard(
                log_dir=os.path.join(self.tensorboard_dir, name), profile_batch=0
            ),
            resume.StopOnNaN(name, self.steps_per_epoch),
        ]
        es = self.config.early_stopping
        if es.patience > 0:
            callbacks.append(
                resume.ResumableEarlyStopping(
                    backup_dir,
                    monitor=es.monitor,
                    mode="max" if es.monitor.endswith("accuracy") else "min",
                    patience=es.patience,
                    restore_best_weights=True,
                )
            )
        callbacks += [
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
        return history, seconds, len(history.get("loss", [])) - start_epoch

    def _finish(
        self, name, model, history, fit_seconds, fit_epochs, teacher_seconds=0.0
    ):
        """Evaluates `model` on the test split and writes its part of the run dir.

        `train_seconds` is the wall time of this process (the teacher's caching
        pass included); `examples_per_second` is the training throughput of the
        `fit_epochs` epochs it ran (after a resume, not those before the crash).
        """
        test_loss, test_accuracy = evaluate(model, self.test_ds)
        epochs_run = len(history["loss"])
        model_dir = os.path.join(self.workdir, name)
        outputs.save_keras(model, os.path.join(model_dir, "model.keras"))
        artefact_bytes = export.export_model(
            model,
            model_dir,
            model_name=name,
            class_names=self.splits.class_names,
            representative=export.representative_for(self.config, self.splits),
        )
        metrics = {
            "model": name,
            "test_accuracy": test_accuracy,
            "test_loss": test_loss,
            "epochs_run": epochs_run,
            "train_seconds": fit_seconds + teacher_seconds,
            "teacher_pass_seconds": teacher_seconds,
            "examples_per_second": len(self.splits.y_train) * fit_epochs / fit_seconds,
            "params": model.count_params(),
            "saved_model_bytes": artefact_bytes["saved_model"],
            "artefact_bytes": artefact_bytes,
            "data": {"source": self.splits.source, **self.splits.sizes()},
            "strategy": type(self.strategy).__name__,
            "replicas": self.strategy.num_replicas_in_sync,
            "history": {k: [float(v) for v in vs] for k, vs in history.items()},
        }
        outputs.write_json(os.path.join(model_dir, "metrics.json"), metrics)
        self.state.mark_finished(name)
        logging.info(
            "%s: test accuracy %.4f, test loss %.4f, %d epochs in %.1f s",
            name,
            test_accuracy,
            test_loss,
            epochs_run,
            fit_seconds + teacher_seconds,
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


def evaluate(model: keras.Model, dataset: tf.data.Dataset) -> tuple[float, float]:
    """(mean cross-entropy, accuracy) of `model`'s logits on a labelled dataset.

    The same measure for the teacher, the student alone and the distilled student,
    whatever loss each was trained with.
    """
    total_loss, correct, count = 0.0, 0, 0
    for x, y in dataset:
        logits = model(x, training=False)
        total_loss += float(tf.reduce_sum(losses.hard_loss(labels=y, logits=logits)))
        correct += int(np.sum(np.argmax(logits, axis=-1) == y.numpy()))
        count += len(y)
    return total_loss / count, correct / count
