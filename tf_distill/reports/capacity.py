"""The capacity curve: students of several sizes, alone and distilled, from one teacher.

benchmarks/capacity.py measures it; this module names the students, summarises the
runs (the recipe chosen on validation, the paired gain and its 95% CI, the share of
the teacher's lead recovered), writes the table and the plot, and, for the report of
`--model=all`, finds a curve published for the run's data set and says where the
run's student sits on it.
"""

from __future__ import annotations

import json
import os

import numpy as np

from tf_distill.reports import plots, stats

# Curves measured by `benchmarks/capacity.py --publish`, one per data set.
CURVES_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "curves")
# Distillation "pays" at a size where the teacher leads the student alone by more
# than this and the gain's 95% CI lies above 0.
LEAD_THRESHOLD = 0.01
SCALABLE = ("mlp", "cnn", "convnet")
# config.dataset values that name no one data set: no curve is looked up for them.
GENERIC = ("idx", "image_folder", "tfrecord")


def params_of(arch: str, layers, splits) -> int:
    """Parameters of a built-in model of `arch` with `layers` on `splits`' images."""
    from tf_distill.models import architectures

    spec = architectures.ModelSpec(arch=arch, layers=tuple(layers))
    return architectures.build_for(spec, splits, name="probe").count_params()


def scaled_layers(layers, scale: float) -> tuple[int, ...]:
    """Every width times `scale`, rounded, at least 1."""
    return tuple(max(1, round(width * scale)) for width in layers)


def students(teacher, fractions, mlp_units, splits) -> list[dict]:
    """The students of the curve, smallest last: the teacher's own family with
    every width scaled by one factor, chosen (on a grid of 1/4 of the first
    width) so that the parameters come closest to 1/fraction of the teacher's
    on a log scale; then an MLP of each of `mlp_units`.

    Raises:
        ValueError: a teacher outside SCALABLE (a Keras Applications network has
            no widths to scale).
    """
    if teacher.arch not in SCALABLE:
        raise ValueError(
            f"capacity: the teacher's arch {teacher.arch!r} has no widths to scale; "
            f"use one of {', '.join(SCALABLE)}"
        )
    layers = tuple(teacher.layers)
    total = params_of(teacher.arch, layers, splits)
    grid = min(4 * layers[0], 128)
    candidates = {scaled_layers(layers, k / grid) for k in range(1, grid + 1)}
    sized = {c: params_of(teacher.arch, c, splits) for c in candidates}
    out = []
    for fraction in fractions:
        target = np.log(total / fraction)
        best = min(sized, key=lambda c: (abs(np.log(sized[c]) - target), c))
        out.append(_student(teacher.arch, best, sized[best], total))
    for units in mlp_units:
        out.append(_student("mlp", (units,), params_of("mlp", (units,), splits), total))
    return out


def _student(arch, layers, params, teacher_params):
    return {
        "name": f"{arch} {'/'.join(map(str, layers))}",
        "arch": arch,
        "layers": list(layers),
        "params": params,
        "fraction_of_teacher": params / teacher_params,
    }


def curve(config, teacher: dict, rows: list[dict], *, train_examples: int) -> dict:
    """The curve's JSON: per size, the student alone, the distilled recipe with
    the best mean validation accuracy, the paired gain and the share of the
    teacher's lead recovered; and what it was measured on."""
    teacher_accuracy = teacher["test_accuracy"]
    sizes = []
    for row in rows:
        alone = row["alone"]
        temperature, chosen = max(
            row["recipes"], key=lambda r: _mean(r[1], "validation_accuracy")
        )
        gains = stats.paired_differences(chosen, alone)
        recovered = stats.gap_recovered(chosen, alone, teacher_accuracy)
        lead = teacher_accuracy - _mean(alone, "test_accuracy")
        sizes.append(
            {
                **{k: row[k] for k in ("name", "arch", "layers", "params")},
                "fraction_of_teacher": row["fraction_of_teacher"],
                "alone": _accuracies(alone),
                "distilled": _accuracies(chosen),
                "temperature": temperature,
                "validation": {
                    f"T={t:g}": _mean(runs, "validation_accuracy")
                    for t, runs in row["recipes"]
                },
                "gain": gains["mean"],
                "gain_ci95": gains["ci95"],
                "gap_recovered": None if recovered is None else recovered["mean"],
                "teacher_lead": lead,
                "pays": _pays(lead, gains["ci95"]),
                "seconds": row["seconds"],
            }
        )
    return {
        "dataset": config.dataset,
        "config": config.name,
        "teacher": {
            "name": f"{config.teacher.arch} "
            + "/".join(map(str, config.teacher.layers)),
            "params": teacher["params"],
            "test_accuracy": teacher_accuracy,
            "epochs": config.teacher.epochs,
        },
        "train_examples": train_examples,
        "student_epochs": config.student.epochs,
        "alpha": config.distill.alpha,
        "seeds": len(rows[0]["alone"]) if rows else 0,
        "sizes": sizes,
    }


def _mean(runs, field):
    return float(np.mean([r[field] for r in runs]))


def _accuracies(runs):
    values = [r["test_accuracy"] for r in runs]
    return {
        "test_accuracy": float(np.mean(values)),
        "test_accuracy_std": stats.sample_std(values),
        "validation_accuracy": _mean(runs, "validation_accuracy"),
    }


