"""Training, distilling, measuring, saving and exporting one classifier of a run.

`ClassifierTrainer` holds what the models of one run share (data pipelines,
strategy, run directory, crash state, the teacher's cached logits); the task's
modes (modes.py) decide which models a mode trains. For each model, in this order:

    1. build it (the same seed before every build: the student alone and the
       distilled student of one seed start from identical weights);
    2. fit it (fitting.fit), alone or beside others (concurrent.run_all);
    3. keep the best-on-validation, the last or (the teacher, config.teacher.keep)
       an earlier epoch's weights, measuring each;
    4. save, export (if shipped), write metrics.json, mark it finished.
"""

from __future__ import annotations

import functools

import keras
import numpy as np
from absl import logging

from tf_distill.data import batches
from tf_distill.data import unlabelled as transfer_lib
from tf_distill.distillation.distiller import Distiller
from tf_distill.models import architectures, measure
from tf_distill.outputs.rundir import ModelKey, RunDir
from tf_distill.shipping import shipper
from tf_distill.tasks.classifier import inputs
from tf_distill.tasks.classifier.settings import Settings, kept_weights
from tf_distill.teacher import cache
from tf_distill.training import concurrent, distribute, fitting


class ClassifierTrainer:
    """The models of one classification run."""

    def __init__(
        self,
        settings: Settings,
        splits,
        strategy,
        run_dir: RunDir,
        state,
        *,
        transfer: str | np.ndarray | None = None,
    ):
        """`transfer`: what the distilled student trains on besides the labelled
        training images (transfer.distillation_set): None, "train" or images."""
        self.settings = settings
        self.splits = splits
        self.strategy = strategy
        self.run_dir = run_dir
        self.state = state  # resume.RunState: what a crashed run finished
        batch = settings.batch_size
        self.val_ds = batches.pipeline(splits.x_val, splits.y_val, batch_size=batch)
        self.test_ds = batches.pipeline(splits.x_test, splits.y_test, batch_size=batch)
        self.labelled = (splits.x_train, splits.y_train)
        self.transfer_set = transfer_lib.distillation_set(splits, transfer)
        n, labelled = len(self.transfer_set[1]), len(splits.y_train)
        if n > labelled:
            what = "The distilled student trains on %d images: %d labelled, %d not"
            logging.info(what, n, labelled, n - labelled)
        self.shipping = shipper.Shipping(settings, splits, strategy, run_dir, state)
        self.teacher_test = None  # measure.ClassMetrics of the teacher, on test
        self.signals = cache.TeacherSignals(
            settings,
            splits,
            self.transfer_set[0],
            strategy,
            self.val_ds,
            cache_dir=run_dir.teacher_cache,
        )

    def set_teacher(self, teacher: keras.Model) -> None:
        """The teacher the students are compared with (test-split agreement)."""
        self.teacher_test = measure.evaluate(teacher, self.test_ds)

    def train(
        self, key: ModelKey, spec: architectures.ModelSpec, *, seed: int, ship: bool
    ) -> concurrent.Job:
        """A model trained on the labels alone (the teacher, or a student alone),
        as a job: its run (concurrent.run_all, or `.run()`) builds, fits and
        finishes it and returns (the trained model, its metrics)."""
        return concurrent.Job(
            key.name, lambda: self._train_parts(key, spec, seed, ship)
        )

    def _train_parts(self, key, spec, seed, ship):
        if self.state.trained(key.name):
            return None, lambda _: self.shipping.reuse(key, ship=ship)
        steps = self._steps(len(self.labelled[1]))
        with self.strategy.scope():
            model = self._build(spec, key.role, seed)
            model.compile(
                optimizer=self._optimizer(spec.epochs, steps),
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
                steps_per_execution=steps.per_execution,
            )
        fit = self._fit(
            model, key, spec.epochs, seed, self.val_ds, self.labelled, steps
        )

        def finish(result):
            examples = len(self.labelled[1])
            kept = self._finish(
                key, model, model, result, ship=ship, seed=seed, examples=examples
            )
            return model, kept

        return fit, finish

    def distill(
        self,
        key: ModelKey,
        teacher: keras.Model,
        method,
        *,
        spec: architectures.ModelSpec,
        epochs: int,
        seed: int,
        ship: bool,
    ) -> concurrent.Job:
        """`teacher` distilled into a fresh student built from `spec`, as a job
        whose run returns the metrics.

        With cached logits (settings.cache_teacher_logits and no augmentation:
        the teacher's outputs never change) the teacher runs once per run over the
        training and validation data, and its logits travel with each example;
        otherwise it runs in every step. Both give the same loss on the same batch.
        """
        parts = (key, teacher, method, spec, epochs, seed, ship)
        return concurrent.Job(key.name, lambda: self._distill_parts(*parts))

    def _distill_parts(self, key, teacher, method, spec, epochs, seed, ship):
        if self.state.trained(key.name):
            reuse = self.shipping.reuse
            return None, lambda _: reuse(key, ship=ship, load_model=False)[1]
        signal = self.signals.of(teacher, features=method.needs == "features")
        steps = self._steps(len(self.transfer_set[1]))
        with self.strategy.scope():
            student = self._build(spec, key.role, seed)
            distiller = Distiller(
                student=student,
                # Unused with cached logits; then the teacher is not even traced.
                teacher=teacher if signal.path == cache.PER_STEP else None,
                method=method,
                validation_teacher=self.settings.validation_teacher,
            )
            distiller.compile(
                optimizer=self._optimizer(epochs, steps),
                steps_per_execution=steps.per_execution,
            )
        fit = self._fit(
            distiller,
            key,
            epochs,
            seed,
            signal.val_ds,
            self.transfer_set,
            steps,
            signal,
            distilling=True,
        )
        return fit, lambda result: self._finish(
            key,
            distiller,
            student,
            result,
            ship=ship,
            seed=seed,
            examples=len(self.transfer_set[1]),
            distilling=True,
            teacher_seconds=signal.seconds,
            extra={**method.describe(), **signal.describe()},
        )

    def _build(self, spec, role, seed):
        # The same seed before every build: the student alone and the distilled
        # student of one seed start from identical weights, so their gap is
        # distillation's. It also seeds the dropout of the fit that follows.
        keras.utils.set_random_seed(seed)
        return architectures.build_for(spec, self.splits, name=role)

    def _steps(self, examples: int) -> fitting.Steps:
        s = self.settings
        # Keras 3.15's multi-step loop fails under MultiWorkerMirroredStrategy
        # ("You must feed a value for placeholder tensor"): one step a call there.
        spe = 1 if distribute.several_workers(self.strategy) else s.steps_per_execution
        return fitting.steps(examples, s.batch_size, spe)

    def _optimizer(self, epochs, steps):
        s = self.settings
        return fitting.cosine_adam(
            learning_rate=s.learning_rate,
            total_steps=epochs * steps.per_epoch,
            final_lr_fraction=s.final_lr_fraction,
            amsgrad=s.amsgrad,
        )

    def _fit(
        self,
        model,
        key,
        epochs,
        seed,
        val_ds,
        train,
        steps,
        signal=None,
        distilling=False,
    ):
        """The fit of `model` on `train` = (images, labels) (fitting.fit), to
        call; a distilled student's batches carry the teacher's `signal`."""
        paths = self.run_dir.model(key)
        keep, stopping = self._weights(key, distilling)
        train_ds = inputs.training_batches(
            self.settings,
            self.splits,
            self.strategy,
            train,
            seed=seed,
            signal=signal,
            distilling=distilling,
        )
        return functools.partial(
            fitting.fit,
            model,
            name=key.name,
            make_train_ds=train_ds,
            val_ds=val_ds,
            epochs=epochs,
            steps_per_epoch=steps.per_epoch,
            backup_dir=self.state.model_dir(key.name),
            log_path=self.run_dir.file("epochs.log"),
            tensorboard_dir=paths.tensorboard,
            tensorboard_every_steps=self.settings.tensorboard_every_steps,
            backup_every_seconds=self.settings.backup_every_seconds,
            validation_every=self.settings.validation_every,
            early_stopping=stopping,
            keep_epoch=keep if isinstance(keep, int) else None,
        )

    def _weights(self, key, distilling=False):
        """(the weights `key` keeps, its early stopping): kept_weights."""
        return kept_weights(
            self.settings, teacher=key.base == "teacher", distilling=distilling
        )

    def _finish(
        self,
        key,
        fitted,
        model,
        result,
        *,
        ship,
        seed,
        examples,
        distilling=False,
        teacher_seconds=0.0,
        extra=None,
    ):
        """Steps 3 and 4: keeps weights, then saves, records and exports
        (shipper.Shipping.record)."""
        teacher_logits = None if self.teacher_test is None else self.teacher_test.logits
        keep, _ = self._weights(key, distilling)
        selection = fitting.select_weights(
            fitted,
            result,
            evaluate=lambda: measure.evaluate(
                model, self.test_ds, teacher_logits=teacher_logits
            ),
            keep=keep,
        )
        if key.base == "teacher":  # what the students are compared with
            self.teacher_test = selection.kept
        return self.shipping.record(
            key,
            model,
            result,
            selection,
            ship=ship,
            seed=seed,
            train_examples=examples,
            teacher_seconds=teacher_seconds,
            extra=extra,
        )
