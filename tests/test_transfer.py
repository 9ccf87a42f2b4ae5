"""Few labels, many images: config.labeled_fraction and config.distill.transfer_data
(tf_distill/data/unlabelled.py), from the split to the loss to a whole run."""

import gzip
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from configs import default
from tests.conftest import SHARED_DATA, needs_shared_data, run_mode, set_key
from tf_distill.data import image_files, unlabelled
from tf_distill.distillation import losses
from tf_distill.distillation.distiller import Distiller
from tf_distill.outputs import files
from tf_distill.tasks.classifier import checks
from tf_distill.tasks.classifier import settings as config_lib


def _digits(fraction):
    config = default.base_config()
    config.labeled_fraction = fraction
    return config_lib.load_data(config)


def test_labelled_fraction_is_stratified_fixed_and_keeps_every_image():
    full, part = _digits(1.0), _digits(0.2)
    assert part.x_unlabeled is not None and full.x_unlabeled is None
    counts = np.bincount(part.y_train, minlength=10)
    expected = np.rint(np.bincount(full.y_train) * 0.2)
    np.testing.assert_array_equal(counts, expected)  # per class, not overall
    # Nothing lost or doubled: labelled + unlabelled are the training images.
    together = np.concatenate([part.x_train, part.x_unlabeled])
    assert len(together) == len(full.x_train)
    key = lambda xs: sorted(x.tobytes() for x in xs)  # noqa: E731
    assert key(together) == key(full.x_train)
    # The same labels every time, and validation and test keep theirs.
    np.testing.assert_array_equal(_digits(0.2).y_train, part.y_train)
    np.testing.assert_array_equal(part.y_val, full.y_val)
    assert part.sizes()["train_unlabeled"] == len(part.x_unlabeled)


def test_even_a_tiny_fraction_keeps_one_label_of_every_class():
    part = _digits(0.001)
    assert sorted(set(part.y_train.tolist())) == list(range(10))


def test_the_distillation_set_adds_the_withheld_images_unlabelled():
    part = _digits(0.2)
    x, y = unlabelled.distillation_set(part, unlabelled.TRAIN)
    assert len(x) == len(part.x_train) + len(part.x_unlabeled)
    np.testing.assert_array_equal(y[: len(part.y_train)], part.y_train)
    assert (y[len(part.y_train) :] == unlabelled.UNLABELED).all()
    x0, y0 = unlabelled.distillation_set(part, None)
    assert x0 is part.x_train and y0 is part.y_train


