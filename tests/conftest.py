"""Shared fixtures: the repository's paths and a tiny, fast config."""

import gzip
import os

import numpy as np
import pytest

from tf_distill.data import idx

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_DATA = os.path.join(os.path.dirname(REPO), "shared", "data")

# Overrides that make configs/default.py train in seconds (used by in-process and
# subprocess tests alike, so both exercise the same tiny run).
# main.py's subprocess runs use configs/default.py's main job (few labels, on
# 20% of the training labels); the in-process `tiny_config` its base_config().
TINY = {
    "num_seeds": 1,
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


def set_key(config, dotted: str, value) -> None:
    """config["a"]["b"]["c"] = value for dotted "a.b.c"."""
    *sections, field = dotted.split(".")
    node = config
    for section in sections:
        node = node[section]
    node[field] = value


def run_mode(config, tmp_path, mode: str = "all"):
    """Runs `mode` in-process into tmp_path/w (TensorBoard in tmp_path/tb)."""
    from tf_distill import experiment
    from tf_distill.outputs.rundir import RunDir

    run_dir = RunDir(str(tmp_path / "w"), str(tmp_path / "tb"))
    experiment.run(
        config, workdir=run_dir.root, mode=mode, tensorboard_dir=run_dir.tensorboard
    )
    return run_dir


def tiny(name: str = "tiny"):
    """configs/default.py's base_config() with the TINY overrides."""
    from configs import default

    config = default.base_config()
    config.name = name
    for key, value in TINY.items():
        set_key(config, key, value)
    return config


@pytest.fixture
def tiny_config():
    return tiny()


def needs_shared_data(name):
    """Skips (with the reason) when ../shared/data/<name> is not beside the repo."""
    folder = os.path.join(SHARED_DATA, name)
    return pytest.mark.skipif(
        not os.path.isdir(folder), reason=f"real data not found at {folder}"
    )


def write_idx(path, array, magic):
    """An IDX file (gzipped, as MNIST ships) holding `array` as uint8."""
    header = magic.to_bytes(4, "big") + b"".join(
        d.to_bytes(4, "big") for d in array.shape
    )
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


@pytest.fixture
def idx_folder(tmp_path):
    """A small valid MNIST-layout folder: 50 train and 20 test 28x28 images."""
    folder = tmp_path / "idx"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for split, n in (("train", 50), ("t10k", 20)):
        write_idx(
            folder / f"{split}-images-idx3-ubyte.gz",
            rng.integers(0, 256, (n, 28, 28)),
            idx.IMAGES_MAGIC,
        )
        write_idx(
            folder / f"{split}-labels-idx1-ubyte.gz",
            np.arange(n) % 10,
            idx.LABELS_MAGIC,
        )
    return folder


def whole_and_resumed(fit, monkeypatch, stop_after_epoch=0):
    """`fit(name)` run whole, then run interrupted at the end of epoch
    `stop_after_epoch` (0-based), after the backups that epoch writes, and again,
    resuming: the two results."""
    from tf_distill.training import interrupt

    whole = fit("whole")
    stop_after = {"epoch": stop_after_epoch}

    def crash_once(self, epoch, logs=None):
        if epoch == stop_after.get("epoch"):
            del stop_after["epoch"]
            raise KeyboardInterrupt

    monkeypatch.setattr(interrupt.Stop, "on_epoch_end", crash_once)
    with pytest.raises(KeyboardInterrupt):
        fit("resumed")
    return whole, fit("resumed")


def fit_on_arrays(model, x, y, folder, **options):
    """fitting.fit of a compiled `model` on (x, y) in batches of 16, validated
    on all of it; backups and TensorBoard in `folder`; its FitResult."""
    import tensorflow as tf

    from tf_distill.training import fitting

    return fitting.fit(
        model,
        name="m",
        make_train_ds=lambda epochs: (
            tf.data.Dataset.from_tensor_slices((x, y)).batch(16).repeat(len(epochs))
        ),
        val_ds=tf.data.Dataset.from_tensor_slices((x, y)).batch(len(x)),
        steps_per_epoch=-(-len(x) // 16),
        backup_dir=str(folder / "backup"),
        tensorboard_dir=str(folder / "tb"),
        **options,
    )
