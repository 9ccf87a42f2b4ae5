"""Progressive distillation end to end, and the issue's targets checked.

    python benchmarks/progressive.py --config=configs/digits_diffusion.py \
        --workdir=/tmp/progressive [--teacher_dir=RUN/teacher]

Runs the diffusion task's modes one after the other in <workdir> (the teacher, or a
trained one copied from --teacher_dir; the teacher's own DDIM at 1, 2, 4, ...
steps; the halving rounds), writes the run's report, and prints the quality table
with each stage's wall time and the targets of issue 16:

- the distilled 4-step sampler within 1.5x of the teacher's full-step FID, and
  at least 3x better than the teacher's own 4-step DDIM;
- the distilled 1-step sampler better than 8-step DDIM;
- the distilled samplers' class coverage within 5 points of the teacher's;
- the shape: the fewest steps at which each sampler stays within 2x of the
  teacher's full-step FID (the paper: DDIM ~16, distillation ~4).

A stage whose outputs <workdir> already holds (from main.py's modes run with the
same config, say) is reused, not run again. Nothing is tuned on these numbers
here; they only report. Writes <workdir>/progressive.json and progressive.md.
"""

from __future__ import annotations

import os
import shutil
import time

import common  # benchmarks/common.py, beside this script
from absl import app, flags

flags.DEFINE_string("config", "configs/digits_diffusion.py", "Config file.")
flags.DEFINE_string("workdir", "/tmp/progressive", "The run directory.")
flags.DEFINE_string("teacher_dir", None, "A trained teacher's folder to reuse.")
FLAGS = flags.FLAGS

HOLDS = 2.0  # "holds": FID within this factor of the teacher's full-step FID


def targets(report: dict) -> list[tuple[str, bool | None, str]]:
    """(target, met, measured) for each of the issue's targets."""
    rows = {r["steps"]: r for r in report["rows"]}
    teacher = report["comparisons"]["teacher_fid"]

    def fid(steps, sampler):
        row = rows.get(steps)
        value = None if row is None else row[sampler]
        return None if value is None else value["fid"]["mean"]

    out = []
    d4, ddim4, d1, ddim8 = (
        fid(4, "distilled"),
        fid(4, "ddim"),
        fid(1, "distilled"),
        fid(8, "ddim"),
    )
    if d4 is not None:
        out.append(
            (
                "distilled 4-step FID <= 1.5x teacher's",
                d4 <= 1.5 * teacher,
                f"{d4:.2f} vs {teacher:.2f} ({d4 / teacher:.2f}x)",
            )
        )
        out.append(
            (
                "DDIM 4-step FID >= 3x distilled 4-step",
                ddim4 >= 3 * d4,
                f"{ddim4:.2f} vs {d4:.2f} ({ddim4 / d4:.2f}x)",
            )
        )
    if d1 is not None and ddim8 is not None:
        out.append(
            (
                "distilled 1-step FID < DDIM 8-step",
                d1 < ddim8,
                f"{d1:.2f} vs {ddim8:.2f}",
            )
        )
    gaps = [
        v
        for k, v in report["comparisons"].items()
        if k.endswith("coverage_minus_teacher")
    ]
    worst = min(gaps, key=lambda g: -abs(g))
    out.append(
        (
            "distilled coverage within 5 points of the teacher's",
            abs(worst) <= 5.0,
            f"largest gap {worst:+.1f} points",
        )
    )
    for sampler in ("ddim", "distilled"):
        held = [
            s
            for s in rows
            if fid(s, sampler) is not None and fid(s, sampler) <= HOLDS * teacher
        ]
        out.append(
            (
                f"{sampler}: fewest steps within {HOLDS:g}x of the teacher's FID",
                None,
                str(min(held)) if held else "none",
            )
        )
    return out


def _done(run_dir, mode, config):
    """The results of a stage `run_dir` already holds (e.g. run by main.py with
    the same config), or None."""
    from tf_distill.outputs import files
    from tf_distill.outputs.rundir import round_name
    from tf_distill.tasks.diffusion import settings, trainer

    if mode == "teacher":
        names = ["teacher"]
    elif mode == "student":
        names = [trainer.STUDENT]
    else:
        steps = settings.from_config(config).round_steps
        names = [round_name(n) for n in steps]
    paths = [run_dir.model(n).metrics for n in names]
    if not all(os.path.isfile(p) for p in paths):
        return None
    results = {n: files.read_json(p) for n, p in zip(names, paths, strict=True)}
    if mode == "distilling" and not all("quality" in r for r in results.values()):
        return None
    return results


def main(argv):
    del argv
    from tf_distill import experiment
    from tf_distill.outputs import files
    from tf_distill.tasks.diffusion import report as report_lib

    config = common.load_config(FLAGS.config, name_prefix="progressive")
    run_dir = experiment.run_dir_of(
        FLAGS.workdir, os.path.join(FLAGS.workdir, "tensorboard")
    )
    seconds, results = {}, {}
    if FLAGS.teacher_dir:
        shutil.copytree(
            FLAGS.teacher_dir, run_dir.model("teacher").dir, dirs_exist_ok=True
        )
    for mode in ("teacher", "student", "distilling"):
        done = _done(run_dir, mode, config)
        if done is not None:  # a stage this workdir already holds is reused
            print(f"Reusing the {mode} stage in {run_dir.root}")
            results.update(done)
            continue
        start = time.perf_counter()
        results.update(
            experiment.run(
                config,
                workdir=run_dir.root,
                mode=mode,
                tensorboard_dir=run_dir.tensorboard,
            )
        )
        seconds[mode] = time.perf_counter() - start
    report = report_lib.write(run_dir, results, title=config.name)
    checks = targets(report)
    lines = [report_lib.markdown(report, config.name), "## Targets (issue 16)\n"]
    for name, met, measured in checks:
        verdict = "-" if met is None else ("met" if met else "**missed**")
        lines.append(f"- {name}: {measured} ({verdict})")
    if seconds:
        lines.append(
            "\nWall time: "
            + ", ".join(f"{k} {v / 60:.1f} min" for k, v in seconds.items())
        )
    text = "\n".join(lines) + "\n"
    print(text)
    files.write_json(
        os.path.join(FLAGS.workdir, "progressive.json"),
        {"report": report, "targets": checks, "seconds": seconds},
    )
    files.write_text(os.path.join(FLAGS.workdir, "progressive.md"), text)


if __name__ == "__main__":
    app.run(main)
