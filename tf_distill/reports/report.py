"""What `--model=all` concludes: report.json, report.md, accuracy.png.

Teacher, student alone and distilled student side by side (over config.num_seeds
seeds for the students), with the gain "distilled minus alone" per seed and whether
it exceeds the noise. The sweep's report is sweep_report.py.
"""

from __future__ import annotations

import numpy as np

from tf_distill.outputs import files
from tf_distill.outputs.rundir import (
    ModelKey,
    RunDir,
    generation_base,
    generation_of,
    runs_of,
)
from tf_distill.reports import capacity, plots, stats

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
# The method's settings (methods.*.describe()) named in the distilled row.
METHOD_KEYS = ("method", "temperature", "alpha", "beta", "warmup_epochs")
# How the teacher's logits reached the student (teacher/cache.py, TeacherSignal).
TEACHER_PATH = {
    "cached": "teacher's logits cached",
    "cached_views": "teacher on {cached_views} cached views per image",
    "per_step": "teacher in every step",
}
# The same for every seed: taken from the run of config.seed.
PER_MODEL = ("params", "saved_model_bytes", "weights", "inference_batch_size")


def write(run_dir: RunDir, results: dict[str, dict], *, title: str) -> dict:
    """Writes report.json, report.md and accuracy.png; returns the report.

    Args:
        results: metrics.json of every model of the run, keyed by its folder name
            (`student`, `student_seed43`, ...).
        title: the config's name, heading the report.
    """
    _check_one_config(results)
    labels = _labels(results)
    runs = {base: runs_of(results, base) for base in labels}
    models = {base: _summary(runs[base]) for base in labels}
    gains = stats.paired_differences(runs["distilling"], runs["student"])
    first = runs["teacher"][0]
    report = {
        "config": title,
        "seeds": [r["seed"] for r in runs["student"]],
        "data": first["data"],
        "models": models,
        "distilled_minus_student_accuracy": gains["mean"],
        "distilled_minus_student_accuracy_std": gains["std"],
        "distilled_minus_student_accuracy_ci95": gains["ci95"],
        "distilled_minus_student_accuracy_per_seed": gains["values"],
        "verdict": stats.verdict(gains),
        # How the students were distilled (methods.*.describe()), from the first.
        "method": {
            k: runs["distilling"][0][k]
            for k in (*METHOD_KEYS, "teacher", "cached_views", "cache_top_k")
            if k in runs["distilling"][0]
        },
    }
    recovered = stats.gap_recovered(
        runs["distilling"], runs["student"], first["test_accuracy"]
    )
    report["gap_recovered"] = None if recovered is None else recovered["mean"]
    report["gap_recovered_ci95"] = None if recovered is None else recovered["ci95"]
    report["gap_recovered_per_seed"] = (
        None if recovered is None else recovered["values"]
    )
    # Later generations (config.distill.generations), each against the alone.
    report["generations"] = {
        base: stats.paired_differences(runs[base], runs["student"])
        for base in labels
        if base not in LABELS
    }
    # Where the student sits on a capacity curve measured for this data set.
    report["capacity"] = capacity.for_student(runs["student"][0])
    files.write_json(run_dir.file("report.json"), report)
    files.write_text(run_dir.file("report.md"), _markdown(report))
    _plot(run_dir.file("accuracy.png"), runs, gains, title)
    return report


def _labels(results) -> dict[str, str]:
    """LABELS, then a row per later generation of distilled students."""
    generations = sorted(
        {
            generation_of(ModelKey.parse(name).base)
            for name in results
            if (generation_of(ModelKey.parse(name).base) or 1) > 1
        }
    )
    extra = {
        generation_base(g): f"distilled student, generation {g}" for g in generations
    }
    return {**LABELS, **extra}


