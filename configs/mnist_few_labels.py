"""MNIST with 10% of the labels: a CNN teacher labels the other 90% for a small MLP.

    python main.py --model=all --config=configs/mnist_few_labels.py

The teacher (CNN 32/64, 40 epochs) and the student alone (MLP 32, 100 epochs)
see the labels of 5,400 training images (10%, stratified, the same every run);
the distilled student trains 20 epochs on all 54,000 training images, the 48,600
without labels on the teacher's soft targets alone (Hinton et al. 2015, sec.
3-4). Measured results are in
benchmarks/README.md ("Few labels"). Reads ../shared/data/mnist.
"""

import os

from configs import default


def get_config():
    config = default.base_config()
    config.dataset = "mnist"
    config.data_dir = os.path.join(default.SHARED_DATA, "mnist")
    config.labeled_fraction = 0.1
    config.distill.transfer_data = "train"
    config.batch_size = 128
    config.teacher.arch = "cnn"
    config.teacher.layers = (32, 64)
    config.teacher.dropout = 0.2
    config.teacher.epochs = 40
    config.student.arch = "mlp"
    config.student.layers = (32,)
    config.student.dropout = 0.0
    # The student alone: 100 epochs of 5,400 images (4,300 steps); the distilled
    # student: 20 epochs of 54,000 (8,440 steps). Every model keeps its last
    # epoch, the patient schedule chosen on validation on digits.
    config.student.epochs = 100
    config.distill.epochs = 20
    config.early_stopping.patience = 0
    config.num_seeds = 3
    return config
