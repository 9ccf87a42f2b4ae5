"""tf-distill: knowledge distillation for TensorFlow / Keras 3.

Train a teacher, train a student alone, distil the teacher into the student, compare
the three and export the student for serving. Entry point: `tf_distill.train.run`.
"""

from tf_distill.distiller import Distiller
from tf_distill.losses import distillation_loss, hard_loss, kd_loss

__all__ = ["Distiller", "distillation_loss", "hard_loss", "kd_loss"]
__version__ = "0.1.0"
