"""What `--model=all` and `--model=sweep` conclude, as JSON, Markdown and a figure.

`--model=all`: report.json, report.md, accuracy.png: teacher, student alone and
distilled student side by side (over config.num_seeds seeds for the students),
with the gain "distilled minus alone" per seed and whether it exceeds the noise.
`--model=sweep`: sweep.json, sweep.md, sweep.png: that gain over a temperature x
alpha grid.
"""

from __future__ import annotations

import math
import os

import numpy as np

from tf_distill import outputs

LABELS = {
    "teacher": "teacher",
    "student": "student alone",
    "distilling": "distilled student",
}
# Measured per run, summarised as mean (and std over seeds) in report.json.
PER_RUN = (
    "test_accuracy",  # of the weights the model keeps (see "weights")
    "test_accuracy_best_validation",
    "test_accuracy_last_epoch",
    "test_loss",
    "test_agreement_with_teacher",
    "best_epoch",
    "epochs_run",
    "train_seconds",
    "examples_per_second",
    "inference_examples_per_second",
)
# The same for every seed: taken from the run of config.seed.
PER_MODEL = ("params", "saved_model_bytes", "weights", "inference_batch_size")


def write(workdir: str, results: dict[str, dict], config) -> dict:
    """Writes report.json, report.md and accuracy.png into `workdir`; returns the
    report. `results` holds metrics.json of every model of the run, keyed by its
    folder name (`student`, `student_seed43`, ...)."""
    runs = {base: _runs_of(results, base) for base in LABELS}
    models = {base: _summary(runs[base]) for base in LABELS}
    gains = _paired_differences(runs["distilling"], runs["student"])
    first = runs["teacher"][0]
    report = {
        "config": config.name,
        "seeds": [r["seed"] for r in runs["student"]],
        "data": first["data"],
        "models": models,
        "distilled_minus_student_accuracy": gains["mean"],
        "distilled_minus_student_accuracy_std": gains["std"],
        "distilled_minus_student_accuracy_ci95": gains["ci95"],
        "distilled_minus_student_accuracy_per_seed": gains["values"],
        "verdict": _verdict(gains),
    }
    outputs.write_json(os.path.join(workdir, "report.json"), report)
    outputs.write_text(os.path.join(workdir, "report.md"), _markdown(report))
    _plot(os.path.join(workdir, "accuracy.png"), runs, gains, config.name)
    return report


def _runs_of(results, base):
    """The runs of one model over the seeds, config.seed's first."""
    return [
        m
        for name, m in results.items()
        if name == base or name.startswith(f"{base}_seed")
    ]


def _summary(runs):
    out = {"n": len(runs), "seeds": [r["seed"] for r in runs]}
    for field in PER_MODEL:
        out[field] = runs[0].get(field)
    for field in PER_RUN:
        values = [r.get(field) for r in runs]
        if any(v is None for v in values):
            continue  # e.g. agreement without a teacher, best_epoch of none
        out[field] = float(np.mean(values))
        out[f"{field}_std"] = _std(values)
    out["runs"] = [{k: v for k, v in r.items() if k != "history"} for r in runs]
    return out


def _std(values):
    """Sample standard deviation (n - 1); None for a single value."""
    return float(np.std(values, ddof=1)) if len(values) > 1 else None


def _paired_differences(runs, baselines, field="test_accuracy"):
    """`field` of `runs` minus that of the baseline with the same seed: mean, std,
    the 95% confidence interval of the mean (Student's t), the values."""
    baseline = {r["seed"]: r[field] for r in baselines}
    values = [r[field] - baseline[r["seed"]] for r in runs if r["seed"] in baseline]
    mean = float(np.mean(values))
    std = _std(values)
    ci95 = None
    if std is not None:
        from scipy import stats

        half = stats.t.ppf(0.975, len(values) - 1) * std / math.sqrt(len(values))
        ci95 = [mean - half, mean + half]
    return {"mean": mean, "std": std, "ci95": ci95, "values": values}


def _verdict(gains):
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


def _pm(summary, field, fmt):
    """`mean +- std` (or the value alone for one run) of a summarised field."""
    if field not in summary:
        return "-"
    text = format(summary[field], fmt)
    std = summary.get(f"{field}_std")
    return text if std is None else f"{text} ± {format(std, fmt)}"


