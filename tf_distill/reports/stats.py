"""The statistics of a comparison over seeds: std, paired gaps, their confidence
interval, and the verdict sentence the report and the sweep print."""

from __future__ import annotations

import math

import numpy as np


def sample_std(values):
    """Sample standard deviation (n - 1); None for a single value."""
    return float(np.std(values, ddof=1)) if len(values) > 1 else None


def paired_differences(runs, baselines, field="test_accuracy"):
    """`field` of `runs` minus that of the baseline with the same seed: mean, std,
    the 95% confidence interval of the mean (Student's t), the values."""
    baseline = {r["seed"]: r[field] for r in baselines}
    values = [r[field] - baseline[r["seed"]] for r in runs if r["seed"] in baseline]
    return mean_and_interval(values)


def gap_recovered(distilled, alone, teacher_accuracy: float, field="test_accuracy"):
    """Per seed, (distilled - alone) / (teacher - alone): the share of the
    teacher's lead over the student alone that distillation recovers (1: all of
    it; above 1: the student beats the teacher). None where the teacher is not
    better than that seed's student alone: then there is no gap to recover."""
    baseline = {r["seed"]: r[field] for r in alone}
    values = []
    for r in distilled:
        gap = teacher_accuracy - baseline[r["seed"]]
        if gap <= 0:
            return None
        values.append((r[field] - baseline[r["seed"]]) / gap)
    return mean_and_interval(values)


def mean_and_interval(values):
    """Mean, sample std, 95% confidence interval of the mean (Student's t), the
    values; std and interval None for one value."""
    mean = float(np.mean(values))
    std = sample_std(values)
    ci95 = None
    if std is not None:
        from scipy import stats

        half = stats.t.ppf(0.975, len(values) - 1) * std / math.sqrt(len(values))
        ci95 = [mean - half, mean + half]
    return {"mean": mean, "std": std, "ci95": ci95, "values": values}


def verdict(gains):
    """One sentence: is distillation's gain larger than the seed-to-seed noise?"""
    n = len(gains["values"])
    points = gains["mean"] * 100
    if gains["ci95"] is None:
        return (
            f"Distillation changed test accuracy by {points:+.2f} points on one "
            "seed; with one seed the noise is unknown (set config.num_seeds=3 or "
            "more)."
        )
    low, high = (100 * v for v in gains["ci95"])
    interval = f"95% CI [{low:+.2f}, {high:+.2f}] points over {n} seeds"
    if low > 0:
        return f"Distillation helps: {points:+.2f} points ({interval})."
    if high < 0:
        return f"Distillation hurts: {points:+.2f} points ({interval})."
    return (
        f"No gain beyond the noise: {points:+.2f} points, and the interval "
        f"includes 0 ({interval})."
    )


def plus_minus(summary, field, fmt):
    """`mean +- std` (or the value alone for one run) of a summarised field."""
    if field not in summary:
        return "-"
    text = format(summary[field], fmt)
    std = summary.get(f"{field}_std")
    return text if std is None else f"{text} ± {format(std, fmt)}"
