"""The `--model` modes of the diffusion task (config.task = "diffusion").

    teacher     trains the many-step teacher (its EMA weights are what samples)
    student     the baseline to beat: the teacher's own DDIM at 1, 2, 4, ...
                teacher_steps steps, its quality at each count
    distilling  the halving rounds teacher_steps -> ... -> final_steps, each
                round's student saved and measured; the last one exported
    all         the three, then report.{json,md} and quality.png
    export      re-exports the final student's sampler SavedModel
    evaluate    measures the exported sampler as a client runs it

The runner (experiment.run) finds them in this package's TASK; each mode opens a
`session`: the run context every task shares (context.RunContext) around a
SamplerTrainer.
"""

from __future__ import annotations

import contextlib
import os

import numpy as np
import tensorflow as tf
from absl import logging

from tf_distill.data import sources
from tf_distill.outputs import files
from tf_distill.outputs.rundir import TEACHER, RunDir, round_name, steps_of_round
from tf_distill.tasks import context, rerun
from tf_distill.tasks.context import RunContext
from tf_distill.tasks.diffusion import quality, report, sampler, settings
from tf_distill.tasks.diffusion.trainer import GRID_SAMPLES, STUDENT, SamplerTrainer


@contextlib.contextmanager
def session(config, run_dir: RunDir, mode: str, *, needs: str | None = None):
    """A SamplerTrainer in the run context (context.RunContext). `needs`: a
    model the mode reads (the teacher, the final student), looked for before
    anything is written."""
    if needs is not None and not os.path.isfile(run_dir.model(needs).keras):
        first = "--model=teacher" if needs == TEACHER else "--model=distilling"
        raise FileNotFoundError(
            f"No trained {needs} at {run_dir.model(needs).keras}. Run {first} "
            "first with the same --config and --workdir (or --model=all)."
        )

    def prepare(splits, strategy):
        _check_images(config, splits)
        if needs is not None:  # a model trained on other data: refused, named
            paths = run_dir.model(needs)
            context.check_trained_on(paths.metrics, paths.keras, splits)
        logging.info(
            "Data %s: %s, images %s", splits.source, splits.sizes(), splits.input_shape
        )

    fingerprint = context.config_fingerprint(config)
    with RunContext(
        config,
        run_dir,
        mode,
        load_data=_load_data,
        prepare=prepare,
        rerun_rules=rerun_rules(mode),
        fingerprint=fingerprint,
    ) as run:
        yield SamplerTrainer(
            settings.from_config(config),
            run.data,
            run.strategy,
            run.run_dir,
            run.state,
            recorded={
                "config_fingerprint": fingerprint,
                "config": context.config_dict(config),
            },
        )


# What each mode trains, by the first part of a model's name; the DDIM baseline
# (student) saves no model, so tasks/rerun.py never finds it finished.
_TRAINS = {
    "teacher": ("teacher",),
    "distilling": ("distilling",),
    "all": ("teacher", "distilling"),
}


def rerun_rules(mode: str) -> rerun.Rules:
    """The diffusion task's answers to tasks/rerun.py: a replaced teacher takes
    every round distilled from it, the baseline measured on it and the report;
    a replaced round the rounds after it and the report."""

    def role(name: str) -> str:
        return "distilling" if steps_of_round(name) else name

    def dependents(name: str, present: list[str]) -> tuple[str, ...]:
        rounds = [n for n in present if steps_of_round(n)]
        if name == TEACHER:
            return (*rounds, STUDENT, *report.FILES)
        later = [n for n in rounds if steps_of_round(n) < steps_of_round(name)]
        return (*later, *report.FILES)

    return rerun.Rules(
        writes=lambda name: role(name) in _TRAINS.get(mode, ()),
        dependents=dependents,
    )


def _load_data(config):
    """The data: small sets in memory, folders, TFRecords and tfds streamed from
    their files (the training pass, the quality classifier and its reference
    read them in batches)."""
    return sources.load(context.data_spec(config))


def _check_images(config, splits) -> None:
    height, width = splits.input_shape[:2]
    factor = 2 ** (len(config.diffusion.multipliers) - 1)
    if height % factor or width % factor:
        raise ValueError(
            f"config.diffusion.multipliers={tuple(config.diffusion.multipliers)}: "
            f"{height}x{width} images cannot be halved {factor.bit_length() - 1} "
            "time(s); use fewer levels"
        )
    if config.quality.num_samples < 2:
        raise ValueError("config.quality.num_samples must be >= 2 (FID, KID)")


