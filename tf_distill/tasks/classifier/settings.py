"""Reading a config: the typed settings the library takes (with validation/,
session.py and experiment.py, the only code that reads a ConfigDict; library
functions take these dataclasses and plain values)."""

from __future__ import annotations

import hashlib
import json

import ml_collections

from tf_distill.data import augment, sources, unlabelled
from tf_distill.distillation import methods
from tf_distill.models import architectures
from tf_distill.tasks.classifier import trainer
from tf_distill.training import fitting

# The typed settings, each from its section of the config.


def data_spec(config: ml_collections.ConfigDict) -> sources.DataSpec:
    return sources.DataSpec(
        dataset=config.dataset,
        data_dir=config.data_dir,
        validation_fraction=config.validation_fraction,
        split_seed=config.split_seed,
        image_size=tuple(config.image_size),
        color_mode=config.color_mode,
    )


def model_spec(section: ml_collections.ConfigDict) -> architectures.ModelSpec:
    """config.teacher or config.student as a ModelSpec."""
    return architectures.ModelSpec(
        arch=section.arch,
        layers=tuple(int(n) for n in section.layers),
        dropout=float(section.dropout),
        weights=section.weights,
        epochs=section.epochs,
    )


def distill_epochs(config: ml_collections.ConfigDict) -> int:
    """Epochs of the distilled student: config.distill.epochs, else the student's."""
    return config.distill.epochs or config.student.epochs


def method(
    config: ml_collections.ConfigDict,
    *,
    temperature: float | None = None,
    alpha: float | None = None,
):
    """config.distill's method; the sweep passes each cell's temperature and alpha
    (KD's)."""
    cfg = config.distill
    temperature = cfg.temperature if temperature is None else temperature
    if cfg.method == "dkd":
        return methods.build(
            "dkd",
            temperature=temperature,
            alpha=cfg.dkd.alpha,
            beta=cfg.dkd.beta,
            warmup_epochs=cfg.dkd.warmup_epochs,
        )
    alpha = cfg.alpha if alpha is None else alpha
    if cfg.method == "hint":
        return methods.build(
            "hint",
            temperature=temperature,
            alpha=alpha,
            teacher_layer=cfg.hint.teacher_layer,
            student_layer=cfg.hint.student_layer,
            weight=cfg.hint.weight,
        )
    return methods.build(cfg.method, temperature=temperature, alpha=alpha)


def classifier_settings(config: ml_collections.ConfigDict) -> trainer.Settings:
    a, d, opt = config.augment, config.distill, config.optimizer
    return trainer.Settings(
        batch_size=config.batch_size,
        steps_per_execution=config.steps_per_execution,
        learning_rate=opt.learning_rate,
        final_lr_fraction=opt.final_lr_fraction,
        amsgrad=opt.amsgrad,
        early_stopping=fitting.EarlyStopping(
            monitor=config.early_stopping.monitor,
            patience=config.early_stopping.patience,
        ),
        distill_early_stopping=fitting.EarlyStopping(
            monitor=config.early_stopping.monitor,
            patience=config.early_stopping.patience
            if config.distill.patience is None
            else config.distill.patience,
        ),
        tensorboard_every_steps=config.tensorboard.every_steps,
        augment=augment.AugmentSpec(
            translate=a.translate,
            flip=a.flip,
            rotation=a.rotation,
            color_jitter=a.color_jitter,
            mixup=a.mixup,
        ),
        cache_teacher_logits=d.cache_teacher_logits,
        cache_dtype=d.cache_dtype,
        cache_top_k=d.cache_top_k,
        cached_views=d.cached_views,
        validation_teacher=d.validation_teacher,
        teacher_batch_size=d.teacher_batch_size,
        teacher_dtype=d.teacher_dtype,
        export_tflite=config.export.tflite,
        representative_examples=config.export.representative_examples,
        representative_seed=config.seed,
        fingerprint=fingerprint(config),
    )


def fingerprint(config: ml_collections.ConfigDict) -> str:
    """12 hex digits identifying the resolved config (its name aside): every
    model's metrics.json carries its run's, so models of different runs are told
    apart."""
    values = {k: v for k, v in config.to_dict().items() if k != "name"}
    text = json.dumps(values, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def load_data(config: ml_collections.ConfigDict) -> sources.Splits:
    """The data set the config names (sources.load with data_spec), keeping the
    labels of config.labeled_fraction of its training split (unlabelled.py)."""
    splits = sources.load(data_spec(config))
    return unlabelled.keep_labels(splits, config.labeled_fraction, config.split_seed)


def transfer_data(config: ml_collections.ConfigDict, splits: sources.Splits):
    """config.distill.transfer_data for the classifier task: None, "train", or
    the images of a folder or IDX file (read and checked against `splits`)."""
    source = config.distill.transfer_data
    if source is None or source == unlabelled.TRAIN:
        return source
    return unlabelled.read_images(
        source, input_shape=splits.input_shape, input_scale=splits.input_scale
    )