def _markdown(report):
    columns = (
        ("test acc.", "test_accuracy", ".4f"),
        ("best-val. weights", "test_accuracy_best_validation", ".4f"),
        ("last epoch", "test_accuracy_last_epoch", ".4f"),
        ("test loss", "test_loss", ".4f"),
        ("agrees with teacher", "test_agreement_with_teacher", ".4f"),
        ("epochs", "epochs_run", ".0f"),
        ("train s", "train_seconds", ".1f"),
        ("train ex/s", "examples_per_second", ",.0f"),
        ("inference ex/s", "inference_examples_per_second", ",.0f"),
    )
    header = ["model", *(c[0] for c in columns), "params", "SavedModel KiB"]
    rows = ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    for name, label in LABELS.items():
        m = report["models"][name]
        size = m["saved_model_bytes"]
        cells = [
            label,
            *(_pm(m, field, fmt) for _, field, fmt in columns),
            f"{m['params']:,}",
            "-" if size is None else f"{size / 1024:,.0f}",
        ]
        rows.append("| " + " | ".join(cells) + " |")
    models = report["models"]
    test_size = report["data"].get("test")
    per_seed = ", ".join(
        f"{100 * v:+.2f}" for v in report["distilled_minus_student_accuracy_per_seed"]
    )
    return (
        f"# Distillation report: {report['config']}\n\n"
        f"Test accuracy on {test_size:,} test examples (one example = "
        f"{100 / test_size:.2f} points). Students: {models['student']['n']} seed(s) "
        f"({', '.join(str(s) for s in report['seeds'])}), mean ± sample std; the "
        f'teacher: one run. "test acc." is of the weights each model keeps '
        f"({models['student']['weights'].replace('_', ' ')}); the next two columns "
        "are the weights of the epoch best on validation and of the last epoch. "
        "Inference in batches of "
        f"{models['student']['inference_batch_size']} on this machine.\n\n"
        + "\n".join(rows)
        + "\n\nDistilled student minus student alone, same seed: "
        f"{report['distilled_minus_student_accuracy'] * 100:+.2f} points "
        f"(per seed: {per_seed}).\n\n**{report['verdict']}**\n"
    )


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    return plt


def _plot(path, runs, gains, title):
    plt = _pyplot()
    fig, (curves, gap) = plt.subplots(
        1, 2, figsize=(11, 4.5), dpi=100, gridspec_kw={"width_ratios": [2.2, 1]}
    )
    for (name, label), color in zip(LABELS.items(), ("C0", "C1", "C2"), strict=True):
        for i, run in enumerate(runs[name]):
            curve = run["history"]["val_accuracy"]
            curves.plot(
                range(1, len(curve) + 1),
                curve,
                color=color,
                alpha=1.0 if i == 0 else 0.35,
                linewidth=1.8 if i == 0 else 1.0,
                label=label if i == 0 else None,
            )
    from matplotlib.ticker import MaxNLocator

    curves.xaxis.set_major_locator(MaxNLocator(integer=True))
    curves.set_xlabel("epoch")
    curves.set_ylabel("validation accuracy")
    curves.set_title(f"{title}: validation accuracy (faint: other seeds)")
    curves.grid(alpha=0.3)
    curves.legend(loc="lower right")

    points = [100 * v for v in gains["values"]]
    gap.axhline(0.0, color="grey", linewidth=1)
    gap.scatter(range(1, len(points) + 1), points, color="C2", zorder=3, label="seed")
    mean = 100 * gains["mean"]
    if gains["ci95"] is not None:
        low, high = (100 * v for v in gains["ci95"])
        gap.axhspan(low, high, color="C2", alpha=0.15, label="95% CI of the mean")
    gap.axhline(mean, color="C2", linestyle="--", label=f"mean {mean:+.2f}")
    gap.set_xticks(
        range(1, len(points) + 1), [str(r["seed"]) for r in runs["distilling"]]
    )
    gap.set_xlabel("seed")
    gap.set_ylabel("test accuracy points")
    gap.set_title("distilled minus student alone")
    gap.grid(alpha=0.3)
    gap.legend(loc="best", fontsize="small")
    _save(fig, path)


