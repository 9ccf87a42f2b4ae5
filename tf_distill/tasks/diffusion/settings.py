"""The diffusion task's config (configs/digits_diffusion.py) as typed settings,
validated once before any work: each bad value gets one line naming the key."""

from __future__ import annotations

import dataclasses
import math

import ml_collections

from tf_distill.checker import Checker, is_int
from tf_distill.models import architectures
from tf_distill.tasks import rerun
from tf_distill.tasks.diffusion import progressive
from tf_distill.training.distribute import STRATEGIES


@dataclasses.dataclass(frozen=True)
class Network:
    channels: int
    multipliers: tuple[int, ...]
    blocks: int
    dropout: float


@dataclasses.dataclass(frozen=True)
class Settings:
    prediction: str
    weighting: str
    network: Network
    teacher_epochs: int
    teacher_learning_rate: float
    ema_decay: float
    teacher_steps: int
    final_steps: int
    round_epochs: int
    round_learning_rate: float
    batch_size: int
    seed: int
    num_samples: int
    noise_seeds: int
    classifier: architectures.ModelSpec
    tensorboard_every_steps: int
    backup_every_seconds: float

    @property
    def round_steps(self) -> list[int]:
        """The students' step counts, round by round: teacher_steps/2 ... final."""
        steps, n = [], self.teacher_steps // 2
        while n >= self.final_steps:
            steps.append(n)
            n //= 2
        return steps

    @property
    def ddim_steps(self) -> list[int]:
        """The step counts plain DDIM is measured at: 1, 2, 4, ... teacher_steps."""
        return [2**k for k in range(int(math.log2(self.teacher_steps)) + 1)]


def from_config(config: ml_collections.ConfigDict) -> Settings:
    d, p, q = config.diffusion, config.progressive, config.quality
    return Settings(
        prediction=d.prediction,
        weighting=d.weighting,
        network=Network(
            channels=int(d.channels),
            multipliers=tuple(int(m) for m in d.multipliers),
            blocks=int(d.blocks),
            dropout=float(d.dropout),
        ),
        teacher_epochs=int(d.epochs),
        teacher_learning_rate=float(d.learning_rate),
        ema_decay=float(d.ema_decay),
        teacher_steps=int(p.teacher_steps),
        final_steps=int(p.final_steps),
        round_epochs=int(p.epochs),
        round_learning_rate=float(p.learning_rate),
        batch_size=int(config.batch_size),
        seed=int(config.seed),
        num_samples=int(q.num_samples),
        noise_seeds=int(q.noise_seeds),
        classifier=architectures.ModelSpec(
            arch=q.classifier_arch,
            layers=tuple(int(n) for n in q.classifier_layers),
            dropout=0.2,
            epochs=int(q.classifier_epochs),
        ),
        tensorboard_every_steps=int(config.tensorboard.every_steps),
        backup_every_seconds=float(config.backup_every_seconds),
    )


def _power_of_two(n) -> bool:
    return is_int(n) and n > 0 and (n & (n - 1)) == 0


def validate(config: ml_collections.ConfigDict) -> None:
    """Raises ValueError naming `config.KEY`, its value and what was expected
    (checker.Checker, as for the classifier task)."""
    c = Checker(config)
    c.seed("seed")
    c.seed("split_seed")
    c.positive_number("distribute.connect_timeout")
    c.number_at_least_zero("backup_every_seconds")
    c.one_of("finished", rerun.POLICIES)
    _network(c, config.diffusion)
    c.check(config.strategy in STRATEGIES, "strategy", f"expected one of {STRATEGIES}")
    c.check(
        isinstance(config.deterministic, bool), "deterministic", "expected True/False"
    )
    c.check(
        config.mixed_precision is None,
        "mixed_precision",
        "the diffusion task trains in float32 (None)",
    )
    for key in (
        "batch_size",
        "progressive.epochs",
        "quality.num_samples",
        "quality.noise_seeds",
        "quality.classifier_epochs",
    ):
        c.positive_int(key)
    p = config.progressive
    c.positive_number("progressive.learning_rate")
    c.check(
        _power_of_two(p.teacher_steps) and p.teacher_steps >= 2,
        "progressive.teacher_steps",
        "expected a power of two >= 2 (each round halves the steps)",
    )
    c.check(
        _power_of_two(p.final_steps) and p.final_steps < p.teacher_steps,
        "progressive.final_steps",
        f"expected a power of two below progressive.teacher_steps="
        f"{p.teacher_steps} (each round halves the steps)",
    )
    c.check(
        config.quality.classifier_arch in architectures.MODELS,
        "quality.classifier_arch",
        f"expected one of {', '.join(architectures.MODELS)}",
    )


def _network(c: Checker, d: ml_collections.ConfigDict) -> None:
    """config.diffusion: what the network predicts, its shape and its training."""
    c.check(
        d.prediction in progressive.PREDICTIONS,
        "diffusion.prediction",
        f"expected one of {', '.join(progressive.PREDICTIONS)} (epsilon-prediction "
        "cannot be distilled: Salimans & Ho, Table 1)",
    )
    c.check(
        d.weighting in progressive.WEIGHTINGS,
        "diffusion.weighting",
        f"expected one of {', '.join(progressive.WEIGHTINGS)}",
    )
    for key in ("diffusion.channels", "diffusion.blocks", "diffusion.epochs"):
        c.positive_int(key)
    c.check(
        len(d.multipliers) >= 1 and all(is_int(m) and m > 0 for m in d.multipliers),
        "diffusion.multipliers",
        "expected positive integers, one per resolution level",
    )
    c.check(0 <= d.dropout < 1, "diffusion.dropout", "expected a value in [0, 1)")
    c.check(0 <= d.ema_decay < 1, "diffusion.ema_decay", "expected a value in [0, 1)")
    c.positive_number("diffusion.learning_rate")
