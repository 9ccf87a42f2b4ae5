"""Fashion-MNIST, a CNN teacher into a small MLP, equal patient schedules.

    python main.py --model=all --config=configs/fashion_mnist_recommended.py

VGG-style CNN teacher (convnet 32/64/128, dropout 0.3, 15 epochs) -> MLP 32
student; every model trains all its epochs and keeps the last, and the student
alone and the distilled student train 40 each, so the comparison is of the
teacher's signal, not of the schedule. T chosen on validation by
`benchmarks/recipes.py --recipes=large` (benchmarks/README.md). Reads
../shared/data/fashion_mnist.
"""

import os

from configs import default


def get_config():
    config = default.base_config()
    config.dataset = "fashion_mnist"
    config.data_dir = os.path.join(default.SHARED_DATA, "fashion_mnist")
    config.batch_size = 128
    config.teacher.arch = "convnet"
    config.teacher.layers = (32, 64, 128)
    config.teacher.dropout = 0.3
    config.teacher.epochs = 15
    config.student.arch = "mlp"
    config.student.layers = (32,)
    config.student.dropout = 0.0
    config.student.epochs = 40
    config.early_stopping.patience = 0  # the students: every epoch, the last kept
    config.num_seeds = 3
    return config
