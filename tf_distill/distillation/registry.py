"""Choosing a distillation method: `config.distill.method` names one of `METHODS`,
or a user's `package.module:Class`, a subclass of `methods.Method`."""

from __future__ import annotations

import ml_collections

from tf_distill import imports
from tf_distill.distillation.hint import Hint
from tf_distill.distillation.methods import DKD, KD, Method

METHODS = {"kd": KD, "dkd": DKD, "hint": Hint}


def method_class(name: str) -> type[Method]:
    """The method class `name` names.

    Raises:
        ValueError: an unknown name (listing the valid ones), a name that cannot
            be imported, or a class that is not a `Method`.
    """
    if isinstance(name, str) and name in METHODS:
        return METHODS[name]
    if not imports.is_named_import(name):
        raise ValueError(
            f"config.distill.method={name!r}: valid: {', '.join(METHODS)}, or "
            "package.module:Class (a tf_distill Method)"
        )
    cls = imports.import_named(name, what="Distillation method", kind="class")
    if not (isinstance(cls, type) and issubclass(cls, Method)):
        raise ValueError(
            f"Distillation method {name!r} is not a subclass of "
            "tf_distill.distillation.methods.Method"
        )
    return cls


def from_config(distill: ml_collections.ConfigDict) -> Method:
    """The method `config.distill` describes, built from its own keys.

    Raises:
        ValueError: naming the bad `config.distill.KEY`.
    """
    return method_class(distill.method).from_config(distill)
