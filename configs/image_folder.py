"""Your own images, sorted into one sub-folder per class (the plant-seedlings case).

Lay the folder out like this (any image size; they are resized to image_size):

    my_images/train/<class name>/*.png|jpg|jpeg|bmp|gif
    my_images/val/<class name>/...
    my_images/test/<class name>/...      (optional)

then point the config at it:

    python main.py --model=all --config=configs/image_folder.py \
        --config.data_dir=/path/to/my_images

Without test/, val/ is the test split (read once, at the end) and the validation
split that early stopping watches is carved from train/. The class names (the
sub-folder names) go into every export. Teacher: MobileNetV3-Small from random
weights (or --config.teacher.weights=/path/to/weights.h5, a headless Keras
Applications weights file); student: a small CNN. Training images are jittered by
up to 4 pixels, flipped left-right and colour-jittered; teacher and student see the
same augmented batch. Other Keras Applications: --config.teacher.arch=resnet50 or
efficientnet_b0.
"""

from configs import default


def get_config():
    config = default.base_config()
    config.dataset = "image_folder"
    config.image_size = (64, 64)
    config.color_mode = "rgb"
    config.batch_size = 32
    config.teacher.arch = "mobilenet_v3_small"
    config.teacher.dropout = 0.2
    config.teacher.epochs = 30
    config.student.arch = "cnn"
    config.student.layers = (16, 32)
    config.student.dropout = 0.0
    config.student.epochs = 30
    config.augment.translate = 4
    config.augment.flip = "horizontal"
    config.augment.color_jitter = 0.2
    config.early_stopping.patience = 10
    return config
