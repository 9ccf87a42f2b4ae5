"""tf-distill: knowledge distillation for TensorFlow / Keras 3.

Train a teacher, train a student alone, distil the teacher into the student, compare
the three and export the student for serving.

- Command line: `python main.py --model=...` runs `tf_distill.experiment.run`.
- Python: `tf_distill.distill(teacher=..., student=..., train_data=..., epochs=...)`
  distils your own Keras models on your own tf.data pipeline (tf_distill/api.py).
"""

from tf_distill.api import DistillResult, distill
from tf_distill.distiller import Distiller
from tf_distill.losses import distillation_loss, hard_loss, kd_loss
from tf_distill.methods import KD

__all__ = [
    "KD",
    "DistillResult",
    "Distiller",
    "distill",
    "distillation_loss",
    "hard_loss",
    "kd_loss",
]
__version__ = "0.1.0"
