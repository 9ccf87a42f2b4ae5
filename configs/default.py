"""Default experiment: scikit-learn's bundled 8x8 digits, offline, in about a minute.

    python main.py --model=all

Every config key and its default lives here; the other configs import this one and
change a few fields. Expected on 2 CPU cores (see README): teacher ~0.97, student
alone ~0.93-0.95, distilled student at or above the student alone, test accuracy.
"""

import os

import ml_collections

# The real MNIST / Fashion-MNIST IDX files, beside the repository (../shared/data).
_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_DATA = os.path.join(os.path.dirname(_REPO), "shared", "data")


def get_config() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    # tensorboard/<name>/ and the default workdir runs/<name>; main.py fills it in
    # from the config file name (configs/mnist_cnn.py -> "mnist_cnn") when None.
    config.name = ml_collections.config_dict.placeholder(str)

    # Data.
    config.dataset = "digits"  # "digits" | "idx" | a tfds name | "image_folder"
    # A folder of IDX files / a tfds data_dir; None for digits. Typed placeholders
    # (not plain None) so that --config.data_dir=... can set them.
    config.data_dir = ml_collections.config_dict.placeholder(str)
    config.validation_fraction = 0.1  # carved from the training split, fixed seed
    config.split_seed = 0  # the data split never changes with config.seed
    config.seed = 42
    config.batch_size = 64  # global batch size, across all replicas

    # Models. `layers` are Dense units (mlp) or Conv2D filters (cnn).
    config.teacher = ml_collections.ConfigDict()
    config.teacher.arch = "mlp"
    config.teacher.layers = (256, 128)
    config.teacher.dropout = 0.2
    config.teacher.epochs = 40

    config.student = ml_collections.ConfigDict()
    config.student.arch = "mlp"
    config.student.layers = (16,)
    config.student.dropout = 0.0
    config.student.epochs = 40  # student alone, and distilling unless distill.epochs

    # An existing .keras teacher to distil from (--model=distilling).
    config.teacher_path = ml_collections.config_dict.placeholder(str)

    # Distillation: alpha * hard + (1 - alpha) * T^2 * KL(teacher_T || student_T).
    config.distill = ml_collections.ConfigDict()
    config.distill.method = "kd"
    config.distill.temperature = 4.0
    config.distill.alpha = 0.1  # weight of the hard (label) loss
    config.distill.epochs = ml_collections.config_dict.placeholder(
        int
    )  # None: student.epochs

    # Optimisation: Adam with cosine decay over all training steps.
    config.optimizer = ml_collections.ConfigDict()
    config.optimizer.learning_rate = 3e-3
    config.optimizer.final_lr_fraction = 0.1  # CosineDecay alpha
    config.optimizer.amsgrad = False

    config.early_stopping = ml_collections.ConfigDict()
    config.early_stopping.monitor = "val_accuracy"
    config.early_stopping.patience = 8  # 0 turns early stopping off

    # Runtime.
    config.strategy = "auto"  # "auto" | "mirrored" | "multi_worker" | "one_device"
    config.mixed_precision = ml_collections.config_dict.placeholder(str)
    return config
