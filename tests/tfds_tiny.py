"""A tiny TensorFlow Datasets builder that needs no download (tests/test_data.py).

Defined in its own module so that tfds registers "tiny_shapes" once per process.
"""

import numpy as np
import tensorflow_datasets as tfds


class TinyShapes(tfds.core.GeneratorBasedBuilder):
    """8x8 grey squares whose value is 100 x the label: dark, mid, light."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        return tfds.core.DatasetInfo(
            builder=self,
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(shape=(8, 8, 1)),
                    "label": tfds.features.ClassLabel(names=["dark", "mid", "light"]),
                }
            ),
            supervised_keys=("image", "label"),
        )

    def _split_generators(self, dl_manager):
        del dl_manager  # nothing to download
        return {
            "train": self._generate_examples(40),
            "test": self._generate_examples(12),
        }

    def _generate_examples(self, count):
        for i in range(count):
            image = np.full((8, 8, 1), (i % 3) * 100, np.uint8)
            yield i, {"image": image, "label": i % 3}
