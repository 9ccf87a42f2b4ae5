"""`Checker`: one line naming `config.KEY`, its value and what was expected."""

from __future__ import annotations

import math

import ml_collections


class Checker:
    """Raises ValueError naming `config.KEY`, its value and what was expected.

    `prefix` names the section a checker is given (`Checker(config.distill,
    prefix="distill")` says `config.distill.KEY`)."""

    def __init__(self, config: ml_collections.ConfigDict, prefix: str = ""):
        self.config = config
        self.prefix = f"{prefix}." if prefix else ""

    def get(self, dotted_key: str):
        value = self.config
        for part in dotted_key.split("."):
            value = value[part]
        return value

    def check(self, ok: bool, key: str, expected: str) -> None:
        if not ok:
            raise ValueError(f"config.{self.prefix}{key}={self.get(key)!r}: {expected}")

    def positive_int(self, key: str) -> None:
        value = self.get(key)
        self.check(is_int(value) and value > 0, key, "expected a positive integer")

    def one_of(self, key: str, valid) -> None:
        self.check(self.get(key) in valid, key, f"expected one of {', '.join(valid)}")

    def seed(self, key: str) -> None:
        """What NumPy and TensorFlow take as a seed (TensorFlow's own message for
        -1 names no key)."""
        value = self.get(key)
        self.check(
            is_int(value) and 0 <= value < 2**32,
            key,
            "expected an integer in [0, 2**32)",
        )

    def number_at_least_zero(self, key: str) -> None:
        value = self.get(key)
        self.check(
            is_number(value) and value >= 0, key, "expected a finite number >= 0"
        )

    def positive_number(self, key: str) -> None:
        """A finite number > 0 (inf and NaN compare as numbers, and then diverge)."""
        value = self.get(key)
        self.check(is_number(value) and value > 0, key, "expected a finite number > 0")


def is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
    )
