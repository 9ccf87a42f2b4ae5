"""Shared fixtures: the repository's paths and a tiny, fast config."""

import os

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_DATA = os.path.join(os.path.dirname(REPO), "shared", "data")

# Overrides that make configs/default.py train in seconds (used by in-process and
# subprocess tests alike, so both exercise the same tiny run).
TINY = {
    "teacher.layers": (32,),
    "teacher.epochs": 2,
    "student.layers": (8,),
    "student.epochs": 2,
    "early_stopping.patience": 0,
    # LiteRT conversion costs seconds a model; tests/test_export.py turns it on.
    "export.tflite": False,
}


def tiny_flags():
    """TINY as --config.KEY=VALUE flags for main.py."""
    out = []
    for key, value in TINY.items():
        if isinstance(value, tuple):
            value = "(" + ",".join(str(v) for v in value) + ",)"
        out.append(f"--config.{key}={value}")
    return out


@pytest.fixture
def tiny_config():
    from configs import default

    config = default.get_config()
    config.name = "tiny"
    for key, value in TINY.items():
        section, field = key.split(".")
        config[section][field] = value
    return config


def needs_shared_data(name):
    """Skips (with the reason) when ../shared/data/<name> is not beside the repo."""
    folder = os.path.join(SHARED_DATA, name)
    return pytest.mark.skipif(
        not os.path.isdir(folder), reason=f"real data not found at {folder}"
    )
