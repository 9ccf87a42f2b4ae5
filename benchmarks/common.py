"""What the benchmark scripts share: importing the repository and its config files."""

from __future__ import annotations

import importlib.util
import os
import sys

import ml_collections

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)  # `configs` and `tf_distill` without installing


def load_config(path: str, *, name_prefix: str) -> ml_collections.ConfigDict:
    """`get_config()` of the config file at `path`, named `<prefix>_<file name>`."""
    spec = importlib.util.spec_from_file_location("bench_config", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    config = module.get_config()
    config.name = f"{name_prefix}_{os.path.splitext(os.path.basename(path))[0]}"
    return config
