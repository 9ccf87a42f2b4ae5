"""Writing figures with matplotlib, headless."""

from __future__ import annotations

from tf_distill.outputs import files


def pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    return plt


def save(fig, path):
    fig.tight_layout()
    with files.replacing_file(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png")
    pyplot().close(fig)
