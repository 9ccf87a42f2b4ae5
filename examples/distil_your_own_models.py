"""Distil your own Keras teacher into your own Keras student, in Python.

    python examples/distil_your_own_models.py [--epochs=30]

scikit-learn's 8x8 digits stand in for your data: your tf.data pipeline of
(x, y) batches, your teacher (here trained first with plain Keras), your student.
`tf_distill.distill` does the rest: the teacher's logits are computed once and
cached (the pipeline is not augmented), the student trains on
alpha * CE + (1 - alpha) * T^2 KL(teacher_T || student_T), and the student alone is
trained from the same initial weights and batches for comparison (alpha=1: the
labels alone). Prints the three test accuracies. On digits the distilled student
does not beat the student alone (see docs/results.md): a demo of the API, not a
recipe.
"""

import argparse
import os
import sys

import keras
import numpy as np
import tensorflow as tf
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

# Run from a checkout without installing: tf_distill sits beside this folder.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import tf_distill  # noqa: E402
from examples.my_models import small_cnn, wide_cnn  # noqa: E402


def datasets(batch_size=64):
    digits = load_digits()
    x = digits.images[..., None].astype(np.float32)  # (n, 8, 8, 1), values 0..16
    y = digits.target.astype(np.int32)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=0.2, random_state=0, stratify=y
    )
    x_train, x_val, y_train, y_val = train_test_split(
        x_train, y_train, test_size=0.1, random_state=0, stratify=y_train
    )

    def batches(x, y, shuffle=False):
        ds = tf.data.Dataset.from_tensor_slices((x, y))
        if shuffle:
            ds = ds.shuffle(len(x), seed=0)
        return ds.batch(batch_size)

    return (
        batches(x_train, y_train, shuffle=True),
        batches(x_val, y_val),
        batches(x_test, y_test),
    )


def accuracy(model, dataset):
    correct = total = 0
    for x, y in dataset:
        correct += int(np.sum(np.argmax(model(x), -1) == y.numpy()))
        total += len(y)
    return correct / total


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    args = parser.parse_args()
    train, val, test = datasets()
    shape = (8, 8, 1)

    keras.utils.set_random_seed(0)
    teacher = wide_cnn(shape, 10, input_scale=16.0)
    teacher.compile(
        optimizer=keras.optimizers.Adam(3e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    teacher.fit(train, validation_data=val, epochs=args.epochs, verbose=0)

    keras.utils.set_random_seed(1)
    student = small_cnn(shape, 10, input_scale=16.0)
    alone = keras.models.clone_model(student)  # the same initial weights
    alone.set_weights(student.get_weights())

    # The distilled student (T=4, alpha=0.1), and the baseline: the same student,
    # recipe and batches with alpha=1, the labels' cross-entropy alone.
    results = {
        name: tf_distill.distill(
            teacher=teacher,
            student=model,
            train_data=train,
            validation_data=val,
            epochs=args.epochs,
            temperature=4.0,
            alpha=alpha,
            verbose=0,
        )
        for name, model, alpha in (("distilled", student, 0.1), ("alone", alone, 1.0))
    }
    result = results["distilled"]

    print(f"teacher test accuracy            {accuracy(teacher, test):.4f}")
    print(f"student alone test accuracy      {accuracy(alone, test):.4f}")
    print(f"distilled student test accuracy  {accuracy(result.student, test):.4f}")
    print(
        f"teacher logits cached: {result.cached} "
        f"({result.teacher_pass_seconds:.2f} s); final soft loss "
        f"{result.history['soft_loss'][-1]:.4f}"
    )


if __name__ == "__main__":
    main()
