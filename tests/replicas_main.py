"""One replica against two, in a fresh process (tests/test_distribute.py runs it).

The CPU is split into two logical devices before TensorFlow starts; then the same
distillation runs under the default strategy and under MirroredStrategy over the two
devices (whole batches that Keras splits, then batches made per replica as under
several workers), from the same weights on the same batches, and the per-step losses and
final weights are printed as JSON for the test to compare.

    python tests/replicas_main.py OUT.json
"""

import json
import os
import sys

import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration()] * 2
)

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402

from configs import default  # noqa: E402
from tf_distill.data import batches  # noqa: E402
from tf_distill.distillation.distiller import Distiller  # noqa: E402
from tf_distill.models import architectures  # noqa: E402
from tf_distill.tasks.classifier import settings as config_lib  # noqa: E402
from tf_distill.training import distribute  # noqa: E402


class StepLosses(keras.callbacks.Callback):
    """The loss after each step: the mean over the examples seen so far, which
    agrees between two runs exactly when each step's loss does."""

    def __init__(self):
        super().__init__()
        self.means = []

    def on_train_batch_end(self, batch, logs=None):
        self.means.append(float(logs["loss"]))


def distil(strategy, splits, config, per_replica=False):
    """One epoch of distillation under `strategy`; (step losses, weights). With
    `per_replica`, the input is made per replica, as under several workers
    (distribute.per_replica_batches), instead of whole batches Keras splits."""
    with strategy.scope():
        keras.utils.set_random_seed(0)
        teacher = architectures.build_for(
            config_lib.model_spec(config.teacher), splits, name="teacher"
        )
        keras.utils.set_random_seed(1)
        student = architectures.build_for(
            config_lib.model_spec(config.student), splits, name="student"
        )
        distiller = Distiller(
            student=student, teacher=teacher, temperature=4.0, alpha=0.1
        )
        distiller.compile(optimizer=keras.optimizers.Adam(1e-2))

    def make(share):
        return batches.pipeline(
            splits.x_train,
            splits.y_train,
            batch_size=config.batch_size,
            shuffle_seed=0,
            epochs=range(1),
            share=share,
        )

    if per_replica:
        ds = distribute.per_replica_batches(strategy, make)
    else:
        ds = make(None)
    steps = StepLosses()
    steps_per_epoch = -(-len(splits.y_train) // config.batch_size)
    distiller.fit(
        ds,
        epochs=1,
        steps_per_epoch=steps_per_epoch,
        callbacks=[steps],
        verbose=0,
        shuffle=False,
    )
    return steps.means, [w.numpy().tolist() for w in student.weights]


def main(out_path):
    config = default.base_config()
    config.teacher.layers = (32,)
    config.student.layers = (16,)
    splits = config_lib.load_data(
        config
    )  # 1,293 training images: the last batch has 13
    one = distribute.make_strategy("auto")
    two = distribute.make_strategy("mirrored")
    results = {"replicas": [], "losses": [], "weights": []}
    for strategy, per_replica in ((one, False), (two, False), (two, True)):
        losses, weights = distil(strategy, splits, config, per_replica)
        results["replicas"].append(strategy.num_replicas_in_sync)
        results["losses"].append(losses)
        results["weights"].append(weights)
    with open(out_path, "w") as f:
        json.dump(results, f)


if __name__ == "__main__":
    main(sys.argv[1])
