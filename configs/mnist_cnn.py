"""MNIST, the keras.io distillation example: CNN teacher 256/512 -> CNN student 16/32.

    python main.py --model=all --config=configs/mnist_cnn.py

Reported by keras.io "Knowledge Distillation": teacher ~97.6%, student alone ~97.6%,
distilled ~98.1% test accuracy. Conv2D 3x3 stride 2, LeakyReLU 0.2, max-pool 2 stride
1; T=10, alpha=0.1, Adam 1e-3 (constant, as published), batch 64, teacher 5 epochs,
student 3 epochs, no early stopping. Reads ../shared/data/mnist.
"""

import os

from configs import default


def get_config():
    config = default.base_config()
    config.dataset = "mnist"
    config.data_dir = os.path.join(default.SHARED_DATA, "mnist")
    config.batch_size = 64
    config.teacher.arch = "cnn"
    config.teacher.layers = (256, 512)
    config.teacher.dropout = 0.0
    config.teacher.epochs = 5
    config.student.arch = "cnn"
    config.student.layers = (16, 32)
    config.student.dropout = 0.0
    config.student.epochs = 3
    config.distill.temperature = 10.0
    config.distill.alpha = 0.1
    config.optimizer.learning_rate = 1e-3
    config.optimizer.final_lr_fraction = 1.0  # constant, as published
    config.early_stopping.patience = 0  # fixed epochs, as published
    return config
