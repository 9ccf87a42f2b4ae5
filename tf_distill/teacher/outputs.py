"""A teacher must give logits: one that ends in a softmax gives probabilities, and
softening those again (softmax(p / T)) teaches a nearly uniform distribution (top-1
0.19 instead of 0.86 in the case that found it), silently. Both the command line
and the Python API look at the teacher's outputs on a first batch and refuse."""

from __future__ import annotations

import numpy as np


def are_probabilities(outputs: np.ndarray, atol: float = 1e-3) -> bool:
    """True when every row is non-negative and sums to 1: what a softmax gives and
    logits practically never do."""
    outputs = np.asarray(outputs, np.float64)
    return bool(
        outputs.size
        and np.all(outputs >= 0)
        and np.allclose(outputs.sum(-1), 1.0, atol=atol)
    )


def check_logits(outputs: np.ndarray, what: str) -> None:
    """Raises ValueError when `outputs` (the teacher's on a first batch) look like
    probabilities; `what` names the teacher."""
    if are_probabilities(outputs):
        raise ValueError(
            f"{what} gives probabilities, not logits (on the first batch every row "
            "is >= 0 and sums to 1): distillation softens logits, so remove its "
            "final softmax (e.g. keras.Model(teacher.input, <the layer before the "
            "softmax>.output), or activation=None on its last Dense)"
        )