def _pays(lead, ci95):
    """ "yes" / "no" / "no lead": whether the gain's CI is above 0 where the
    teacher leads by more than LEAD_THRESHOLD."""
    if lead <= LEAD_THRESHOLD:
        return "no lead"
    if ci95 is None:
        return "unknown (one seed)"
    if ci95[0] > 0:
        return "yes"
    return "hurts" if ci95[1] < 0 else "no"


def markdown(curve: dict) -> str:
    """The table: one row per student size."""
    t = curve["teacher"]
    lines = [
        f"# Capacity curve on {curve['dataset']} ({curve['config']}): teacher "
        f"{t['name']}, {t['params']:,} parameters, test accuracy "
        f"{t['test_accuracy']:.4f}; {curve['train_examples']:,} training images, "
        f"{curve['student_epochs']} epochs per student, {curve['seeds']} seeds\n",
        "| student | params (of teacher) | alone | distilled (T chosen on val.) | "
        "gain, points [95% CI] | lead recovered | teacher lead | pays |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for s in curve["sizes"]:
        ci = s["gain_ci95"]
        gain = f"{100 * s['gain']:+.2f}" + (
            "" if ci is None else f" [{100 * ci[0]:+.2f}, {100 * ci[1]:+.2f}]"
        )
        # A share of a lead within the noise means nothing: shown as "-".
        recovered = None if s["pays"] == "no lead" else s["gap_recovered"]
        lines.append(
            f"| {s['name']} | {s['params']:,} (1/{1 / s['fraction_of_teacher']:.0f}) "
            f"| {_cell(s['alone'])} | {_cell(s['distilled'])} (T={s['temperature']:g})"
            f" | {gain} | {'-' if recovered is None else f'{100 * recovered:.0f}%'} "
            f"| {100 * s['teacher_lead']:+.2f} | {s['pays']} |"
        )
    return "\n".join(lines) + "\n"


def _cell(accuracies):
    std = accuracies["test_accuracy_std"]
    text = f"{accuracies['test_accuracy']:.4f}"
    return text if std is None else f"{text} ± {std:.4f}"


def plot(curve: dict, path: str) -> None:
    """Test accuracy against parameters (log scale), alone and distilled (mean
    ± std over seeds), the teacher as a line."""
    plt = plots.pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    sizes = sorted(curve["sizes"], key=lambda s: s["params"])
    # One line per family (the teacher's scaled, an MLP), alone and distilled.
    for arch in dict.fromkeys(s["arch"] for s in sizes):
        family = [s for s in sizes if s["arch"] == arch]
        for kind, label, marker, color in (
            ("alone", "alone", "o", "tab:blue"),
            ("distilled", "distilled", "s", "tab:orange"),
        ):
            ax.errorbar(
                [s["params"] for s in family],
                [s[kind]["test_accuracy"] for s in family],
                yerr=[s[kind]["test_accuracy_std"] or 0.0 for s in family],
                marker=marker,
                linestyle="-" if arch == sizes[0]["arch"] else ":",
                color=color,
                capsize=3,
                label=f"{arch} student, {label}",
            )
    teacher = curve["teacher"]
    ax.axhline(
        teacher["test_accuracy"],
        color="gray",
        linestyle="--",
        label=f"teacher ({teacher['params']:,} params)",
    )
    ax.set_xscale("log")
    ax.set_xlabel("student parameters")
    ax.set_ylabel("test accuracy")
    ax.set_title(f"{curve['dataset']}: {curve['seeds']} seeds per point")
    ax.legend(loc="lower right")
    plots.save(fig, path)


def published_path(dataset: str) -> str:
    return os.path.join(CURVES_DIR, f"{dataset}.json")


def published(dataset: str) -> dict | None:
    """The curve published for `dataset`, or None."""
    path = published_path(dataset)
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def for_student(student: dict) -> str | None:
    """where_sentence for a student's metrics.json, when a curve was published
    for its config's data set; else None."""
    config = student.get("config") or {}
    dataset = config.get("dataset")
    if not dataset or dataset in GENERIC:
        return None
    curve = published(dataset)
    if curve is None:
        return None
    return where_sentence(curve, student["params"], config["student"]["arch"])


def where_sentence(curve: dict, params: int, arch: str | None = None) -> str:
    """Where a student of `params` parameters sits on `curve`, in words: the
    measured sizes of its family (`arch`, when the curve has it) on either
    side, or the nearest, and what distillation did there."""
    sizes = sorted(curve["sizes"], key=lambda s: s["params"])
    if any(s["arch"] == arch for s in sizes):
        sizes = [s for s in sizes if s["arch"] == arch]
    below = [s for s in sizes if s["params"] <= params]
    above = [s for s in sizes if s["params"] > params]
    near = ([below[-1]] if below else []) + ([above[0]] if above else [])
    t = curve["teacher"]
    seen = "; ".join(
        f"{s['name']} ({s['params']:,} params): alone "
        f"{s['alone']['test_accuracy']:.4f}, distilled "
        f"{s['distilled']['test_accuracy']:.4f} ({100 * s['gain']:+.2f} points, "
        f"pays: {s['pays']})"
        for s in near
    )
    return (
        f"On the capacity curve measured for {curve['dataset']} "
        f"(benchmarks/capacity.py: teacher {t['name']} at {t['test_accuracy']:.4f}, "
        f"{curve['train_examples']:,} training images, {curve['seeds']} seeds), "
        f"a student of {params:,} parameters sits "
        + ("between " if len(near) == 2 else "nearest ")
        + seen
        + "."
    )
