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


def paired_row(name, runs, alone, teacher_accuracy, seconds) -> dict:
    """One table row: mean validation and test accuracy of `runs` (one metrics
    dict per seed), the gain over `alone` paired per seed with its 95% CI, the
    share of the teacher's lead recovered, and the wall time."""
    from tf_distill.reports import stats

    gains = stats.paired_differences(runs, alone)
    recovered = stats.gap_recovered(runs, alone, teacher_accuracy)
    return {
        "recipe": name,
        "validation_accuracy": sum(r["validation_accuracy"] for r in runs) / len(runs),
        "test_accuracy": sum(r["test_accuracy"] for r in runs) / len(runs),
        "test_accuracy_std": stats.sample_std([r["test_accuracy"] for r in runs]),
        "gain": gains["mean"],
        "gain_ci95": gains["ci95"],
        "gap_recovered": None if recovered is None else recovered["mean"],
        "seconds": seconds,
    }


def gain_cells(row: dict, baseline: bool) -> tuple[str, str]:
    """The "gain over alone [95% CI]" and "gap recovered" cells of a row."""
    if baseline:
        return "-", "-"
    ci = row["gain_ci95"]
    gain = f"{100 * row['gain']:+.2f}"
    if ci is not None:
        gain += f" [{100 * ci[0]:+.2f}, {100 * ci[1]:+.2f}]"
    recovered = row["gap_recovered"]
    return gain, "-" if recovered is None else f"{100 * recovered:.0f}%"


def flops_per_example(model) -> int:
    """Multiply-adds x 2 of a model's Conv2D and Dense layers for one example
    (what dominates a CNN's cost; activations, pooling and norms left out)."""
    import keras

    total = 0
    for layer in model._flatten_layers(include_self=False):
        if isinstance(layer, keras.layers.Conv2D):
            kh, kw, cin, cout = layer.kernel.shape
            _, h, w, _ = layer.output.shape
            total += 2 * h * w * kh * kw * cin * cout
        elif isinstance(layer, keras.layers.Dense):
            cin, cout = layer.kernel.shape
            total += 2 * cin * cout
    return int(total)


# This CPU's float32 peak as issue 15 states it: 2 cores x 32 flop/cycle (two
# 8-wide FMA units) x 2.45 GHz, its base clock; the cores run faster when they
# boost, so gflops_sentence also measures a NumPy matrix product beside it.
NOMINAL_PEAK_GFLOPS = 157.0


def matmul_gflops() -> float:
    """float32 GFLOP/s of a 2048^3 NumPy matrix product here, now (best of 3)."""
    import time

    import numpy as np

    a = np.random.default_rng(0).random((2048, 2048), np.float32)
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(10):
            a @ a
        best = min(best, time.perf_counter() - start)
    return 10 * 2 * 2048**3 / best / 1e9


def gflops_sentence(flops_per_example: int, gflops: float, matmul: float) -> str:
    """ "117 MFLOP per example, 208.4 GFLOP/s = 133% of the nominal ... peak, ..."."""
    return (
        f"{flops_per_example / 1e6:.0f} MFLOP per example, {gflops:.1f} GFLOP/s = "
        f"{100 * gflops / NOMINAL_PEAK_GFLOPS:.0f}% of the nominal "
        f"{NOMINAL_PEAK_GFLOPS:.0f} GFLOP/s peak, {100 * gflops / matmul:.0f}% of a "
        f"NumPy float32 matrix product here ({matmul:.1f} GFLOP/s)"
    )
