"""The diffusion run's report: quality against the number of sampling steps, for
the teacher's plain DDIM and for the distilled students, beside the real-vs-real
floor. Writes report.json, report.md and quality.png (FID per step count);
`summary` is what the terminal shows when a mode ends."""

from __future__ import annotations

import os

from tf_distill.outputs import files
from tf_distill.outputs.rundir import TEACHER, RunDir, round_name
from tf_distill.reports import plots, stats
from tf_distill.tasks.diffusion.trainer import STUDENT

FILES = ("report.json", "report.md", "quality.png")
MEASURES = ("fid", "kid", "coverage", "confidence", "nn_distance")


def build(results: dict[str, dict]) -> dict:
    """The report's content from the modes' results (teacher, student, rounds)."""
    ddim = results[STUDENT]["quality"]
    teacher_steps = results[TEACHER]["sampling_steps"]
    rows = []
    for steps in sorted(int(n) for n in ddim):
        distilled = results.get(round_name(steps), {}).get("quality")
        rows.append(
            {
                "steps": steps,
                "ddim": ddim[str(steps)],
                "distilled": distilled,
                "against_ddim": against_ddim(
                    distilled, ddim[str(steps)], ddim[str(teacher_steps)]
                ),
            }
        )
    report = {
        "teacher_steps": teacher_steps,
        "floor": results[STUDENT]["floor"],
        "rows": rows,
        "comparisons": _comparisons(rows, teacher_steps),
    }
    return report


def against_ddim(distilled, ddim, teacher) -> dict | None:
    """A distilled sampler's FID minus the teacher's DDIM in as many steps, per
    noise seed (paired: both drew from the same noise), with its mean and 95%
    interval; and `closed`, the share of that DDIM's FID gap to the teacher's
    own sampler the distilled one closes (1: as good as the teacher). None
    without any of the three or their per-seed values (runs before they were
    kept).
    """
    if any(q is None or "values" not in q["fid"] for q in (distilled, ddim, teacher)):
        return None
    pairs = zip(distilled["fid"]["values"], ddim["fid"]["values"], strict=True)
    out = stats.mean_and_interval([a - b for a, b in pairs])
    gap = ddim["fid"]["mean"] - teacher["fid"]["mean"]
    closed = (ddim["fid"]["mean"] - distilled["fid"]["mean"]) / gap if gap > 0 else None
    return {**out, "closed": closed, "teacher_fid": teacher["fid"]["mean"]}


def round_lines(steps: int, distilled, ddim, teacher) -> list[str]:
    """What the terminal says of a distilled k-step sampler: its FID over the
    noise seeds, and against the teacher's DDIM in the same k steps."""
    seeds = distilled["seeds"]
    lines = [
        f"{steps}-step sampler: FID {_cell(distilled, 'fid', 2)} over {seeds} "
        "noise seeds"
    ]
    compared = against_ddim(distilled, ddim, teacher)
    if compared is None:
        return lines
    interval = (
        ""
        if compared["ci95"] is None
        else " (95% CI [{:+.2f}, {:+.2f}], paired on the noise)".format(
            *compared["ci95"]
        )
    )
    closed = (
        ""
        if compared["closed"] is None
        else f"; {100 * compared['closed']:.0f}% of its gap to the teacher's sampler "
        f"(FID {compared['teacher_fid']:.2f}) closed"
    )
    lines.append(
        f"against the teacher's DDIM in {steps} steps (FID {_cell(ddim, 'fid', 2)}): "
        f"{compared['mean']:+.2f} FID{interval}{closed}"
    )
    return lines


def _teacher_row(report):
    return next(r for r in report["rows"] if r["steps"] == report["teacher_steps"])


def _fid(row, sampler):
    value = row[sampler]
    return None if value is None else value["fid"]["mean"]


def _comparisons(rows, teacher_steps):
    """Ratios the paper's claims are about (None where a count was not run)."""
    by_steps = {r["steps"]: r for r in rows}
    teacher_fid = _fid(by_steps[teacher_steps], "ddim")
    out = {"teacher_fid": teacher_fid}
    for steps, row in by_steps.items():
        distilled = _fid(row, "distilled")
        if distilled is None:
            continue
        out[f"distilled_{steps}_over_teacher"] = distilled / teacher_fid
        out[f"ddim_{steps}_over_distilled_{steps}"] = _fid(row, "ddim") / distilled
        coverage = row["distilled"]["coverage"]["mean"]
        teacher_coverage = by_steps[teacher_steps]["ddim"]["coverage"]["mean"]
        out[f"distilled_{steps}_coverage_minus_teacher"] = coverage - teacher_coverage
    return out


def write(run_dir: RunDir, results: dict[str, dict], *, title: str | None) -> dict:
    report = build(results)
    files.write_json(run_dir.file("report.json"), report)
    files.write_text(run_dir.file("report.md"), markdown(report, title))
    _plot(run_dir.file("quality.png"), report, title)
    return report


def _cell(summary, name, digits):
    if summary is None:
        return "-"
    value = summary[name]
    std = "" if value["std"] is None else f" ± {value['std']:.{digits}f}"
    return f"{value['mean']:.{digits}f}{std}"


