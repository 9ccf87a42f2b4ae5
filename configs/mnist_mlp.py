"""MNIST, Hinton-style MLPs: teacher Dense 1200-1200 -> student Dense 20-20.

    python main.py --model=all --config=configs/mnist_mlp.py

Reported by the example this reproduces: teacher 97.6%, student alone 81.7% after 3
epochs, distilled student 90.2% after 20 epochs (test accuracy). Both nets use
dropout 0.5; T=7, alpha=0.3, Adam 1e-4 (constant), batch 32, teacher 6 epochs,
no early stopping. Reads ../shared/data/mnist.
"""

import os

from configs import default


def get_config():
    config = default.base_config()
    config.dataset = "mnist"
    config.data_dir = os.path.join(default.SHARED_DATA, "mnist")
    config.batch_size = 32
    config.teacher.arch = "mlp"
    config.teacher.layers = (1200, 1200)
    config.teacher.dropout = 0.5
    config.teacher.epochs = 6
    config.student.arch = "mlp"
    config.student.layers = (20, 20)
    config.student.dropout = 0.5
    config.student.epochs = 3  # the student alone, as published
    config.distill.epochs = 20  # the distilled student, as published
    config.distill.temperature = 7.0
    config.distill.alpha = 0.3
    config.optimizer.learning_rate = 1e-4
    config.optimizer.final_lr_fraction = 1.0  # constant, as published
    config.early_stopping.patience = 0  # fixed epochs, as published
    return config
