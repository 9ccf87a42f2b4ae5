"""Progressive distillation of a diffusion sampler on scikit-learn's 8x8 digits.

    python main.py --model=all --config=configs/digits_diffusion.py

The offline default of the diffusion task (config.task = "diffusion"): a small
U-Net teacher sampled with 128 DDIM steps, distilled round by round into 64, 32,
..., 1 steps (Salimans & Ho, ICLR 2022). Quality (FID, KID, confidence, class
coverage) is measured on the features of a classifier trained on the same digits.
`base_config()` holds every key of the task with its default; configs/
mnist_diffusion.py starts from it. Measured: benchmarks/README.md, "Progressive
distillation".
"""

import ml_collections

from configs import default


def get_config() -> ml_collections.ConfigDict:
    return base_config()


def base_config() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    config.name = ml_collections.config_dict.placeholder(str)
    config.task = "diffusion"  # "classifier" (configs/default.py) | "diffusion"

    # Data, as the classifier configs read it (configs/default.py); labels only
    # train the quality classifier.
    config.dataset = "digits"
    config.data_dir = ml_collections.config_dict.placeholder(str)
    config.validation_fraction = 0.1
    config.image_size = (64, 64)  # image_folder and tfrecord only
    config.color_mode = "grayscale"  # image_folder and tfrecord only
    config.data = default.data_section()  # image_folder, tfrecord
    config.split_seed = 0
    config.seed = 42
    config.batch_size = 128  # global, across replicas
    config.strategy = "auto"  # as configs/default.py
    config.distribute = ml_collections.ConfigDict()
    config.distribute.connect_timeout = 300.0  # seconds, as configs/default.py
    config.finished = "reuse"  # or "replace", as configs/default.py
    # As configs/default.py: TensorFlow's op determinism (identical weights on a
    # rerun, slower on GPUs). The U-Net trains in float32; no mixed precision yet.
    config.deterministic = False
    config.mixed_precision = ml_collections.config_dict.placeholder(str)

    # The network and how it is trained (Salimans & Ho, sec. 4 and app. E).
    config.diffusion = ml_collections.ConfigDict()
    # What the network predicts: "x" or "v"; epsilon cannot be distilled (Table 1).
    config.diffusion.prediction = "v"
    # "snr_trunc": max(SNR, 1) x-MSE; "v_mse": (SNR + 1) x-MSE, the v-MSE.
    config.diffusion.weighting = "snr_trunc"
    config.diffusion.channels = 32  # U-Net base width (tasks/diffusion/unet.py)
    config.diffusion.multipliers = (1, 2)  # width per resolution level
    config.diffusion.blocks = 1  # residual blocks per level
    config.diffusion.dropout = 0.1  # the teacher's only (rounds train without)
    config.diffusion.epochs = 300  # the teacher's
    config.diffusion.learning_rate = 1e-3  # Adam, cosine decay to 10%
    config.diffusion.ema_decay = 0.999  # the teacher's weights used to sample

    # The rounds: teacher_steps -> teacher_steps/2 -> ... -> final_steps.
    config.progressive = ml_collections.ConfigDict()
    config.progressive.teacher_steps = 128  # a power of two
    config.progressive.final_steps = 1  # a power of two dividing teacher_steps
    config.progressive.epochs = 40  # per round
    # Adam per round, fresh, decaying linearly to 0 over the round (the paper).
    config.progressive.learning_rate = 2e-4

    # Sample quality (tf_distill/tasks/diffusion/quality.py).
    config.quality = ml_collections.ConfigDict()
    config.quality.num_samples = 500  # per sampler and noise seed
    config.quality.noise_seeds = 3  # the same noise for every sampler
    # The classifier whose features FID and KID compare (penultimate layer).
    config.quality.classifier_arch = "mlp"  # as config.teacher.arch
    config.quality.classifier_layers = (256, 128)
    config.quality.classifier_epochs = 60

    config.tensorboard = ml_collections.ConfigDict()
    config.tensorboard.every_steps = 100
    # Crash backups: after the first epoch, then every this many seconds (0:
    # every epoch); as configs/default.py.
    config.backup_every_seconds = 30.0
    return config
