"""Sample quality, offline: measures on the features of a classifier trained on the
same data, since no Inception network may be downloaded here.

- FID (Heusel et al. 2017): the Frechet distance between Gaussians fitted to the
  features of the samples and of the training images.
- KID (Binkowski et al. 2018): the unbiased squared MMD with the cubic polynomial
  kernel (x.y / d + 1)^3, unbiased at any sample count, so its floor is ~0.
- confidence: the classifier's mean top softmax probability on the samples.
- class coverage: the overlap of the samples' predicted-class histogram with the
  training labels' (sum over classes of the smaller share), in %: 100 when the
  sampler draws every class as often as the data has it.
- nearest neighbours: the median pixel distance from each sample to its nearest
  training image, beside the same for held-out real images; a ratio well below 1
  means the sampler copies its training set (8x8 digits is small enough to).

The real-vs-real floor is the held-out images (validation and test) measured as
the samples are, at the same count: FID has a bias that depends on the count.
Images here are floats in [-1, 1], as the sampler returns them. The training
images are read in batches (an array's rows, or decoded from their files): their
features are kept (a few hundred numbers an image), their pixels are not, so the
nearest-neighbour measure reads them again for each set it measures.
"""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import tensorflow as tf

from tf_distill.data import batches, image_files
from tf_distill.models import architectures

BATCH = 512  # images a batch when reading the training split