def _check_one_config(results):
    """A report compares models of one run: refuse models of different configs."""
    by_fingerprint = {}
    for name, metrics in results.items():
        fingerprint = metrics.get("config_fingerprint")
        if fingerprint is not None:
            by_fingerprint.setdefault(fingerprint, []).append(name)
    if len(by_fingerprint) > 1:
        groups = "; ".join(
            f"{', '.join(names)} (config {fp})" for fp, names in by_fingerprint.items()
        )
        raise ValueError(
            f"Not one run: the models come from different configs: {groups}"
        )


def _summary(runs):
    out = {"n": len(runs), "seeds": [r["seed"] for r in runs]}
    for field in PER_MODEL:
        out[field] = runs[0].get(field)
    for field in PER_RUN:
        values = [r.get(field) for r in runs]
        if any(v is None for v in values):
            continue  # e.g. agreement without a teacher, best_epoch of none
        out[field] = float(np.mean(values))
        out[f"{field}_std"] = stats.sample_std(values)
    out["runs"] = [{k: v for k, v in r.items() if k != "history"} for r in runs]
    return out


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
    for name in report["models"]:
        m, label = report["models"][name], LABELS.get(name)
        if label is None:
            gain = report["generations"][name]
            label = f"distilled student, generation {generation_of(name)}"
            label += f" ({100 * gain['mean']:+.2f} points over alone)"
        size = m["saved_model_bytes"]
        if name == "distilling" and report.get("method"):
            label += f" ({_method_text(report['method'])})"
        members = m["runs"][0].get("ensemble")
        if name == "teacher" and members:
            accuracies = ", ".join(f"{x['test_accuracy']:.4f}" for x in members)
            label += f" (ensemble of {len(members)}: {accuracies})"
        cells = [
            label,
            *(stats.plus_minus(m, field, fmt) for _, field, fmt in columns),
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
        f"(per seed: {per_seed}). {gap_sentence(report)}\n\n"
        f"**{report['verdict']}**\n"
        + ("" if not report.get("capacity") else f"\n{report['capacity']}\n")
    )


def _method_text(method: dict) -> str:
    """{"method": "kd", "temperature": 4.0, "alpha": 0.5} -> "kd, T=4, alpha=0.5"."""
    names = {"temperature": "T"}
    parts = [method.get("method", "?")]
    for key in METHOD_KEYS[1:]:
        if key in method:
            parts.append(f"{names.get(key, key)}={method[key]:g}")
    if method.get("teacher") in TEACHER_PATH:
        parts.append(TEACHER_PATH[method["teacher"]].format(**method))
    if method.get("cache_top_k"):
        parts.append(f"top {method['cache_top_k']} logits kept")
    return ", ".join(parts)


def gap_sentence(report):
    """The share of the teacher's lead that distillation recovered, in words."""
    if report["gap_recovered"] is None:
        return (
            "The teacher is not better than the student alone (for at least one "
            "seed): there is no gap for distillation to recover."
        )
    text = (
        f"Share of the teacher's lead recovered: {100 * report['gap_recovered']:.0f}%"
    )
    if report["gap_recovered_ci95"] is not None:
        low, high = (100 * v for v in report["gap_recovered_ci95"])
        text += f" (95% CI [{low:.0f}%, {high:.0f}%])"
    return text + "."


def _plot(path, runs, gains, title):
    plt = plots.pyplot()
    fig, (curves, gap) = plt.subplots(
        1, 2, figsize=(11, 4.5), dpi=100, gridspec_kw={"width_ratios": [2.2, 1]}
    )
    for (name, label), color in zip(LABELS.items(), ("C0", "C1", "C2"), strict=True):
        for i, run in enumerate(runs[name]):
            if "history" not in run:
                continue  # an ensemble of saved teachers: no training curve
            curve = run["history"]["val_accuracy"]  # None: not validated
            epochs = [e for e, v in enumerate(curve, 1) if v is not None]
            curves.plot(
                epochs,
                [curve[e - 1] for e in epochs],
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
    plots.save(fig, path)
