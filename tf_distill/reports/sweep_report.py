"""What `--model=sweep` concludes: sweep.json, sweep.md, sweep.png.

Each (temperature, alpha) cell's distilled test accuracy, and its gain over the
student alone of the same seeds, as a table and a heat map.
"""

from __future__ import annotations

import numpy as np

from tf_distill.outputs import files
from tf_distill.outputs.rundir import RunDir
from tf_distill.reports import plots, stats


def write(
    run_dir: RunDir,
    *,
    students: list[dict],
    cells: dict[tuple[float, float], list[dict]],
    title: str,
    teacher_accuracy: float,
) -> dict:
    """Writes sweep.json, sweep.md and sweep.png: each (temperature, alpha) cell's
    distilled test accuracy, and its gain over the student alone of the same
    seeds. `students` and each cell's list hold the metrics of one run per seed.
    """
    summaries = []
    for (temperature, alpha), runs in cells.items():
        gains = stats.paired_differences(runs, students)
        accuracy = [r["test_accuracy"] for r in runs]
        summaries.append(
            {
                "temperature": float(temperature),
                "alpha": float(alpha),
                "validation_accuracy": float(
                    np.mean([r["validation_accuracy"] for r in runs])
                ),
                "test_accuracy": float(np.mean(accuracy)),
                "test_accuracy_std": stats.sample_std(accuracy),
                "gain": gains["mean"],
                "gain_std": gains["std"],
                "gain_ci95": gains["ci95"],
                "runs": len(runs),
            }
        )
    cells = summaries
    alone = [r["test_accuracy"] for r in students]
    sweep = {
        "config": title,
        "seeds": [r["seed"] for r in students],
        "teacher_test_accuracy": teacher_accuracy,
        "student_alone_test_accuracy": float(np.mean(alone)),
        "student_alone_test_accuracy_std": stats.sample_std(alone),
        "cells": cells,
        # Chosen on the validation split: the test split only reports.
        "chosen": max(cells, key=lambda c: c["validation_accuracy"]),
    }
    chosen = sweep["chosen"]
    sweep["chosen_flags"] = (
        f"--config.distill.temperature={chosen['temperature']:g} "
        f"--config.distill.alpha={chosen['alpha']:g}"
    )
    files.write_json(run_dir.file("sweep.json"), sweep)
    files.write_text(run_dir.file("sweep.md"), _markdown(sweep))
    _plot(run_dir.file("sweep.png"), sweep)
    return sweep


def _markdown(sweep):
    alphas = sorted({c["alpha"] for c in sweep["cells"]})
    rows = [
        "| T \\ alpha | " + " | ".join(f"{a:g}" for a in alphas) + " |",
        "|---" * (len(alphas) + 1) + "|",
    ]
    for t in sorted({c["temperature"] for c in sweep["cells"]}):
        cells = {c["alpha"]: c for c in sweep["cells"] if c["temperature"] == t}
        rows.append(f"| {t:g} | " + " | ".join(_cell(cells[a]) for a in alphas) + " |")
    alone_std = sweep["student_alone_test_accuracy_std"]
    chosen = sweep["chosen"]
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
        f"{sweep['student_alone_test_accuracy']:.4f} ({noise}).\n\n"
        "Chosen on the validation split (the highest mean validation accuracy of "
        f"the kept weights, {chosen['validation_accuracy']:.4f}): "
        f"T={chosen['temperature']:g}, alpha={chosen['alpha']:g}, test accuracy "
        f"{chosen['test_accuracy']:.4f} ({100 * chosen['gain']:+.2f} points). To "
        f"run it: `python main.py --model=all {sweep['chosen_flags']}` with this "
        "config.\n"
    )


def _cell(cell):
    """`accuracy (gain)`, or `accuracy (gain ± std of the gain)` over seeds."""
    gain = f"{100 * cell['gain']:+.2f}"
    if cell["gain_std"] is not None:
        gain += f" ± {100 * cell['gain_std']:.2f}"
    return f"{cell['test_accuracy']:.4f} ({gain})"


def _plot(path, sweep):
    plt = plots.pyplot()
    # In the order the grid was given (the cells' order), each value once.
    temperatures = list(dict.fromkeys(c["temperature"] for c in sweep["cells"]))
    alphas = list(dict.fromkeys(c["alpha"] for c in sweep["cells"]))
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
    plots.save(fig, path)
