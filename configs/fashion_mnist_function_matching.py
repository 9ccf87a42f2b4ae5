"""Fashion-MNIST, function matching (Beyer et al. 2022) on the recommended pair.

    python main.py --model=all --config=configs/fashion_mnist_function_matching.py

configs/fashion_mnist_recommended.py's convnet 32/64/128 teacher and convnet 8/16
student, every model trained on the same +-2-pixel shifts and horizontal flips
(the student alone too, so that a comparison is of the teacher's signal, not of
the augmentation), and the distilled student on 8 cached augmented views of each
image, the teacher run once per view (config.distill.cached_views), with mixup
between views; student alone and distilled student on equal schedules, the last
epoch kept. `benchmarks/recipes.py --recipes=fashion_function_matching` chose
views without mixup (alpha 0.1) over mixup 1.0 on validation; from a committee of
five Fashion-MNIST teachers (0.9347), 3 seeds: distilled 0.9028 against 0.8941 for
the student alone with the same shifts and flips, +0.87 points, 95% CI [-0.23,
+1.97], below the unaugmented recommended config (0.9074 distilled): the teachers
were not trained on the flips they are asked about (benchmarks/README.md). Kept as
the recipe to start from with a teacher trained on the same augmentation. Reads
../shared/data/fashion_mnist.
"""

from configs import fashion_mnist_recommended


def get_config():
    config = fashion_mnist_recommended.get_config()
    config.augment.translate = 2
    config.augment.flip = "horizontal"
    config.augment.mixup = 0.0  # mixup 1.0 did worse on validation
    config.distill.cached_views = 8
    config.teacher.epochs = 30  # augmented: it learns more slowly
    config.student.epochs = 30
    config.distill.alpha = 0.1  # chosen on validation with mixup 0
    config.steps_per_execution = 32
    return config
