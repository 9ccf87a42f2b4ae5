"""A classifier mode's session: the run context every task shares
(context.RunContext) with the teacher to distil from and the ClassifierTrainer
(modes.py's mode functions open one)."""

from __future__ import annotations

import os
import re
import sys

import keras
from absl import logging

from tf_distill.data import unlabelled
from tf_distill.distillation import ensemble
from tf_distill.models import loading
from tf_distill.outputs.rundir import TEACHER, ModelKey, RunDir, generation_base
from tf_distill.tasks import context, rerun
from tf_distill.tasks.classifier import data_checks, trainer
from tf_distill.tasks.classifier import settings as config_lib
from tf_distill.tasks.context import RunContext
from tf_distill.training import concurrent


def load_fitting(path: str, splits, strategy=None, saved_model=None) -> keras.Model:
    """Loads a .keras model (or, with `saved_model`, a saved_teacher.SavedModelSpec,
    a SavedModel folder) and checks that it fits the data: its shapes, and the
    data its run trained it on when it has one (context.check_trained_on)."""
    model = loading.load(
        path, strategy, saved_model=saved_model, input_shape=splits.input_shape
    )
    loading.check_fits(
        model, input_shape=splits.input_shape, num_classes=splits.num_classes, path=path
    )
    context.check_trained_on(
        os.path.join(os.path.dirname(path), "metrics.json"), path, splits
    )
    return model


# What each mode trains, by the first part of a model's name (rundir.ModelKey).
_TRAINS = {
    "teacher": ("teacher",),
    "student": ("student",),
    "distilling": ("distilling",),
    "all": ("teacher", "student", "distilling"),
    "sweep": ("sweep",),
}
_REPORT = ("report.json", "report.md", "accuracy.png")


def rerun_rules(mode: str) -> rerun.Rules:
    """The classifier's answers to tasks/rerun.py: a mode trains the models named
    in _TRAINS again; a replaced teacher takes every student distilled from it
    and the report with it, a replaced student or distilled student the report
    (and a distilled student its later generations)."""

    def role(name: str) -> str:
        return re.split(r"[/_]", name)[0]

    def dependents(name: str, present: list[str]) -> tuple[str, ...]:
        if role(name) == "teacher":
            distilled = {
                n.split("/")[0] for n in present if role(n) in ("distilling", "sweep")
            }
            return (*sorted(distilled), *_REPORT, "ensemble.json")
        if role(name) == "distilling":
            later = [n for n in present if n.startswith("distilling_gen")]
            return (*later, *_REPORT)
        return _REPORT if role(name) == "student" else ()

    return rerun.Rules(
        writes=lambda name: role(name) in _TRAINS.get(mode, ()),
        dependents=dependents,
        finished=lambda metrics: "artefact_bytes" in metrics,  # shipper.ship's
    )