def train_classifier(
    spec: architectures.ModelSpec, splits, *, seed: int
) -> keras.Model:
    """The feature network: `spec` trained on the labelled training split."""
    keras.utils.set_random_seed(seed)
    model = architectures.build_for(spec, splits, name="quality_classifier")
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    if image_files.streams(splits.x_train):  # shuffled batches from the files
        train = batches.pipeline(
            splits.x_train,
            splits.y_train,
            batch_size=128,
            shuffle_seed=seed,
            epochs=range(spec.epochs),
        )
        steps = -(-len(splits.y_train) // 128)
        model.fit(
            train, epochs=spec.epochs, steps_per_epoch=steps, shuffle=False, verbose=0
        )
        return model
    # In memory (digits, MNIST): as it always was, so the recorded FIDs stand.
    model.fit(
        splits.x_train.astype(np.float32),
        splits.y_train,
        batch_size=128,
        epochs=spec.epochs,
        verbose=0,
    )
    return model


def to_unit(raw: np.ndarray, input_scale: float) -> np.ndarray:
    """Raw pixels in [0, input_scale] to floats in [-1, 1]."""
    return raw.astype(np.float32) / (input_scale / 2.0) - 1.0


@dataclasses.dataclass
class Reference:
    """What samples are compared with: the training images' features and labels."""

    classifier: keras.Model
    input_scale: float
    train_images: object  # raw: a uint8 array, or streamed image files / records
    train_labels: np.ndarray
    num_classes: int

    def __post_init__(self):
        logits = self.classifier.get_layer("logits")
        # One pass gives both: the penultimate features and the logits.
        self._both = keras.Model(
            self.classifier.inputs, [logits.input, self.classifier.outputs[0]]
        )
        self.train_features = np.concatenate(
            [self.features(b) for b in self.train_batches()]
        )
        # KID's term of the training features alone: the same for every sampler.
        self._within_train = _within(self.train_features.astype(np.float64))
        counts = np.bincount(self.train_labels, minlength=self.num_classes)
        self.class_shares = counts / counts.sum()

    def train_batches(self):
        """The training images in batches of BATCH, as floats in [-1, 1]."""
        for (raw,) in batches.pipeline(self.train_images, batch_size=BATCH):
            yield to_unit(raw.numpy(), self.input_scale)

    def _features_and_logits(self, images: np.ndarray):
        raw = (np.asarray(images, np.float32) + 1.0) * (self.input_scale / 2.0)
        features, logits = self._both.predict(raw, batch_size=512, verbose=0)
        return np.asarray(features), np.asarray(logits)

    def features(self, images: np.ndarray) -> np.ndarray:
        return self._features_and_logits(images)[0]

    def measure(self, images: np.ndarray) -> dict[str, float]:
        """Every measure of a set of images (samples, or held-out real ones)."""
        images = np.asarray(images, np.float32)
        features, logits = self._features_and_logits(images)
        probs = tf.nn.softmax(logits).numpy()
        predicted = np.bincount(probs.argmax(-1), minlength=self.num_classes)
        shares = predicted / predicted.sum()
        return {
            "fid": fid(features, self.train_features),
            "kid": kid(features, self.train_features, within_b=self._within_train),
            "confidence": float(probs.max(-1).mean()),
            "coverage": float(100.0 * np.minimum(shares, self.class_shares).sum()),
            "nn_distance": float(np.median(nearest(images, self.train_batches()))),
        }


def fid(a: np.ndarray, b: np.ndarray) -> float:
    """|mu_a - mu_b|^2 + Tr(C_a + C_b - 2 (C_a C_b)^(1/2)), in float64.

    Tr (C_a C_b)^(1/2) is the sum of the square roots of the eigenvalues of the
    symmetric S C_b S, S = C_a^(1/2): finite and real even where the covariances
    are singular (fewer samples than features), unlike a general matrix root.
    """
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    w, v = np.linalg.eigh(cov_a)
    root_a = (v * np.sqrt(np.maximum(w, 0.0))) @ v.T
    middle = np.linalg.eigvalsh(root_a @ cov_b @ root_a)
    cross = np.sqrt(np.maximum(middle, 0.0)).sum()
    value = np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2 * cross
    return float(max(value, 0.0))


def _kernel_sum(a: np.ndarray, b: np.ndarray, chunk: int = 1024) -> float:
    """The sum of k(x, y) = (x.y / d + 1)^3 over every pair, `chunk` rows of `a`
    at a time, so that 55,000 MNIST features never make a 55,000^2 matrix."""
    d = a.shape[1]
    return float(
        sum(
            ((a[i : i + chunk] @ b.T / d + 1.0) ** 3).sum()
            for i in range(0, len(a), chunk)
        )
    )


def _within(a: np.ndarray) -> float:
    """The mean of k over the distinct pairs of `a`: E k(x, x'), x != x'."""
    m, d = len(a), a.shape[1]
    diagonal = (((a * a).sum(1) / d + 1.0) ** 3).sum()
    return (_kernel_sum(a, a) - diagonal) / (m * (m - 1))


def kid(a: np.ndarray, b: np.ndarray, *, within_b: float | None = None) -> float:
    """The unbiased MMD^2 between `a` and `b` with k(x, y) = (x.y / d + 1)^3,
    exact (every pair, in chunks); `within_b`: `b`'s own term, if known."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    within_b = _within(b) if within_b is None else within_b
    cross = _kernel_sum(a, b) / (len(a) * len(b))
    return float(_within(a) + within_b - 2.0 * cross)


def nearest(images: np.ndarray, pool, chunk: int = 256) -> np.ndarray:
    """Each image's Euclidean pixel distance to its nearest image in `pool`, an
    array or an iterable of arrays (batches of the pool, read one at a time)."""
    x = images.reshape(len(images), -1).astype(np.float64)
    best = np.full(len(x), np.inf)
    for part_of_pool in [pool] if isinstance(pool, np.ndarray) else pool:
        y = part_of_pool.reshape(len(part_of_pool), -1).astype(np.float64)
        y_norms = (y**2).sum(1)[None, :]
        for i in range(0, len(x), chunk):
            part = x[i : i + chunk]
            squared = (part**2).sum(1)[:, None] + y_norms - 2.0 * part @ y.T
            best[i : i + chunk] = np.minimum(best[i : i + chunk], squared.min(1))
    return np.sqrt(np.maximum(best, 0.0))


def summarise(per_seed: list[dict[str, float]]) -> dict:
    """Mean, sample standard deviation and the per-seed values of each measure
    over noise seeds (the values pair two samplers drawn from the same noise)."""
    out = {}
    for name in per_seed[0]:
        values = np.array([m[name] for m in per_seed])
        std = float(values.std(ddof=1)) if len(values) > 1 else None
        out[name] = {
            "mean": float(values.mean()),
            "std": std,
            "values": [float(v) for v in values],
        }
    out["seeds"] = len(per_seed)
    return out
