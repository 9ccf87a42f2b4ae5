"""The run directory: every path of a run, in one place.

    <workdir>/config.json                     resolved config of the last run
    <workdir>/<model>/metrics.json            ModelPaths.metrics
    <workdir>/<model>/model.keras             ModelPaths.keras
    <workdir>/<model>/saved_model/            ModelPaths.saved_model
    <workdir>/<model>/<role>_<kind>.tflite    ModelPaths.tflite(kind)
    <workdir>/<model>/class_names.txt         ModelPaths.class_names
    <workdir>/<model>/evaluation.json         ModelPaths.evaluation (--model=evaluate)
    <workdir>/report.{json,md}, accuracy.png  --model=all
    <workdir>/sweep.{json,md,png}             --model=sweep
    <workdir>/.backup/                        crash backups (training/resume.py)
    <workdir>/teacher_cache/<name>/           the teacher's logits (teacher/store.py)
    <tensorboard>/<model>/{train,validation}  ModelPaths.tensorboard

A model's folder name is its `ModelKey`: `teacher`, `student` (alone) or
`distilling` (the distilled student) for the run's first seed, `distilling_gen<G>`
for later generations (config.distill.generations), `<base>_seed<S>` for the
other seeds, and `sweep/T<T>_alpha<A>[_seed<S>]` and `sweep/student[_seed<S>]` for
the sweep's cells. The diffusion task keeps `teacher`, `student` (the teacher's
DDIM at fewer steps), `quality_classifier` and `distilling_steps<N>` per round
(`round_name`). Nothing else in the package builds or parses these names.
"""

from __future__ import annotations

import dataclasses
import os
import re

TEACHER, STUDENT, DISTILLED = "teacher", "student", "distilling"
SHIPPED = (TEACHER, STUDENT, DISTILLED)  # the models that get exports
SWEEP = "sweep"
_SEED = re.compile(r"^(?P<base>.+)_seed(?P<seed>-?\d+)$")
_ROUND = re.compile(rf"^{DISTILLED}_steps(?P<steps>\d+)$")
_GENERATION = re.compile(rf"^{DISTILLED}_gen(?P<generation>\d+)$")


def round_name(steps: int) -> str:
    """The folder of the diffusion task's progressive-distillation round whose
    student samples in `steps` steps."""
    return f"{DISTILLED}_steps{steps}"


def steps_of_round(name: str) -> int | None:
    """The step count of a `round_name`; None for any other name."""
    match = _ROUND.match(name)
    return int(match["steps"]) if match else None


def generation_base(generation: int) -> str:
    """The base name of a distilled student's generation (config.distill
    .generations): "distilling" for the first, "distilling_gen<G>" after."""
    return DISTILLED if generation == 1 else f"{DISTILLED}_gen{generation}"


def generation_of(base: str) -> int | None:
    """The generation a base name holds (1 for "distilling"), None if none."""
    if base == DISTILLED:
        return 1
    match = _GENERATION.match(base)
    return int(match["generation"]) if match else None


@dataclasses.dataclass(frozen=True)
class ModelKey:
    """One model of a run: which model (`base`) and, after the first, which seed."""

    base: str  # "teacher", "student", "distilling", "sweep/student", "sweep/T4_..."
    seed: int | None = None  # None: the run's first seed (config.seed)

    @classmethod
    def of(cls, base: str, seed: int, first_seed: int) -> ModelKey:
        """The key of `base` trained with `seed` in a run whose first seed is
        `first_seed`: the first seed's models keep the fixed names."""
        return cls(base, None if seed == first_seed else seed)

    @classmethod
    def sweep_cell(
        cls, temperature: float, alpha: float, seed: int, first_seed: int
    ) -> ModelKey:
        return cls.of(f"{SWEEP}/T{temperature:g}_alpha{alpha:g}", seed, first_seed)

    @classmethod
    def parse(cls, name: str) -> ModelKey:
        match = _SEED.match(name)
        if match:
            return cls(match["base"], int(match["seed"]))
        return cls(name)

    @property
    def name(self) -> str:
        """The model's folder name, and its key in results and TensorBoard."""
        return self.base if self.seed is None else f"{self.base}_seed{self.seed}"

    @property
    def role(self) -> str:
        """ "teacher" or "student": the model's Keras name and its LiteRT prefix."""
        return TEACHER if self.base == TEACHER else STUDENT

    @property
    def is_first_seed(self) -> bool:
        return self.seed is None


@dataclasses.dataclass(frozen=True)
class ModelPaths:
    """Where one model's files go."""

    key: ModelKey
    dir: str
    backup: str  # keras.callbacks.BackupAndRestore and the resume state
    tensorboard: str

    @property
    def keras(self) -> str:
        return os.path.join(self.dir, "model.keras")

    @property
    def metrics(self) -> str:
        return os.path.join(self.dir, "metrics.json")

    @property
    def evaluation(self) -> str:
        return os.path.join(self.dir, "evaluation.json")

    @property
    def saved_model(self) -> str:
        return os.path.join(self.dir, "saved_model")

    @property
    def class_names(self) -> str:
        return os.path.join(self.dir, "class_names.txt")

    def tflite(self, kind: str) -> str:
        """`<role>_<kind>.tflite`, e.g. student_int8.tflite."""
        return os.path.join(self.dir, f"{self.key.role}_{kind}.tflite")


@dataclasses.dataclass(frozen=True)
class RunDir:
    """A run directory and the TensorBoard folder of its models; the teacher's
    caches go in `cache_root` when given (a non-chief worker's: the chief's run
    directory, under config.distribute.shared_workdir), else in `root`."""

    root: str
    tensorboard: str
    cache_root: str | None = None

    def model(self, key: ModelKey | str) -> ModelPaths:
        if isinstance(key, str):
            key = ModelKey.parse(key)
        return ModelPaths(
            key=key,
            dir=os.path.join(self.root, key.name),
            backup=os.path.join(self.backup_root, key.name),
            tensorboard=os.path.join(self.tensorboard, key.name),
        )

    def file(self, name: str) -> str:
        """A run-level file: "config.json", "report.md", "sweep.png", ..."""
        return os.path.join(self.root, name)

    @property
    def backup_root(self) -> str:
        return os.path.join(self.root, ".backup")

    def teacher_cache(self, name: str) -> str:
        """The teacher's cached logits (teacher/store.py): "train",
        "validation" or "views"."""
        return os.path.join(self.cache_root or self.root, "teacher_cache", name)

    def trained(self, bases: tuple[str, ...] = SHIPPED) -> list[ModelKey]:
        """The first-seed models among `bases` that have a model.keras; with the
        default, also the later generations' (`distilling_gen<G>`), in order."""
        if bases == SHIPPED and os.path.isdir(self.root):
            later = [
                name for name in os.listdir(self.root) if (generation_of(name) or 1) > 1
            ]
            bases = (*bases, *sorted(later, key=generation_of))
        found = [ModelKey(b) for b in bases if os.path.isfile(self.model(b).keras)]
        if not found:
            looked = ", ".join(f"{b}/model.keras" for b in bases)
            raise FileNotFoundError(
                f"No trained model in {self.root} (looked for {looked}). Train one "
                "first with the same --config and --workdir, e.g. --model=all."
            )
        return found


def runs_of(results: dict[str, dict], base: str) -> list[dict]:
    """The results of `base` over its seeds (keyed by model name), first seed first."""
    keys = [ModelKey.parse(name) for name in results]
    ordered = sorted(
        (k for k in keys if k.base == base), key=lambda k: (not k.is_first_seed,)
    )
    return [results[k.name] for k in ordered]
