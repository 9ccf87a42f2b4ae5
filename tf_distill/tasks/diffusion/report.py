"""The diffusion run's report: quality against the number of sampling steps, for
the teacher's plain DDIM and for the distilled students, beside the real-vs-real
floor. Writes report.json, report.md and quality.png (FID per step count)."""

from __future__ import annotations

from tf_distill.outputs import files
from tf_distill.outputs.rundir import TEACHER, RunDir, round_name
from tf_distill.reports import plots
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
        rows.append({"steps": steps, "ddim": ddim[str(steps)], "distilled": distilled})
    report = {
        "teacher_steps": teacher_steps,
        "floor": results[STUDENT]["floor"],
        "rows": rows,
        "comparisons": _comparisons(rows, teacher_steps),
    }
    return report


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
