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
    from tf_distill import stats

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