def test_an_unlabelled_example_has_no_hard_loss_and_no_accuracy():
    logits = tf.constant([[2.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
    hard = losses.hard_loss(labels=tf.constant([0, -1]), logits=logits)
    expected = -tf.nn.log_softmax(logits[0])[0]
    np.testing.assert_allclose(hard.numpy(), [expected.numpy(), 0.0], rtol=1e-6)

    student = keras.Sequential([keras.Input((3,)), keras.layers.Dense(3)])
    distiller = Distiller(student=student, teacher=None, temperature=2.0, alpha=0.5)
    distiller.compile(optimizer="sgd")
    x = tf.constant(np.eye(3, dtype=np.float32))
    wrong = tf.argmin(student(x), axis=-1, output_type=tf.int32)
    right = tf.argmax(student(x), axis=-1, output_type=tf.int32)
    y = tf.stack([right[0], wrong[1], -1])  # one right, one wrong, one unlabelled
    logs = distiller.test_step((x, y, tf.zeros((3, 3))))
    assert float(logs["accuracy"]) == pytest.approx(0.5)


def _write_png(path, value):
    image = np.full((10, 12, 1), value, np.uint8)
    tf.io.write_file(path, tf.io.encode_png(image))


def test_a_folder_of_images_is_read_resized_to_the_models_input(tmp_path):
    (tmp_path / "pile" / "deeper").mkdir(parents=True)
    _write_png(str(tmp_path / "pile" / "a.png"), 10)
    _write_png(str(tmp_path / "pile" / "deeper" / "b.png"), 200)
    (tmp_path / "pile" / "notes.txt").write_text("not an image")
    images = unlabelled.read_images(
        str(tmp_path / "pile"), input_shape=(28, 28, 1), input_scale=255.0
    )
    assert images.shape == (2, 28, 28, 1) and images.dtype == np.uint8
    assert image_files.streams(images)  # paths, decoded when a pipeline reads them
    assert sorted(int(i.mean()) for i in images.load()) == [10, 200]


def test_a_folder_beside_images_in_memory_streams_after_them(tmp_path):
    """IDX-sized images in memory, then a folder: the pipeline carries positions
    and yields the array's rows, then the decoded files, in any order asked."""
    from tf_distill.data import batches

    pile = tmp_path / "pile"
    pile.mkdir()
    for value in (10, 20, 30):
        _write_png(str(pile / f"{value}.png"), value)
    files = unlabelled.read_images(
        str(pile), input_shape=(28, 28, 1), input_scale=255.0
    )
    array = np.stack([np.full((28, 28, 1), v, np.uint8) for v in (1, 2)])
    mixed = image_files.ArrayThenFiles(array, files)
    assert len(mixed) == 5 and mixed.shape == (5, 28, 28, 1)
    means = [1, 2, 10, 20, 30]
    np.testing.assert_array_equal(mixed.load().mean(axis=(1, 2, 3)), means)
    labels = np.arange(5)
    shuffled = batches.pipeline(
        mixed, labels, batch_size=2, shuffle_seed=0, epochs=range(1)
    )
    for x, y in shuffled.as_numpy_iterator():  # every image meets its own label
        np.testing.assert_array_equal(x.mean(axis=(1, 2, 3)), np.take(means, y))
    assert mixed[1:4].load().mean(axis=(1, 2, 3)).tolist() == [2, 10, 20]
    with pytest.raises(ValueError, match=r"cannot join"):
        image_files.ArrayThenFiles(array[:, :27], files)


def test_a_folder_of_unlabelled_images_beside_idx_data_distils_end_to_end(
    tiny_config, idx_folder, tmp_path
):
    pile = tmp_path / "pile"
    pile.mkdir()
    for value in range(0, 250, 10):
        _write_png(str(pile / f"{value}.png"), value)
    tiny_config.dataset = "idx"
    tiny_config.data_dir = str(idx_folder)
    tiny_config.distill.transfer_data = str(pile)
    tiny_config.batch_size = 16
    run_dir = run_mode(tiny_config, tmp_path, "all")
    distilled = files.read_json(run_dir.model("distilling").metrics)
    teacher = files.read_json(run_dir.model("teacher").metrics)
    assert distilled["train_examples"] == teacher["train_examples"] + 25
    assert distilled["teacher"] == "cached"


def _write_idx_images(path, shape):
    header = (2051).to_bytes(4, "big") + b"".join(n.to_bytes(4, "big") for n in shape)
    with gzip.open(path, "wb") as f:
        f.write(header + bytes(int(np.prod(shape))))


def test_images_that_cannot_fit_are_refused_naming_the_key(tmp_path):
    idx_file = str(tmp_path / "x-idx3-ubyte.gz")
    _write_idx_images(idx_file, (3, 27, 28))
    with pytest.raises(ValueError, match=r"transfer_data=.*\(27, 28\).*\(28, 28, 1\)"):
        unlabelled.read_images(idx_file, input_shape=(28, 28, 1), input_scale=255.0)
    _write_idx_images(idx_file, (3, 28, 28))
    assert unlabelled.read_images(
        idx_file, input_shape=(28, 28, 1), input_scale=255.0
    ).shape == (3, 28, 28, 1)
    with pytest.raises(ValueError, match=r"0\.\.16"):  # digits' pixels
        unlabelled.read_images(idx_file, input_shape=(8, 8, 1), input_scale=16.0)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="holds no images"):
        unlabelled.read_images(
            str(tmp_path / "empty"), input_shape=(28, 28, 1), input_scale=255.0
        )


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("labeled_fraction", 0.0, r"config.labeled_fraction=0.0: expected"),
        ("labeled_fraction", 1.5, r"config.labeled_fraction=1.5"),
        ("distill.transfer_data", "train", r"labeled_fraction=1.0 withholds none"),
        ("distill.transfer_data", "/no/such/pile", r"no such file or folder"),
    ],
)
def test_bad_values_are_refused_before_any_work(key, value, message):
    config = default.base_config()
    set_key(config, key, value)
    with pytest.raises(ValueError, match=message):
        checks.validate(config)


def test_a_run_with_few_labels_distils_on_every_image(tiny_config, tmp_path):
    tiny_config.labeled_fraction = 0.2
    tiny_config.distill.transfer_data = "train"
    run_dir = run_mode(tiny_config, tmp_path)
    read = lambda name: files.read_json(  # noqa: E731
        os.path.join(run_dir.root, name, "metrics.json")
    )
    teacher, alone, distilled = read("teacher"), read("student"), read("distilling")
    labelled, unlabelled = 258, 1035  # 20% of digits' 1,293 training images
    assert teacher["train_examples"] == alone["train_examples"] == labelled
    assert distilled["train_examples"] == labelled + unlabelled
    assert teacher["data"]["train_unlabeled"] == unlabelled
    # The teacher's logits were cached for every image the student trains on.
    assert distilled["teacher"] == "cached"


@needs_shared_data("mnist")
def test_the_mnist_training_images_serve_as_an_idx_transfer_file():
    path = os.path.join(SHARED_DATA, "mnist", "train-images-idx3-ubyte.gz")
    images = unlabelled.read_images(path, input_shape=(28, 28, 1), input_scale=255.0)
    assert images.shape == (60000, 28, 28, 1)


@pytest.mark.parametrize(
    "name",
    sorted(
        f[:-3]
        for f in os.listdir(os.path.join(os.path.dirname(__file__), "..", "configs"))
        if f.endswith(".py") and f != "__init__.py"
    ),
)
def test_every_shipped_config_is_valid(name):
    import importlib

    config = importlib.import_module(f"configs.{name}").get_config()
    if config.task == "diffusion":  # that task's own keys and checks
        from tf_distill.tasks.diffusion import settings

        settings.validate(config)
        return
    checks.validate(config)
    if name == "default":  # the main job: the few-labels case
        assert config.labeled_fraction < 1 and config.distill.transfer_data == "train"
        assert config.num_seeds >= 3  # its verdict needs seeds
