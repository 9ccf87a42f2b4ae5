"""The diffusion task's models: the teacher, its halving rounds, and their quality.

    <workdir>/teacher/                  model.keras (the EMA network), metrics.json
    <workdir>/distilling_steps<N>/      each round's N-step student, the last one
                                        with saved_model/ (the shipped sampler)
    <workdir>/student/metrics.json      the baseline: the teacher's own DDIM at
                                        1, 2, 4, ... steps, its quality per count
    <workdir>/quality_classifier/       the feature network, and the real-vs-real
                                        floor in its metrics.json
    <workdir>/<model>/samples*.png      sample grids, from the same noise

Every fit goes through fitting.fit, so a crash resumes at the round and epoch it
stopped at (resume.RunState marks each saved round).
"""

from __future__ import annotations

import os

import keras
import numpy as np
from absl import logging

from tf_distill.data import batches, image_files
from tf_distill.models import loading
from tf_distill.outputs import files
from tf_distill.outputs.rundir import TEACHER, round_name
from tf_distill.tasks.diffusion import quality, sampler, train_steps, unet
from tf_distill.tasks.diffusion.settings import Settings
from tf_distill.training import fitting, progress

STUDENT = "student"
CLASSIFIER = "quality_classifier"
CUSTOM_OBJECTS = {"TimeEmbedding": unet.TimeEmbedding}
GRID_SAMPLES = 64


