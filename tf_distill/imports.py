"""Importing what a config names as `package.module:name` (a user's model
builder or distillation method)."""

from __future__ import annotations

import importlib


def is_named_import(name) -> bool:
    """Whether `name` has the `package.module:name` form."""
    return isinstance(name, str) and ":" in name


def import_named(name: str, *, what: str, kind: str):
    """The object `package.module:attribute` names.

    Args:
        name: `package.module:attribute`, importable from the folder the program
            runs in or from anything installed.
        what: what the object is, for the error message ("Model builder").
        kind: what `attribute` should be ("function", "class").

    Raises:
        ValueError: naming `name` and why it cannot be imported.
    """
    module_name, _, attribute = name.partition(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as e:  # ImportError, or any error inside the user's module
        raise ValueError(
            f"{what} {name!r}: cannot import {module_name!r}: {type(e).__name__}: {e}"
        ) from None
    if not hasattr(module, attribute):
        raise ValueError(
            f"{what} {name!r}: module {module_name!r} has no {kind} {attribute!r}"
        )
    return getattr(module, attribute)