class Session:
    """What a classifier mode works with, set up in this order on entry:

    1. the teacher to distil from is found (`teacher`: "required" for distilling,
       "optional" for the sweep), before anything else;
    2. the run context (context.RunContext): strategy, seeds, precision and the
       data; then, before anything is written, the checks that need the data,
       the teacher loaded and checked against it, and the method's own check of
       the teacher and student (`_prepare`); then the lock and the run state;
    3. the ClassifierTrainer that trains the run's models.
    """

    def __init__(self, config, run_dir: RunDir, mode: str, *, teacher: str = "none"):
        self.config = config
        self.run_dir = run_dir
        self.mode = mode
        self._teacher_mode = teacher
        self.teacher = None
        self.members = []
        self.seeds = [config.seed + i for i in range(config.num_seeds)]

    def __enter__(self) -> Session:
        teacher_paths = self._teacher_paths()
        self._context = RunContext(
            self.config,
            self.run_dir,
            self.mode,
            load_data=config_lib.load_data,
            prepare=lambda splits, strategy: self._prepare(
                splits, strategy, teacher_paths
            ),
            rerun_rules=rerun_rules(self.mode),
            fingerprint=context.config_fingerprint(self.config),
        )
        run = self._context.__enter__()
        try:
            self.run_dir, self.state = run.run_dir, run.state
            self.trainer = trainer.ClassifierTrainer(
                config_lib.classifier_settings(self.config),
                run.data,
                run.strategy,
                self.run_dir,
                self.state,
                transfer=self._transfer,
            )
            if self.teacher is not None:
                self.trainer.set_teacher(self.teacher)
        except BaseException:
            self._context.__exit__(*sys.exc_info())
            raise
        return self

    def __exit__(self, *exc_info):
        return self._context.__exit__(*exc_info)

    def _prepare(self, splits, strategy, teacher_paths) -> None:
        """The checks that need the data, and the teacher, before any write."""
        config = self.config
        data_checks.check_against_data(config, splits)
        self._transfer = config_lib.transfer_data(config, splits)
        data_checks.check_sizes(
            config, splits, unlabelled.distillation_size(splits, self._transfer)
        )
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
        spec = config_lib.saved_model_spec(config.teacher)
        self.members = [load_fitting(p, splits, strategy, spec) for p in teacher_paths]
        data_checks.check_logits(teacher_paths, self.members, splits)
        if len(self.members) == 1:
            self.teacher = self.members[0]
        elif self.members:
            with strategy.scope():
                self.teacher = ensemble.build(self.members, config.distill.temperature)
        data_checks.check_method(config, splits, self.teacher)

    def _teacher_paths(self) -> list[str]:
        """The teacher(s) the mode distils from: config.teacher_paths (an
        ensemble, for every mode that takes a teacher), config.teacher_path, else
        <workdir>/teacher; none for "none"."""
        if self._teacher_mode == "none":
            return []
        if self.config.teacher_paths:
            return list(self.config.teacher_paths)
        path = self._teacher_path()
        return [path] if path else []

    def _teacher_path(self) -> str | None:
        """config.teacher_path, else <workdir>/teacher, as the mode needs it."""
        path = self.config.teacher_path or self.run_dir.model(TEACHER).keras
        if os.path.exists(path):  # a folder too: loading.load says what it is
            return path
        if self.config.teacher_path:
            raise FileNotFoundError(f"config.teacher_path {path!r} does not exist")
        if self._teacher_mode == "optional":
            return None
        raise FileNotFoundError(
            f"No trained teacher at {path}. Run --model=teacher first with the same "
            "--workdir, or set --config.teacher_path to a .keras teacher."
        )

    def discard(self, *names: str) -> None:
        """Removes run-level files this mode rewrites at its end: until then they
        would describe models the run is replacing."""
        for name in names:
            path = self.run_dir.file(name)
            if os.path.exists(path):
                logging.info(
                    "Removing %s of an earlier run; this run rewrites it", path
                )
                os.remove(path)

    def key(self, base: str, seed: int) -> ModelKey:
        return ModelKey.of(base, seed, self.config.seed)

    def train_teacher(self):
        """(teacher, metrics); the teacher is then the one students are compared to."""
        self.teacher, metrics = self.trainer.train(
            self.key(TEACHER, self.config.seed),
            config_lib.model_spec(self.config.teacher),
            seed=self.config.seed,
            ship=True,
        ).run()
        if self.trainer.teacher_test is None:  # reused from an interrupted run
            self.trainer.set_teacher(self.teacher)
        return self.teacher, metrics

    def run(self, jobs: list[concurrent.Job]) -> dict[str, dict]:
        """Each job's metrics by model name: up to config.concurrent_fits fits
        at a time on one device (concurrent.py); one at a time across replicas
        or workers, whose steps are collective."""
        workers = self.config.concurrent_fits
        if workers > 1 and self.trainer.strategy.num_replicas_in_sync > 1:
            logging.info("One fit at a time: the strategy has several replicas")
            workers = 1
        done = concurrent.run_all(jobs, workers)
        return {
            job.name: out[1] if isinstance(out, tuple) else out  # train: (model, m)
            for job, out in zip(jobs, done, strict=True)
        }

    def train_students(self, base: str, *, ship: bool) -> dict[str, dict]:
        """The student alone for every seed; the first seed's is shipped if `ship`."""
        return self.run(self.student_jobs(base, ship=ship))

    def student_jobs(self, base: str, *, ship: bool) -> list[concurrent.Job]:
        return [
            self.trainer.train(
                self.key(base, seed),
                config_lib.model_spec(self.config.student),
                seed=seed,
                ship=ship and self.key(base, seed).is_first_seed,
            )
            for seed in self.seeds
        ]

    def distill_students(self, key_of, method, *, ship: bool = True) -> dict[str, dict]:
        """A distilled student for every seed, keyed `key_of(seed)`."""
        return self.run(self.distill_jobs(key_of, method, ship=ship))

    def distill_jobs(self, key_of, method, *, ship: bool = True):
        return [
            self.trainer.distill(
                key_of(seed),
                self.teacher,
                method,
                spec=config_lib.model_spec(self.config.student),
                epochs=config_lib.distill_epochs(self.config),
                seed=seed,
                ship=ship and key_of(seed).is_first_seed,
            )
            for seed in self.seeds
        ]

    def distill_generations(self, method) -> dict[str, dict]:
        """Generations 2..config.distill.generations (Furlanello et al. 2018,
        born-again networks): each seed's student of generation g is distilled
        from that seed's student of generation g - 1; the last generation's first
        seed is exported."""
        last = self.config.distill.generations
        results = {}
        for generation in range(2, last + 1):
            jobs = []
            for seed in self.seeds:
                previous = self.key(generation_base(generation - 1), seed)
                teacher = loading.load(
                    self.run_dir.model(previous).keras, self.trainer.strategy
                )
                key = self.key(generation_base(generation), seed)
                jobs.append(
                    self.trainer.distill(
                        key,
                        teacher,
                        method,
                        spec=config_lib.model_spec(self.config.student),
                        epochs=config_lib.distill_epochs(self.config),
                        seed=seed,
                        ship=generation == last and key.is_first_seed,
                    )
                )
            results.update(self.run(jobs))
        return results