class SamplerTrainer:
    """Trains and measures the samplers of one run directory: the teacher, its
    halving rounds, and their quality."""

    def __init__(
        self, settings: Settings, splits, strategy, run_dir, state, recorded=None
    ):
        """`recorded`: what every model's metrics.json also holds (the config and
        its fingerprint, which tasks/rerun.py compares)."""
        self.recorded = recorded or {}
        self.settings = settings
        self.splits = splits
        self.strategy = strategy
        self.run_dir = run_dir
        self.state = state
        self.image_shape = splits.input_shape
        self._reference = None

    # Training.

    def _network(self, dropout: float, name: str) -> keras.Model:
        n = self.settings.network
        return unet.build(
            image_shape=self.image_shape,
            channels=n.channels,
            multipliers=n.multipliers,
            blocks=n.blocks,
            dropout=dropout,
            name=name,
        )

    def _datasets(self):
        s, scale = self.settings, self.splits.input_scale
        steps = -(-len(self.splits.x_train) // s.batch_size)

        def unit(ds):
            return ds.map(lambda x: x / (scale / 2.0) - 1.0)

        def make_train(epochs):
            return unit(
                batches.pipeline(
                    self.splits.x_train,
                    batch_size=s.batch_size,
                    shuffle_seed=s.seed,
                    epochs=epochs,
                )
            )

        return (
            make_train,
            unit(batches.pipeline(self.splits.x_val, batch_size=256)),
            steps,
        )

    def _fit(self, trainer, name: str, epochs: int, rate_key: str):
        make_train, val_ds, steps = self._datasets()
        paths = self.run_dir.model(name)
        return fitting.fit(
            trainer,
            name=name,
            make_train_ds=make_train,
            val_ds=val_ds,
            epochs=epochs,
            steps_per_epoch=steps,
            backup_dir=self.state.model_dir(name),
            log_path=self.run_dir.file("epochs.log"),
            tensorboard_dir=paths.tensorboard,
            tensorboard_every_steps=self.settings.tensorboard_every_steps,
            backup_every_seconds=self.settings.backup_every_seconds,
            early_stopping=fitting.EarlyStopping(monitor="val_loss", patience=0),
            learning_rate_key=rate_key,
        )

    def train_teacher(self) -> tuple[keras.Model, dict]:
        """The many-step teacher (alg. 1), its EMA weights saved as model.keras."""
        if self.state.trained(TEACHER):
            return self.load(TEACHER), files.read_json(self._metrics(TEACHER))
        s = self.settings
        _, _, steps = self._datasets()
        with self.strategy.scope():
            trainer = train_steps.DiffusionTrainer(
                self._network(s.network.dropout, TEACHER),
                prediction=s.prediction,
                weighting=s.weighting,
                ema_decay=s.ema_decay,
                seed=s.seed,
            )
            trainer.compile(
                optimizer=fitting.cosine_adam(
                    learning_rate=s.teacher_learning_rate,
                    total_steps=s.teacher_epochs * steps,
                ),
                jit_compile=False,
            )
        result = self._fit(
            trainer, TEACHER, s.teacher_epochs, "config.diffusion.learning_rate"
        )
        return trainer.ema, self._save(TEACHER, trainer.ema, result, s.teacher_steps)

    def distil_rounds(self, teacher: keras.Model) -> dict[str, dict]:
        """Every halving round (alg. 2), each student saved before the next."""
        results = {}
        for number, steps in enumerate(self.settings.round_steps):
            name = round_name(steps)
            if self.state.trained(name):
                teacher = self.load(name)
                results[name] = files.read_json(self._metrics(name))
                continue
            teacher, results[name] = self._round(teacher, steps, number)
        return results

    def _round(self, teacher, steps: int, number: int):
        s = self.settings
        _, _, per_epoch = self._datasets()
        logging.info("Round %d: %d teacher steps into %d", number + 1, 2 * steps, steps)
        with self.strategy.scope():
            # No dropout in rounds, as the reference (cifar_distill.py: "same as
            # teacher but with 0 dropout").
            student = self._network(0.0, round_name(steps))
            student.set_weights(teacher.get_weights())  # starts from the teacher
            distiller = train_steps.ProgressiveDistiller(
                student,
                teacher,
                student_steps=steps,
                prediction=s.prediction,
                weighting=s.weighting,
                seed=s.seed + 1 + number,
            )
            # A fresh Adam each round, its rate annealed linearly to 0.
            schedule = keras.optimizers.schedules.PolynomialDecay(
                s.round_learning_rate, s.round_epochs * per_epoch, 0.0, power=1.0
            )
            distiller.compile(
                optimizer=keras.optimizers.Adam(schedule), jit_compile=False
            )
        result = self._fit(
            distiller,
            round_name(steps),
            s.round_epochs,
            "config.progressive.learning_rate",
        )
        return student, self._save(round_name(steps), student, result, steps)

    def _save(self, name: str, network, result: fitting.FitResult, steps: int):
        paths = self.run_dir.model(name)
        metrics = {
            "model": name,
            "sampling_steps": steps,
            "params": network.count_params(),
            "epochs": result.epochs_run,
            "train_seconds": result.seconds,
            "final_loss": result.history["loss"][-1],
            "final_val_loss": result.history["val_loss"][-1],
            "data": {"source": self.splits.source, **self.splits.sizes()},
            **self.recorded,
        }
        files.save_keras(network, paths.keras)
        files.write_json(paths.metrics, metrics)
        images = sampler.draw(
            sampler.compiled(network, steps, self.settings.prediction),
            sampler.noise(0, GRID_SAMPLES, self.image_shape),
        )
        sampler.write_grid(images, os.path.join(paths.dir, "samples.png"))
        sampler.write_tensorboard_grid(paths.tensorboard, f"{steps} steps", images, 0)
        self.state.mark_trained(name)
        logging.info("Saved %s (%d-step sampler) in %s", name, steps, paths.dir)
        return metrics

    def load(self, name: str) -> keras.Model:
        path = self.run_dir.model(name).keras
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f"No trained {name} at {path}. Run --model=teacher first with the "
                "same --config and --workdir (or --model=all)."
            )
        with self.strategy.scope():
            return keras.models.load_model(
                path, custom_objects=CUSTOM_OBJECTS, compile=False
            )

    def _metrics(self, name: str) -> str:
        return self.run_dir.model(name).metrics

    # Quality.

    def reference(self) -> quality.Reference:
        """The feature classifier (trained once per run directory) and the data
        it compares samples with; its metrics.json holds the real-vs-real floor."""
        if self._reference is not None:
            return self._reference
        paths = self.run_dir.model(CLASSIFIER)
        splits, scale = self.splits, self.splits.input_scale
        if os.path.isfile(paths.keras) and os.path.isfile(paths.metrics):
            classifier = loading.load(paths.keras)
        else:
            logging.info("Training the quality classifier (its features: FID, KID)")
            classifier = quality.train_classifier(
                self.settings.classifier, splits, seed=self.settings.seed
            )
        reference = quality.Reference(
            classifier, scale, splits.x_train, splits.y_train, splits.num_classes
        )
        if not os.path.isfile(paths.metrics):
            # The first num_samples held-out images (validation, then test).
            count = min(
                self.settings.num_samples, len(splits.x_val) + len(splits.x_test)
            )
            held_out = quality.to_unit(
                np.concatenate(
                    [
                        image_files.as_array(splits.x_val, count),
                        image_files.as_array(splits.x_test, count),
                    ]
                )[:count],
                scale,
            )
            test = batches.pipeline(splits.x_test, batch_size=32)
            logits = classifier.predict(test, verbose=0)
            metrics = {
                "model": CLASSIFIER,
                "test_accuracy": float((logits.argmax(-1) == splits.y_test).mean()),
                "real_vs_real": {"count": count, **reference.measure(held_out)},
            }
            files.save_keras(classifier, paths.keras)
            files.write_json(paths.metrics, metrics)
        self._reference = reference
        return reference

    def quality(self, network, steps: int) -> tuple[dict, np.ndarray]:
        """The quality of `network` sampled in `steps` DDIM steps, over the noise
        seeds (mean and std); and the images of the first seed."""
        s, reference = self.settings, self.reference()
        per_seed, first = [], None
        draw = sampler.compiled(network, steps, s.prediction)  # traced once
        total = s.noise_seeds * s.num_samples
        with progress.Pass(f"Sampling in {steps} steps", total, "images") as shown:
            for seed in range(s.noise_seeds):
                z = sampler.noise(seed, s.num_samples, self.image_shape)
                images = sampler.draw(draw, z)
                per_seed.append(reference.measure(images))
                first = images if first is None else first
                shown.update(len(images))
        summary = quality.summarise(per_seed)
        logging.info(
            "%d steps: FID %.2f, KID %.4f, coverage %.1f%%",
            steps,
            summary["fid"]["mean"],
            summary["kid"]["mean"],
            summary["coverage"]["mean"],
        )
        return summary, first

    def floor(self) -> dict:
        self.reference()
        return files.read_json(self._metrics(CLASSIFIER))