def _save(fig, path):
    fig.tight_layout()
    with outputs.replacing_file(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png")
    _pyplot().close(fig)


def write_sweep(
    workdir: str,
    *,
    students: list[dict],
    cells: dict[tuple[float, float], list[dict]],
    config,
    teacher_accuracy: float,
) -> dict:
    """Writes sweep.json, sweep.md and sweep.png: each (temperature, alpha) cell's
    distilled test accuracy, and its gain over the student alone of the same
    seeds. `students` and each cell's list hold the metrics of one run per seed.
    """
    summaries = []
    for (temperature, alpha), runs in cells.items():
        gains = _paired_differences(runs, students)
        accuracy = [r["test_accuracy"] for r in runs]
        summaries.append(
            {
                "temperature": float(temperature),
                "alpha": float(alpha),
                "test_accuracy": float(np.mean(accuracy)),
                "test_accuracy_std": _std(accuracy),
                "gain": gains["mean"],
                "gain_std": gains["std"],
                "gain_ci95": gains["ci95"],
                "runs": len(runs),
            }
        )
    cells = summaries
    alone = [r["test_accuracy"] for r in students]
    sweep = {
        "config": config.name,
        "seeds": [r["seed"] for r in students],
        "teacher_test_accuracy": teacher_accuracy,
        "student_alone_test_accuracy": float(np.mean(alone)),
        "student_alone_test_accuracy_std": _std(alone),
        "cells": cells,
        "best": max(cells, key=lambda c: c["test_accuracy"]),
    }
    outputs.write_json(os.path.join(workdir, "sweep.json"), sweep)
    outputs.write_text(os.path.join(workdir, "sweep.md"), _sweep_markdown(sweep))
    _sweep_plot(os.path.join(workdir, "sweep.png"), sweep, config)
    return sweep


def _sweep_markdown(sweep):
    alphas = sorted({c["alpha"] for c in sweep["cells"]})
    rows = [
        "| T \\ alpha | " + " | ".join(f"{a:g}" for a in alphas) + " |",
        "|---" * (len(alphas) + 1) + "|",
    ]
    for t in sorted({c["temperature"] for c in sweep["cells"]}):
        cells = {c["alpha"]: c for c in sweep["cells"] if c["temperature"] == t}
        rows.append(
            f"| {t:g} | " + " | ".join(_sweep_cell(cells[a]) for a in alphas) + " |"
        )
    alone_std = sweep["student_alone_test_accuracy_std"]
    best = sweep["best"]
    n = len(sweep["seeds"])
    noise = (
        "one seed: the seed-to-seed noise is unknown"
        if alone_std is None
        else f"the student alone varies by ± {100 * alone_std:.2f} points across seeds"
    )
    return (
        f"# Temperature x alpha sweep: {sweep['config']}\n\n"
        f"Distilled test accuracy (mean over {n} seed(s)), and in brackets its "
        "gain in points over the student alone with the same seeds (± the "
        "gain's std over seeds). alpha weighs the hard (label) loss.\n\n"
        + "\n".join(rows)
        + f"\n\nTeacher {sweep['teacher_test_accuracy']:.4f}; student alone "
        f"{sweep['student_alone_test_accuracy']:.4f} ({noise}). Best cell: "
        f"T={best['temperature']:g}, alpha={best['alpha']:g}, "
        f"{best['test_accuracy']:.4f} ({100 * best['gain']:+.2f} points).\n"
    )


def _sweep_cell(cell):
    """`accuracy (gain)`, or `accuracy (gain ± std of the gain)` over seeds."""
    gain = f"{100 * cell['gain']:+.2f}"
    if cell["gain_std"] is not None:
        gain += f" ± {100 * cell['gain_std']:.2f}"
    return f"{cell['test_accuracy']:.4f} ({gain})"


def _sweep_plot(path, sweep, config):
    plt = _pyplot()
    temperatures = [float(t) for t in config.sweep.temperatures]
    alphas = [float(a) for a in config.sweep.alphas]
    gain = np.array(
        [
            [
                next(
                    100 * c["gain"]
                    for c in sweep["cells"]
                    if c["temperature"] == t and c["alpha"] == a
                )
                for a in alphas
            ]
            for t in temperatures
        ]
    )
    limit = max(float(np.max(np.abs(gain))), 0.1)
    fig, ax = plt.subplots(
        figsize=(1.6 * len(alphas) + 3, 0.8 * len(temperatures) + 2), dpi=100
    )
    image = ax.imshow(gain, cmap="RdBu", vmin=-limit, vmax=limit, aspect="auto")
    for i in range(len(temperatures)):
        for j in range(len(alphas)):
            dark = abs(gain[i, j]) > 0.6 * limit  # white text on dark cells
            ax.text(
                j,
                i,
                f"{gain[i, j]:+.2f}",
                ha="center",
                va="center",
                color="white" if dark else "black",
            )
    ax.set_xticks(range(len(alphas)), [f"{a:g}" for a in alphas])
    ax.set_yticks(range(len(temperatures)), [f"{t:g}" for t in temperatures])
    ax.set_xlabel("alpha (weight of the hard loss)")
    ax.set_ylabel("temperature T")
    ax.set_title(f"{sweep['config']}: distilled minus student alone (points)")
    fig.colorbar(image, ax=ax, label="test accuracy points")
    _save(fig, path)