def markdown(report: dict, title: str | None) -> str:
    floor = report["floor"]
    lines = [
        f"# Progressive distillation: {title or 'diffusion'}\n",
        f"Teacher: {report['teacher_steps']} DDIM steps. Each measure over "
        f"{report['rows'][0]['ddim']['seeds']} noise seeds (mean ± std), the same "
        "noise for every sampler. Real-vs-real floor (held-out images, "
        f"{floor['count']}): FID {floor['fid']:.2f}, KID {floor['kid']:.4f}, "
        f"coverage {floor['coverage']:.1f}%, confidence {floor['confidence']:.3f}, "
        f"nearest-training-image distance {floor['nn_distance']:.2f}.\n",
        "| steps | FID DDIM | FID distilled | KID DDIM | KID distilled "
        "| coverage % DDIM | coverage % distilled | confidence DDIM "
        "| confidence distilled | NN distance DDIM | NN distance distilled |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in report["rows"]:
        cells = [str(r["steps"])]
        for name, digits in zip(MEASURES, (2, 4, 1, 3, 2), strict=True):
            cells += [
                _cell(r["ddim"], name, digits),
                _cell(r["distilled"], name, digits),
            ]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("\nAgainst the teacher's DDIM in as many steps:\n")
    for r in report["rows"]:
        if r["distilled"] is not None:
            *_, compared = round_lines(
                r["steps"], r["distilled"], r["ddim"], _teacher_row(report)["ddim"]
            )
            lines.append(f"- {compared}")
    lines.append("\nRatios (FID):\n")
    for key, value in report["comparisons"].items():
        lines.append(f"- {key}: {value:.3f}")
    lines.append(
        "\nSample grids: student/samples_steps<N>.png (DDIM of the teacher), "
        "distilling_steps<N>/samples.png (distilled), teacher/samples.png.\n"
    )
    return "\n".join(lines)


def _plot(path, report, title):
    plt = plots.pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for sampler, label in (("ddim", "DDIM of the teacher"), ("distilled", "distilled")):
        rows = [r for r in report["rows"] if r[sampler] is not None]
        ax.errorbar(
            [r["steps"] for r in rows],
            [r[sampler]["fid"]["mean"] for r in rows],
            yerr=[r[sampler]["fid"]["std"] or 0.0 for r in rows],
            marker="o",
            capsize=3,
            label=label,
        )
    ax.axhline(
        report["floor"]["fid"], color="grey", linestyle="--", label="real vs real"
    )
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("sampling steps")
    ax.set_ylabel("FID (classifier features)")
    ax.set_title(title or "progressive distillation")
    ax.legend()
    plots.save(fig, path)


def summary(mode: str, results: dict[str, dict], run_dir: RunDir) -> list[str]:
    """The lines the terminal shows of a diffusion mode's results."""
    lines = []
    ddim = _ddim_quality(results, run_dir)
    for name, metrics in results.items():
        quality = metrics.get("quality", {})
        if "fid" in quality:  # a distilled round
            steps = metrics["sampling_steps"]
            first, *compared = round_lines(
                steps,
                quality,
                ddim.get(str(steps)),
                ddim.get(str(ddim.get("teacher_steps"))),
            )
            lines.append(f"  {name}: {first}, model {run_dir.model(name).keras}")
            lines += [f"    {line}" for line in compared]
        elif name == STUDENT:
            fids = ", ".join(f"{n}: {q['fid']['mean']:.2f}" for n, q in quality.items())
            lines.append(f"  teacher's DDIM FID by steps: {fids}")
        elif name == TEACHER:
            lines.append(f"  teacher: model {run_dir.model(name).keras}")
        shipped = metrics.get("saved_model")
        if isinstance(shipped, str):
            lines.append(f"  sampler for serving: {shipped}")
        elif isinstance(shipped, dict):  # --model=evaluate
            keras_fid = (metrics.get("keras") or {}).get("fid", {}).get("mean")
            lines.append(
                f"  {name}: the SavedModel's FID {shipped['fid']['mean']:.2f} "
                f"(the Keras model's {keras_fid:.2f}), in "
                f"{run_dir.model(name).evaluation}"
                if keras_fid is not None
                else f"  {name}: the SavedModel's FID {shipped['fid']['mean']:.2f}"
            )
    if mode == "all":
        lines.append(
            f"  report: {run_dir.file('report.md')}, {run_dir.file('quality.png')}"
        )
    return lines


def _ddim_quality(results, run_dir) -> dict:
    """The teacher's DDIM quality by step count (and the teacher's own count,
    "teacher_steps"), from this mode's results or the run's earlier ones."""
    out = {}
    for name, key in ((STUDENT, "quality"), (TEACHER, "sampling_steps")):
        metrics = results.get(name)
        path = run_dir.model(name).metrics
        if metrics is None and os.path.isfile(path):
            metrics = files.read_json(path)
        if metrics and key in metrics:
            out.update(
                metrics[key] if key == "quality" else {"teacher_steps": metrics[key]}
            )
    return out
