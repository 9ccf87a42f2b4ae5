"""tf-distill: knowledge distillation for TensorFlow / Keras 3.

Train a teacher, train a student alone, distil the teacher into the student, compare
the three and export the student for serving.

- Command line: `tf-distill --model=...` (or `python main.py`, `python -m
  tf_distill`; tf_distill/cli.py) runs `tf_distill.experiment.run`.
- Python: `tf_distill.distill(teacher=..., student=..., train_data=..., epochs=...)`
  distils your own Keras models on your own tf.data pipeline (tf_distill/api.py).
"""

import importlib

# Loaded on first use, so that `tf_distill.quiet` can be imported before TensorFlow.
_LAZY = {
    "DistillResult": "tf_distill.api",
    "distill": "tf_distill.api",
    "load_teacher": "tf_distill.models.saved_teacher",
    "Distiller": "tf_distill.distillation.distiller",
    "distillation_loss": "tf_distill.distillation.losses",
    "hard_loss": "tf_distill.distillation.losses",
    "kd_loss": "tf_distill.distillation.losses",
    "KD": "tf_distill.distillation.methods",
    "DKD": "tf_distill.distillation.methods",
    "Method": "tf_distill.distillation.methods",
}


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'tf_distill' has no attribute {name!r}")


__all__ = [
    "DKD",
    "KD",
    "Method",
    "DistillResult",
    "Distiller",
    "distill",
    "load_teacher",
    "distillation_loss",
    "hard_loss",
    "kd_loss",
]
__version__ = "0.1.0"
