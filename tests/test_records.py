"""TFRecord data (config.dataset="tfrecord"): streamed from its files, each record
meeting its own label and cached logits, bad records named before any training."""

import shutil

import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import run_mode, tiny
from tf_distill.data import batches, image_files, unlabelled
from tf_distill.tasks.classifier import settings as config_lib
from tf_distill.training import distribute

SIZE = 12  # pixels a side


def identity_image(n: int) -> np.ndarray:
    """A 12x12 RGB image that names its record: n in two pixels, and the class
    colour (n % 3) everywhere else, so a model can learn the label."""
    image = np.full((SIZE, SIZE, 3), 30, np.uint8)
    image[..., n % 3] = 220
    image[0, 0] = (n % 256, n // 256, 0)
    return image


def identity(images) -> np.ndarray:
    """The record numbers identity_image wrote into `images` (float or uint8)."""
    images = np.asarray(images).astype(np.int64)
    return images[..., 0, 0, 0] + 256 * images[..., 0, 0, 1]


def example(image_bytes: bytes, label: int) -> bytes:
    feature = {
        "image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[image_bytes])),
        "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
    }
    proto = tf.train.Example(features=tf.train.Features(feature=feature))
    return proto.SerializeToString()


def write_records(path, numbers, corrupt=()):
    """One TFRecord file of identity images labelled n % 3; the numbers in
    `corrupt` get bytes no decoder reads."""
    with tf.io.TFRecordWriter(str(path)) as writer:
        for n in numbers:
            data = tf.io.encode_png(identity_image(n)).numpy()
            writer.write(example(b"not an image" if n in corrupt else data, n % 3))


@pytest.fixture
def record_dir(tmp_path):
    """120 training records in 3 shards (interleaved numbers), 30 test records."""
    root = tmp_path / "records"
    root.mkdir()
    for shard in range(3):
        write_records(root / f"train-{shard}.tfrecord", range(shard, 120, 3))
    write_records(root / "test-0.tfrecord", range(1000, 1030))
    return root


def record_config(root, **overrides):
    config = tiny("records")
    config.dataset = "tfrecord"
    config.data.train_files = str(root / "train-*.tfrecord")
    config.data.test_files = str(root / "test-*.tfrecord")
    config.image_size = (SIZE, SIZE)
    for key, value in overrides.items():
        section, _, field = key.rpartition(".")
        (config[section] if section else config)[field] = value
    return config


def test_records_load_with_a_validation_split_hashed_from_file_and_index(record_dir):
    splits = config_lib.load_data(record_config(record_dir))
    assert splits.source.startswith("tfrecord:") and splits.num_classes == 3
    assert len(splits.y_train) + len(splits.y_val) == 120
    assert 4 <= len(splits.y_val) <= 24  # about a tenth
    assert len(splits.y_test) == 30 and splits.input_shape == (SIZE, SIZE, 3)
    x_val = image_files.as_array(splits.x_val)
    np.testing.assert_array_equal(identity(x_val) % 3, splits.y_val)
    val = set(identity(x_val))
    # Elsewhere, and with a fourth shard joining, the same records validate.
    moved = record_dir.parent / "elsewhere"
    shutil.copytree(record_dir, moved)
    write_records(moved / "train-3.tfrecord", range(2000, 2030))
    again = config_lib.load_data(record_config(moved))
    assert val <= set(identity(image_files.as_array(again.x_val)))
    assert len(again.y_train) + len(again.y_val) == 150


def test_every_streamed_record_meets_its_own_row_in_every_epoch_and_after_a_resume(
    record_dir,
):
    splits = config_lib.load_data(record_config(record_dir))
    x, y = splits.x_train, splits.y_train
    numbers = identity(image_files.as_array(x))  # in the split's own order
    extra = numbers.astype(np.float32)[:, None]  # a "logits" row naming its record

    def epochs(run):
        ds = batches.pipeline(
            x, y, batch_size=16, extra=extra, shuffle_seed=3, epochs=run
        )
        seen = []
        for images, labels, rows in ds.as_numpy_iterator():
            got = identity(images)
            np.testing.assert_array_equal(got, rows[:, 0])
            np.testing.assert_array_equal(got % 3, labels)
            seen.append(got)
        return np.concatenate(seen).reshape(len(run), len(x))

    whole = epochs(range(3))
    for epoch in whole:
        assert sorted(epoch) == sorted(numbers)  # each record once an epoch
    assert not np.array_equal(whole[0], whole[1])  # and a new order each epoch
    np.testing.assert_array_equal(epochs(range(1, 3)), whole[1:])  # resumed
    # Unshuffled, the split streams in its own order (the teacher's pass).
    ds = batches.pipeline(x, batch_size=7)
    np.testing.assert_array_equal(
        np.concatenate([identity(b) for (b,) in ds.as_numpy_iterator()]), numbers
    )


def test_two_workers_decode_disjoint_halves_of_every_batch_of_records(record_dir):
    """Under several workers each decodes only its share of each global batch
    (distribute.worker_batches); together the shares are one worker's batches."""
    splits = config_lib.load_data(record_config(record_dir))
    x, y = splits.x_train, splits.y_train
    options = dict(batch_size=16, shuffle_seed=3, epochs=range(2))
    whole = [identity(b) for b, _ in batches.pipeline(x, y, **options)]
    halves = [
        [identity(b) for b, _ in batches.pipeline(x, y, share=share, **options)]
        for share in (distribute.Share(0, 1, 2), distribute.Share(1, 1, 2))
    ]
    for batch, first, second in zip(whole, *halves, strict=True):
        assert len(first) == len(batch) // 2
        np.testing.assert_array_equal(np.concatenate([first, second]), batch)


def test_withheld_records_join_the_labelled_ones_in_file_order(record_dir):
    config = record_config(record_dir, labeled_fraction=0.25)
    splits = unlabelled.keep_labels(
        config_lib.load_data(config), config.labeled_fraction, config.split_seed
    )
    images, labels = unlabelled.distillation_set(splits, unlabelled.TRAIN)
    assert len(labels) == len(splits.y_train) + len(splits.x_unlabeled)
    numbers = identity(image_files.as_array(images))
    labelled = labels != unlabelled.UNLABELED
    np.testing.assert_array_equal(numbers[labelled] % 3, labels[labelled])
    assert set(numbers[~labelled]) == set(
        identity(image_files.as_array(splits.x_unlabeled))
    )


def test_a_record_that_cannot_be_decoded_is_named_before_any_training(record_dir):
    write_records(record_dir / "train-1.tfrecord", range(1, 120, 3), corrupt={4, 7})
    with pytest.raises(
        ValueError,
        match=r"^2 record\(s\) cannot be read: train-1\.tfrecord:1, "
        r"train-1\.tfrecord:2 \(.*skip_bad_files=True",
    ):
        config_lib.load_data(record_config(record_dir))
    config = record_config(record_dir, **{"data.skip_bad_files": True})
    splits = config_lib.load_data(config)
    assert len(splits.y_train) + len(splits.y_val) == 118


def test_a_split_whose_every_record_is_bad_is_refused_even_when_skipping(
    record_dir,
):
    write_records(
        record_dir / "test-0.tfrecord", range(1000, 1030), corrupt=range(9999)
    )
    config = record_config(record_dir, **{"data.skip_bad_files": True})
    with pytest.raises(
        ValueError, match=r"^30 record\(s\) cannot be read: .*none of the records can"
    ):
        config_lib.load_data(config)


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("data.label_feature", "class", r"no int64_list feature 'class' .*label"),
        ("data.train_files", "/nowhere/*.tfrecord", r"train_files=.* matches no"),
        ("data.test_files", None, r"needs config\.data\.test_files"),
    ],
)
def test_bad_record_settings_are_named(record_dir, key, value, message):
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        config_lib.load_data(record_config(record_dir, **{key: value}))