def teacher(config, run_dir):
    with session(config, run_dir, "teacher") as trainer:
        return {TEACHER: trainer.train_teacher()[1]}


def _ddim_baseline(trainer: SamplerTrainer) -> dict:
    """The teacher's DDIM at every power-of-two step count: student/metrics.json."""
    paths = trainer.run_dir.model(STUDENT)
    if trainer.state.finished(STUDENT):
        return files.read_json(paths.metrics)
    network = trainer.load(TEACHER)
    measured = {}
    for steps in trainer.settings.ddim_steps:
        measured[str(steps)], images = trainer.quality(network, steps)
        grid = os.path.join(paths.dir, f"samples_steps{steps}.png")
        sampler.write_grid(images[:GRID_SAMPLES], grid)
    metrics = {
        "model": STUDENT,
        "sampler": "DDIM of the teacher",
        "quality": measured,
        "floor": trainer.floor()["real_vs_real"],
    }
    files.write_json(paths.metrics, metrics)
    trainer.state.mark_finished(STUDENT)
    return metrics


def student(config, run_dir):
    with session(config, run_dir, "student", needs=TEACHER) as trainer:
        return {STUDENT: _ddim_baseline(trainer)}


def _distil(trainer: SamplerTrainer) -> dict:
    results = trainer.distil_rounds(trainer.load(TEACHER))
    for name, metrics in results.items():
        if "quality" not in metrics:
            network = trainer.load(name)
            metrics["quality"], _ = trainer.quality(network, metrics["sampling_steps"])
            files.write_json(trainer.run_dir.model(name).metrics, metrics)
    for name, shipped in _export(trainer).items():
        results[name] = {**results[name], **shipped}
    return results


def _export(trainer: SamplerTrainer) -> dict:
    """The final student's sampler as a SavedModel, loaded back once to check."""
    steps = trainer.settings.round_steps[-1]
    name = round_name(steps)
    paths = trainer.run_dir.model(name)
    size = sampler.export(
        trainer.load(name),
        paths.saved_model,
        num_steps=steps,
        prediction=trainer.settings.prediction,
    )
    sampler.check_exported(paths.saved_model)
    logging.info("Exported the %d-step sampler to %s", steps, paths.saved_model)
    return {name: {"saved_model": paths.saved_model, "saved_model_bytes": size}}


def distilling(config, run_dir):
    with session(config, run_dir, "distilling", needs=TEACHER) as trainer:
        return _distil(trainer)


def all_models(config, run_dir):
    with session(config, run_dir, "all") as trainer:
        for name in report.FILES:
            if os.path.exists(trainer.run_dir.file(name)):
                os.remove(trainer.run_dir.file(name))  # rewritten at the end
        results = {TEACHER: trainer.train_teacher()[1]}
        results[STUDENT] = _ddim_baseline(trainer)
        results.update(_distil(trainer))
        report.write(trainer.run_dir, results, title=config.name)
        return results


def export_sampler(config, run_dir):
    final = round_name(settings.from_config(config).round_steps[-1])
    with session(config, run_dir, "export", needs=final) as trainer:
        return _export(trainer)


def evaluate_export(config, run_dir):
    """The exported sampler's quality from the same noise, as a client draws it
    (uint8 images), beside the Keras model's: <final model>/evaluation.json."""
    final = round_name(settings.from_config(config).round_steps[-1])
    with session(config, run_dir, "evaluate", needs=final) as trainer:
        s, paths = trainer.settings, trainer.run_dir.model(final)
        if not os.path.isdir(paths.saved_model):
            raise FileNotFoundError(
                f"No exported sampler at {paths.saved_model}: run --model=all or "
                "--model=distilling first with the same --config and --workdir"
            )
        draw = tf.saved_model.load(paths.saved_model).signatures["from_noise"]
        per_seed = []
        for seed in range(s.noise_seeds):
            z = sampler.noise(seed, s.num_samples, trainer.image_shape)
            pixels = draw(noise=z)["images"].numpy().astype(np.float32)
            per_seed.append(trainer.reference().measure(pixels / 127.5 - 1.0))
        result = {"saved_model": quality.summarise(per_seed)}
        if os.path.isfile(paths.metrics):
            result["keras"] = files.read_json(paths.metrics).get("quality")
        files.write_json(paths.evaluation, result)
        return {final: result}


MODES = {
    "teacher": teacher,
    "student": student,
    "distilling": distilling,
    "all": all_models,
    "export": export_sampler,
    "evaluate": evaluate_export,
}
