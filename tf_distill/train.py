"""Training: the teacher, the student alone, the distilled student, by run mode.

`run(config, workdir=..., mode=...)` is the one entry point; main.py only parses
flags and calls it. Layout of what it writes (see DESIGN.md):

    <workdir>/config.json
    <workdir>/<model>/metrics.json, model.keras, and the exports (export.py)
    <workdir>/report.json, report.md, accuracy.png          (mode "all")
    <workdir>/sweep.json, sweep.md, sweep.png               (mode "sweep")
    <tensorboard_dir>/<model>/{train,validation}/           TensorBoard events

`<model>` is `teacher`, `student` (alone) or `distilling` (the distilled student)
for `config.seed`; with `config.num_seeds` > 1 the other seeds' students are
`student_seed<S>` and `distilling_seed<S>`. The sweep distils the teacher in
`<workdir>/teacher` (or config.teacher_path; trained first when there is none)
into `sweep/T<T>_alpha<A>[_seed<S>]`, beside `sweep/student[_seed<S>]`.
"""

from __future__ import annotations

import os

import keras
import ml_collections
import tensorflow as tf
from absl import logging

from tf_distill import config as config_lib
from tf_distill import data, distribute, models, outputs, report, resume
from tf_distill.trainer import Trainer, load

MODES = ("teacher", "student", "distilling", "all", "sweep")


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
        mode: "teacher", "student", "distilling", "all" or "sweep" (a
            temperature x alpha grid of distillations, config.sweep).
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
            f"config.teacher_path={config.teacher_path!r} is for --model=distilling "
            "and --model=sweep; --model=all trains its own teacher"
        )
    teacher_path = None
    if mode == "distilling" or (
        mode == "sweep"
        and (config.teacher_path or os.path.isfile(_workdir_teacher(workdir)))
    ):
        teacher_path = _teacher_path(config, workdir)
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
        teacher = load(teacher_path, strategy)
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
        trainer = Trainer(config, splits, strategy, workdir, tensorboard_dir, state)
        results = {}
        if mode in ("teacher", "all") or (mode == "sweep" and teacher is None):
            teacher, results["teacher"] = trainer.supervised(
                "teacher", config.teacher, seed=config.seed
            )
        if teacher is not None and trainer.teacher_test_accuracy is None:
            trainer.set_teacher(teacher)  # loaded, or reused after a crash
        seeds = seeds_of(config)
        students = []  # the students alone, one per seed
        if mode in ("student", "all", "sweep"):
            for seed in seeds:
                base = "sweep/student" if mode == "sweep" else "student"
                name = seed_name(base, seed, config)
                _, results[name] = trainer.supervised(
                    name,
                    config.student,
                    seed=seed,
                    ship=mode != "sweep" and seed == config.seed,
                )
                students.append(results[name])
        if mode in ("distilling", "all"):
            for seed in seeds:
                name = seed_name("distilling", seed, config)
                results[name] = trainer.distill(
                    teacher,
                    name=name,
                    seed=seed,
                    temperature=config.distill.temperature,
                    alpha=config.distill.alpha,
                    ship=seed == config.seed,
                )
        if mode == "sweep":
            # The teacher is shared (trained only when none exists); the students
            # live in <workdir>/sweep/, beside the runs of the other modes.
            cells = {}
            for temperature in config.sweep.temperatures:
                for alpha in config.sweep.alphas:
                    cells[temperature, alpha] = []
                    for seed in seeds:
                        name = sweep_name(temperature, alpha, seed, config)
                        results[name] = trainer.distill(
                            teacher,
                            name=name,
                            seed=seed,
                            temperature=temperature,
                            alpha=alpha,
                            ship=False,  # model.keras and metrics.json only
                        )
                        cells[temperature, alpha].append(results[name])
            report.write_sweep(
                workdir,
                students=students,
                cells=cells,
                config=config,
                teacher_accuracy=trainer.teacher_test_accuracy,
            )
        if mode == "all":
            report.write(workdir, results, config)
        state.close()
    return results


def _workdir_teacher(workdir):
    return os.path.join(workdir, "teacher", "model.keras")


def _teacher_path(config, workdir):
    """The teacher to distil from: config.teacher_path, else <workdir>/teacher."""
    path = config.teacher_path or _workdir_teacher(workdir)
    if not os.path.isfile(path):
        if config.teacher_path:
            raise FileNotFoundError(f"config.teacher_path {path!r} does not exist")
        raise FileNotFoundError(
            f"No trained teacher at {path}. Run --model=teacher first with the same "
            "--workdir, or set --config.teacher_path to a .keras teacher."
        )
    return path


def seeds_of(config: ml_collections.ConfigDict) -> list[int]:
    """The students' seeds: config.seed, config.seed + 1, ..., num_seeds of them."""
    return [config.seed + i for i in range(config.num_seeds)]


def seed_name(base: str, seed: int, config: ml_collections.ConfigDict) -> str:
    """`base` for config.seed (the run directory's fixed names), else
    `<base>_seed<S>`."""
    return base if seed == config.seed else f"{base}_seed{seed}"


def sweep_name(temperature, alpha, seed, config) -> str:
    """A sweep cell's model folder, e.g. `sweep/T4_alpha0.1` (`_seed<S>` added
    for the seeds after config.seed)."""
    return seed_name(f"sweep/T{temperature:g}_alpha{alpha:g}", seed, config)