def test_cached_views_with_mixup_are_refused_for_records_read_in_order(record_dir):
    from tf_distill.tasks.classifier import checks

    config = record_config(record_dir, **{"distill.cached_views": 2})
    config.augment.translate, config.augment.mixup = 1, 0.4
    with pytest.raises(ValueError, match=r"augment.mixup=0.4: .*read in order"):
        checks.validate(config)
    config.augment.mixup = 0.0  # views without a partner stream
    checks.validate(config)


def test_streamed_records_show_the_views_an_array_would_with_their_own_logits(
    record_dir,
):
    """Each epoch every record shows the view an array of the same images would
    show in that epoch (same seed), its pixels rendered from its own image and
    its logits row that view's; the teacher's pass over records in order gives
    an array's logits, a range of rows too."""
    from tf_distill.data import augment
    from tf_distill.teacher import views

    splits = config_lib.load_data(record_config(record_dir))
    x, y = splits.x_train, splits.y_train
    images = image_files.as_array(x)
    n, k = len(y), 3
    spec = augment.AugmentSpec(translate=2, flip="horizontal")
    params = views.draw_params(spec, n, k, seed=7)
    # Row (i, v) of the "logits" names its image and view.
    named = np.stack(np.meshgrid(np.arange(n), np.arange(k), indexing="ij"), -1)
    logits = named.astype(np.float32)
    options = dict(batch_size=16, shuffle_seed=5, epochs=range(2))
    streamed = list(views.pipeline(x, y, params, logits, **options))
    from_array = list(views.pipeline(images, y, params, logits, **options))
    steps = -(-n // 16)
    assert len(streamed) == len(from_array) == 2 * steps
    for epoch in range(2):
        part = slice(epoch * steps, (epoch + 1) * steps)
        shown = [
            np.concatenate([b[2].numpy() for b in run[part]])
            for run in (streamed, from_array)
        ]
        assert sorted(map(tuple, shown[0])) == sorted(map(tuple, shown[1]))
        assert sorted(shown[0][:, 0]) == list(range(n))  # every record once
    for pixels, labels, teacher in streamed[:3]:
        i, v = teacher.numpy().astype(int).T
        np.testing.assert_array_equal(labels, y[i])
        own = images[i]
        expected = views.render(own, own, params[i, v])
        np.testing.assert_array_equal(pixels, expected)
    model = tf.keras.Sequential(
        [
            tf.keras.Input((SIZE, SIZE, 3)),
            tf.keras.layers.Flatten(),
            tf.keras.layers.Dense(3),
        ]
    )
    whole = views.teacher_logits(model, images, params, batch_size=32, dtype="float32")
    some = views.teacher_logits(
        model, x, params, batch_size=32, dtype="float32", rows=range(10, 50)
    )
    np.testing.assert_allclose(some, whole[10:50], rtol=1e-5, atol=1e-5)


def test_a_file_that_is_not_tfrecord_is_named(record_dir):
    (record_dir / "train-1.tfrecord").write_bytes(b"\x00" * 40)
    with pytest.raises(ValueError, match=r"train-1\.tfrecord is not a readable"):
        config_lib.load_data(record_config(record_dir))


def test_records_train_and_distil_end_to_end_with_the_cache_reused(
    record_dir, tmp_path
):
    """Teacher, student alone and distilled student on streamed records; the
    teacher's logits cached on disk once and read back by a second run."""
    from tf_distill.outputs import files

    config = record_config(
        record_dir,
        batch_size=16,
        **{"teacher.epochs": 1, "student.epochs": 1},
    )
    run_dir = run_mode(config, tmp_path)
    metrics = files.read_json(run_dir.model("distilling").metrics)
    assert metrics["teacher"] == "cached" and metrics["teacher_pass_seconds"] > 0
    assert metrics["data"]["source"].startswith("tfrecord:")
    config.distill.temperature = 2.0
    config.finished = "replace"
    run_mode(config, tmp_path, "distilling")
    metrics = files.read_json(run_dir.model("distilling").metrics)
    assert metrics["teacher_pass_seconds"] == 0.0  # read back, not recomputed
    # Shifted views of the records, streamed: the teacher's pass over them.
    config.distill.cached_views, config.augment.translate = 1, 1
    run_mode(config, tmp_path, "distilling")
    metrics = files.read_json(run_dir.model("distilling").metrics)
    assert metrics["teacher"] == "cached_views" and metrics["cached_views"] == 1
    assert metrics["teacher_pass_seconds"] > 0


def test_a_long_pass_says_how_far_it_is_where_no_bar_shows(caplog, capsys):
    from tf_distill.training import progress

    with caplog.at_level("INFO", logger="absl"):
        with progress.Pass("Reading records", 10, unit="records", every=0.0) as shown:
            shown.update(4)
            shown.update(6)  # the end: no line saying it is not there yet
        with progress.Pass("Exporting student", 3, unit="files") as shown:
            shown.update(3)  # quicker than 10 s: no closing line
    printed = capsys.readouterr().out.splitlines()  # plain lines: not a terminal
    assert printed[0].startswith("Reading records: 4 of 10 records, "), printed
    assert printed[1].startswith("Reading records: 10 records in "), printed
    assert len(printed) == 2, printed
    assert "Reading records: 4 of 10 records" in caplog.text  # and run.log's
    assert "10 of 10" not in caplog.text
