"""Writing figures with matplotlib, headless."""

from __future__ import annotations

from tf_distill import outputs


def pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    return plt


def save(fig, path):
    fig.tight_layout()
    with outputs.replacing_file(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png")
    pyplot().close(fig)
