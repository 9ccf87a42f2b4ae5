"""The comparison that `--model=all` writes: teacher, student alone, distilled."""

from __future__ import annotations

import os

from tf_distill import outputs

FIELDS = (
    "test_accuracy",
    "test_loss",
    "params",
    "saved_model_bytes",
    "epochs_run",
    "train_seconds",
    "examples_per_second",
)
LABELS = {
    "teacher": "teacher",
    "student": "student alone",
    "distilling": "distilled student",
}


def write(workdir: str, results: dict[str, dict]) -> dict:
    """Writes report.json, report.md and accuracy.png into `workdir`; returns it."""
    models = {name: {f: results[name][f] for f in FIELDS} for name in LABELS}
    gain = models["distilling"]["test_accuracy"] - models["student"]["test_accuracy"]
    report = {"models": models, "distilled_minus_student_accuracy": gain}
    outputs.write_json(os.path.join(workdir, "report.json"), report)
    outputs.write_text(os.path.join(workdir, "report.md"), _markdown(report))
    _plot(os.path.join(workdir, "accuracy.png"), results)
    return report


def _markdown(report):
    rows = [
        "| model | test acc. | test loss | params | SavedModel KiB | epochs "
        "| train s | examples/s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, label in LABELS.items():
        m = report["models"][name]
        rows.append(
            f"| {label} | {m['test_accuracy']:.4f} | {m['test_loss']:.4f} "
            f"| {m['params']:,} | {m['saved_model_bytes'] / 1024:,.0f} "
            f"| {m['epochs_run']} | {m['train_seconds']:.1f} "
            f"| {m['examples_per_second']:,.0f} |"
        )
    gain = report["distilled_minus_student_accuracy"]
    return (
        "# Distillation report\n\n"
        + "\n".join(rows)
        + f"\n\nDistilled student minus student alone: {gain * 100:+.2f} points of "
        "test accuracy.\n"
    )


def _plot(path, results):
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=100)
    for name, label in LABELS.items():
        curve = results[name]["history"]["val_accuracy"]
        ax.plot(range(1, len(curve) + 1), curve, marker="o", markersize=3, label=label)
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation accuracy")
    ax.set_title("Validation accuracy")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    with outputs.replacing_file(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
