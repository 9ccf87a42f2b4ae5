"""The classifier task's config read into the typed settings the library takes.

With checks.py, session.py and modes.py (and tasks/context.py for what every task
shares), the only code of the task that reads a ConfigDict; library functions
take these dataclasses and plain values."""

from __future__ import annotations

import dataclasses

import ml_collections

from tf_distill.data import augment, sources, unlabelled
from tf_distill.distillation import methods, registry
from tf_distill.models import architectures, saved_teacher
from tf_distill.tasks import context
from tf_distill.training import fitting


@dataclasses.dataclass(frozen=True)
class Settings:
    """How the classifiers of a run are trained, cached and shipped."""

    batch_size: int = 64  # global, across replicas
    steps_per_execution: int = 1
    learning_rate: float = 3e-3
    final_lr_fraction: float = 0.1
    amsgrad: bool = False
    early_stopping: fitting.EarlyStopping = fitting.EarlyStopping()
    # The distilled student's: a patient schedule (Beyer et al. 2022) may need none.
    distill_early_stopping: fitting.EarlyStopping = fitting.EarlyStopping()
    tensorboard_every_steps: int = 100
    backup_every_seconds: float = 30.0  # crash backups (training/backups.py)
    validation_every: int = 1  # epochs
    # config.teacher.keep: "auto", "best", "last" or an epoch number, as text.
    teacher_keep: str = "auto"
    augment: augment.AugmentSpec = augment.AugmentSpec()
    cache_teacher_logits: bool = True
    cache_dtype: str = "float32"
    cache_top_k: int = 0  # keep the k largest logits (teacher/topk.py); 0: all
    cached_views: int = 0  # K augmented views per image, the teacher run on each
    validation_teacher: bool = False  # the teacher also on the validation split
    teacher_batch_size: int = 256
    teacher_dtype: str = "float32"
    # config.distribute.shared_workdir: workers split the caching pass, and how
    # long one waits for the others' part (config.distribute.connect_timeout).
    split_teacher_pass: bool = False
    worker_patience: float = 300.0
    export_tflite: bool = True
    representative_examples: int = 500  # int8 calibration images
    # The run's first seed: it draws the int8 calibration images and the cached
    # views' parameters, the same for every seed of the run.
    seed: int = 0
    fingerprint: str = ""  # of the run's config, stamped on every model's metrics
    config: dict | None = None  # the run's config, recorded in every metrics.json


def kept_weights(
    settings: Settings, *, teacher: bool, distilling: bool = False
) -> tuple[str | int, fitting.EarlyStopping]:
    """Which of a fit's weights a model keeps, "best" (on validation), "last" or
    an epoch number, and the early stopping its fit gets. config.teacher.keep for
    the teacher; otherwise, and for "auto", early stopping's rule: the best with
    a patience, else the last. Keeping an epoch runs the whole schedule."""
    stopping = (
        settings.distill_early_stopping if distilling else settings.early_stopping
    )
    keep = settings.teacher_keep if teacher else "auto"
    if keep == "auto":
        return ("best" if stopping.patience > 0 else "last"), stopping
    if keep.isdigit():  # an earlier epoch of the whole schedule
        return int(keep), dataclasses.replace(stopping, patience=0)
    return keep, stopping


# The typed settings, each from its section of the config.


def model_spec(section: ml_collections.ConfigDict) -> architectures.ModelSpec:
    """config.teacher or config.student as a ModelSpec."""
    return architectures.ModelSpec(
        arch=section.arch,
        layers=tuple(int(n) for n in section.layers),
        dropout=float(section.dropout),
        weights=section.weights,
        epochs=section.epochs,
    )


def saved_model_spec(
    section: ml_collections.ConfigDict,
) -> saved_teacher.SavedModelSpec:
    """How config.teacher says to call a SavedModel teacher."""
    return saved_teacher.SavedModelSpec(
        signature=section.signature,
        output_key=section.output_key,
        outputs=section.outputs,
    )


def distill_epochs(config: ml_collections.ConfigDict) -> int:
    """Epochs of the distilled student: config.distill.epochs, else the student's."""
    return config.distill.epochs or config.student.epochs


def method(
    config: ml_collections.ConfigDict,
    *,
    temperature: float | None = None,
    alpha: float | None = None,
) -> methods.Method:
    """config.distill's method, built from its own keys (registry.from_config);
    the sweep passes each cell's temperature and alpha."""
    distill = config.distill
    if temperature is not None or alpha is not None:
        distill = distill.copy_and_resolve_references()
        distill.temperature = (
            distill.temperature if temperature is None else temperature
        )
        distill.alpha = distill.alpha if alpha is None else alpha
    return registry.from_config(distill)


def classifier_settings(config: ml_collections.ConfigDict) -> Settings:
    a, d, opt = config.augment, config.distill, config.optimizer
    return Settings(
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
        backup_every_seconds=float(config.backup_every_seconds),
        validation_every=config.validation_every_epochs,
        teacher_keep=str(config.teacher.keep),
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
        split_teacher_pass=config.distribute.shared_workdir,
        worker_patience=float(config.distribute.connect_timeout),
        export_tflite=config.export.tflite,
        representative_examples=config.export.representative_examples,
        seed=config.seed,
        fingerprint=context.config_fingerprint(config),
        config=context.config_dict(config),
    )


def load_data(config: ml_collections.ConfigDict) -> sources.Splits:
    """The data set the config names (sources.load with context.data_spec), keeping the
    labels of config.labeled_fraction of its training split (unlabelled.py)."""
    splits = sources.load(context.data_spec(config))
    return unlabelled.keep_labels(splits, config.labeled_fraction, config.split_seed)


def transfer_data(config: ml_collections.ConfigDict, splits: sources.Splits):
    """config.distill.transfer_data for the classifier task: None, "train", or
    the images of a folder or IDX file (read and checked against `splits`)."""
    source = config.distill.transfer_data
    if source is None or source == unlabelled.TRAIN:
        return source
    return unlabelled.read_images(
        source,
        input_shape=splits.input_shape,
        input_scale=splits.input_scale,
    )
