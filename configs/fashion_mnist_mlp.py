"""Fashion-MNIST, MLP teacher 512-256-128 -> MLP student 128, from the IDX files.

    python main.py --model=all --config=configs/fashion_mnist_mlp.py

Reported by the example this reproduces: teacher 0.894, student alone 0.872-0.881
test accuracy. Adam (amsgrad), cosine decay from 1e-3 to 10% of it, batch 256, up to
50 epochs, early stopping with patience 5 restoring the best weights. The source
gives no temperature, alpha or dropout: T=4, alpha=0.1 and no dropout are ours.
Reads ../shared/data/fashion_mnist (override with --config.data_dir=...).
"""

import os

from configs import default


def get_config():
    config = default.base_config()
    config.dataset = "fashion_mnist"
    config.data_dir = os.path.join(default.SHARED_DATA, "fashion_mnist")
    config.batch_size = 256
    config.teacher.arch = "mlp"
    config.teacher.layers = (512, 256, 128)
    config.teacher.dropout = 0.0
    config.teacher.epochs = 50
    config.student.arch = "mlp"
    config.student.layers = (128,)
    config.student.dropout = 0.0
    config.student.epochs = 50
    config.distill.temperature = 4.0
    config.distill.alpha = 0.1
    config.optimizer.learning_rate = 1e-3
    config.optimizer.final_lr_fraction = 0.1
    config.optimizer.amsgrad = True
    config.early_stopping.patience = 5
    return config
