"""Progressive distillation of a diffusion sampler on MNIST 28x28.

    python main.py --model=all --config=configs/mnist_diffusion.py

For a GPU or a long CPU run: a three-level U-Net (28 -> 14 -> 7) teacher sampled
with 256 DDIM steps, distilled round by round down to 1 step; quality on the
features of a convnet trained on MNIST. Not measured on this project's 2-core CPU
machine (the teacher alone would take hours there); the digits config is the one
benchmarked (benchmarks/README.md). Reads ../shared/data/mnist.
"""

import os

from configs import default, digits_diffusion


def get_config():
    config = digits_diffusion.base_config()
    config.dataset = "mnist"
    config.data_dir = os.path.join(default.SHARED_DATA, "mnist")
    config.validation_fraction = 1 / 12  # 5,000 images
    config.diffusion.channels = 64
    config.diffusion.multipliers = (1, 2, 2)
    config.diffusion.blocks = 2
    config.diffusion.epochs = 40
    config.diffusion.learning_rate = 2e-4
    config.diffusion.ema_decay = 0.9995
    config.progressive.teacher_steps = 256
    config.progressive.epochs = 8
    config.progressive.learning_rate = 1e-4
    config.quality.num_samples = 2000
    config.quality.classifier_arch = "convnet"
    config.quality.classifier_layers = (32, 64)
    config.quality.classifier_epochs = 5
    return config
