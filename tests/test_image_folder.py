"""Image folders, Keras Applications models and augmentation, on generated images."""

import json
import os
import shutil

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import REPO
from tests.test_main import run_main
from tf_distill.data import augment, batches, image_files, image_folder
from tf_distill.distillation.distiller import Distiller
from tf_distill.models import architectures
from tf_distill.tasks.classifier import settings as config_lib

CLASSES = ("daisy", "rose", "tulip")


def write_images(folder, per_class, *, seed, size=(20, 24), classes=CLASSES):
    """`per_class` PNGs per class; each class has its own dominant colour."""
    rng = np.random.default_rng(seed)
    for label, name in enumerate(classes):
        (folder / name).mkdir(parents=True)
        for i in range(per_class):
            image = rng.integers(0, 60, (*size, 3), dtype=np.uint8)
            image[..., label] += 180
            png = tf.io.encode_png(image).numpy()
            (folder / name / f"{i}.png").write_bytes(png)


@pytest.fixture
def image_dir(tmp_path):
    root = tmp_path / "images"
    write_images(root / "train", 12, seed=0)
    write_images(root / "val", 4, seed=1)
    return root


def image_config(image_dir, **overrides):
    from configs import image_folder

    config = image_folder.get_config()
    config.name = "image_folder"
    config.data_dir = str(image_dir)
    config.image_size = (32, 32)
    for key, value in overrides.items():
        section, _, field = key.rpartition(".")
        (config[section] if section else config)[field] = value
    return config


def test_an_image_folder_loads_with_honest_splits(image_dir):
    splits = config_lib.load_data(image_config(image_dir, validation_fraction=0.25))
    assert splits.class_names == CLASSES
    # val/ is the test split; validation is hashed off train/ (7 of 36 here, the
    # same on every machine: the hash of "daisy/0.png" ... decides).
    assert splits.sizes() == {"train": 29, "validation": 7, "test": 12}
    everything = set(splits.x_train.paths) | set(splits.x_val.paths)
    assert len(everything) == 36
    assert splits.x_train.dtype == np.uint8 and splits.input_shape == (32, 32, 3)
    assert splits.input_scale == 255.0
    assert sorted(np.bincount(splits.y_test)) == [4, 4, 4]
    # The class colour survives decoding and resizing: red images are mostly red.
    red = image_files.as_array(splits.x_test[splits.y_test == 0])
    red = red.astype(float).mean(axis=(0, 1, 2))
    assert red[0] > red[1] + 100 and red[0] > red[2] + 100


def test_the_validation_split_hangs_on_the_paths_not_the_listing(image_dir):
    """The same files go to validation whatever order the folder lists them in,
    wherever it lives, and when more images join."""
    config = image_config(image_dir, validation_fraction=0.25)
    first = config_lib.load_data(config)
    val = {os.path.relpath(p, image_dir) for p in first.x_val.paths}
    moved = image_dir.parent / "elsewhere"
    shutil.copytree(image_dir, moved)
    for extra in range(12, 40):  # more roses, written in reverse order
        image = tf.io.encode_png(np.full((20, 24, 3), 200, np.uint8)).numpy()
        (moved / "train" / "rose" / f"{51 - extra}.png").write_bytes(image)
    again = config_lib.load_data(image_config(moved, validation_fraction=0.25))
    val_again = {os.path.relpath(p, moved) for p in again.x_val.paths}
    assert val <= val_again  # the first 36 files' split did not move
    assert len(again.x_train) + len(again.x_val) == 64


def test_a_file_that_cannot_be_read_is_named_before_any_training(image_dir):
    (image_dir / "train" / "rose" / "broken.png").write_bytes(b"not a png at all")
    (image_dir / "val" / "tulip" / "cut.png").write_bytes(
        tf.io.encode_png(np.zeros((8, 8, 3), np.uint8)).numpy()[:20]
    )
    with pytest.raises(
        ValueError,
        match=r"^2 image file\(s\) cannot be read: .*"
        r"broken\.png, .*cut\.png \(.*skip_bad_files=True",
    ):
        config_lib.load_data(image_config(image_dir))
    splits = config_lib.load_data(
        image_config(image_dir, **{"data.skip_bad_files": True})
    )
    assert len(splits.x_train) + len(splits.x_val) == 36
    assert len(splits.x_test) == 12  # cut.png (in val/, the test split here) skipped
    assert not any("broken" in p or "cut" in p for p in splits.x_test.paths)


def test_streamed_batches_hold_the_decoded_images(image_dir):
    splits = config_lib.load_data(image_config(image_dir))
    whole = image_files.as_array(splits.x_train)
    ds = batches.pipeline(splits.x_train, splits.y_train, batch_size=5)
    got = np.concatenate([x.numpy() for x, _ in ds])
    np.testing.assert_array_equal(got, whole.astype(np.float32))
    shuffled = batches.pipeline(
        splits.x_train, splits.y_train, batch_size=5, shuffle_seed=1, epochs=range(1)
    )
    pairs = {
        (x.tobytes(), int(y))
        for xb, yb in shuffled
        for x, y in zip(xb.numpy(), yb.numpy(), strict=True)
    }
    want = {
        (x.astype(np.float32).tobytes(), int(y))
        for x, y in zip(whole, splits.y_train, strict=True)
    }
    assert pairs == want


def test_a_test_folder_makes_val_the_validation_split(image_dir):
    write_images(image_dir / "test", 2, seed=2)
    splits = config_lib.load_data(image_config(image_dir))
    assert splits.sizes() == {"train": 36, "validation": 12, "test": 6}


def test_an_empty_image_folder_is_named(image_dir):
    (image_dir / "empty" / "train").mkdir(parents=True)
    with pytest.raises(ValueError, match=r"empty/train has no class sub-folders"):
        config_lib.load_data(image_config(image_dir / "empty"))


def test_a_class_folder_without_images_is_named(image_dir):
    (image_dir / "train" / "weed").mkdir()
    (image_dir / "train" / "weed" / "notes.txt").write_text("no images here")
    with pytest.raises(ValueError, match=r"train/weed holds no images"):
        config_lib.load_data(image_config(image_dir))


def test_val_must_have_the_training_classes(image_dir):
    (image_dir / "val" / "rose").rename(image_dir / "val" / "roses")
    with pytest.raises(ValueError, match=r"val has classes .*'roses'.* training"):
        config_lib.load_data(image_config(image_dir))


def test_a_missing_val_folder_is_named(image_dir):
    shutil.rmtree(image_dir / "val")
    with pytest.raises(FileNotFoundError, match=r"Image folder not found: .*val"):
        config_lib.load_data(image_config(image_dir))


@pytest.mark.slow
def test_an_image_folder_trains_end_to_end_with_every_model(image_dir, tmp_path):
    proc = run_main(
        tmp_path,
        "--model=all",
        "--workdir=run",
        f"--config.data_dir={image_dir}",
        "--config.image_size=(32,32)",
        "--config.batch_size=16",  # the hashed split leaves 31 training images
        "--config.teacher.epochs=2",
        "--config.student.epochs=2",
        "--config.early_stopping.patience=0",
        "--config.export.tflite=False",  # LiteRT files: tests/test_export.py
        config=f"{REPO}/configs/image_folder.py",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = tmp_path / "run"
    # Info lines go to run.log; the terminal shows warnings and the summary.
    assert (
        "not cached: the training images are augmented" in (run / "run.log").read_text()
    )
    report = json.loads((run / "report.json").read_text())
    assert set(report["models"]) == {"teacher", "student", "distilling"}
    for model in ("teacher", "student", "distilling"):
        names = (run / model / "class_names.txt").read_text().splitlines()
        assert names == list(CLASSES)
    served = tf.saved_model.load(str(run / "distilling" / "saved_model"))
    got = served.signatures["class_names"]()["class_names"].numpy()
    assert [n.decode() for n in got] == list(CLASSES)
    out = served.signatures["serving_default"](
        pixels=tf.zeros([1, 32, 32, 3], tf.uint8)
    )
    assert out["class_name"].numpy()[0].decode() in CLASSES


def three_class_model(model_config, input_shape, input_scale):
    return architectures.build(
        config_lib.model_spec(model_config),
        input_shape=input_shape,
        num_classes=3,
        input_scale=input_scale,
        name="teacher",
    )


@pytest.mark.parametrize("arch", sorted(architectures.APPLICATIONS))
def test_keras_applications_build_as_teacher_or_student(arch):
    from configs import default

    model_config = default.base_config().teacher
    model_config.arch = arch
    model = three_class_model(model_config, (32, 32, 3), 255.0)
    assert model.output_shape == (None, 3)
    assert model.get_layer("logits").dtype == "float32"


def test_application_weights_must_exist_and_fit_the_arch():
    from configs import default

    model_config = default.base_config().teacher
    model_config.weights = "/nowhere/weights.h5"
    with pytest.raises(ValueError, match="is for Keras Applications"):
        three_class_model(model_config, (8, 8, 1), 16.0)
    model_config.arch = "mobilenet_v3_small"
    with pytest.raises(FileNotFoundError, match="/nowhere/weights.h5"):
        three_class_model(model_config, (32, 32, 3), 255.0)


class Recording(keras.Model):
    """Wraps a model and keeps every input it is called on (eager runs only)."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner
        self.seen = []

    def call(self, x, training=False):
        self.seen.append(np.array(x))
        return self.inner(x, training=training)


def _first_epoch(splits, augment_layer, *, batch_size):
    """The shuffled training batches of epoch 0, through `augment_layer`."""
    return batches.pipeline(
        splits.x_train,
        splits.y_train,
        batch_size=batch_size,
        shuffle_seed=0,
        epochs=range(1),
        augment=augment_layer,
    )


def test_teacher_and_student_see_the_same_augmented_batch(image_dir):
    config = image_config(image_dir)
    splits = config_lib.load_data(config)
    layer = augment.build(
        config_lib.classifier_settings(config).augment,
        input_shape=splits.input_shape,
        input_scale=255.0,
        seed=0,
    )

    def first_epoch(augment_layer):
        return _first_epoch(splits, augment_layer, batch_size=8)

    train_ds = first_epoch(layer)
    teacher = Recording(
        architectures.build_for(
            config_lib.model_spec(config.student), splits, name="teacher"
        )
    )
    student = Recording(
        architectures.build_for(
            config_lib.model_spec(config.student), splits, name="student"
        )
    )
    distiller = Distiller(student=student, teacher=teacher, temperature=2.0, alpha=0.5)
    distiller.compile(optimizer="adam", run_eagerly=True)
    distiller.fit(train_ds.take(1), epochs=1, verbose=0)

    assert len(teacher.seen) == 1 and len(student.seen) == 1
    np.testing.assert_array_equal(teacher.seen[0], student.seen[0])
    # It really was augmented: not the raw images of that batch.
    raw_x = next(iter(first_epoch(None)))[0].numpy()
    assert not np.array_equal(student.seen[0], raw_x)
    # Evaluation pipelines and models carry no augmentation.
    eval_x = next(iter(batches.pipeline(splits.x_val, splits.y_val, batch_size=8)))[0]
    first = image_files.as_array(splits.x_val[:8]).astype(np.float32)
    np.testing.assert_array_equal(eval_x.numpy(), first)
    assert "augment" not in [layer.name for layer in student.inner.layers]


def test_color_jitter_needs_rgb():
    cfg = augment.AugmentSpec(color_jitter=0.2)
    with pytest.raises(ValueError, match="color_jitter=0.2 needs RGB images"):
        augment.build(cfg, input_shape=(8, 8, 1), input_scale=16.0, seed=0)


def test_mixup_mixes_what_teacher_and_student_both_see(tiny_config):
    """Function matching: the distilled student's batches are mixed images, the
    same pixels for teacher and student; the student alone gets no mixup."""
    tiny_config.augment.mixup = 0.4
    tiny_config.distill.alpha = 0.0
    splits = config_lib.load_data(tiny_config)
    spec = config_lib.classifier_settings(tiny_config).augment
    options = {"input_shape": splits.input_shape, "input_scale": 16.0, "seed": 0}
    assert augment.build(spec, **options) is None  # the student alone: none
    layer = augment.build(spec, distilling=True, **options)
    train_ds = _first_epoch(splits, layer, batch_size=16)
    student_spec = config_lib.model_spec(tiny_config.student)
    teacher = Recording(architectures.build_for(student_spec, splits, name="teacher"))
    student = Recording(architectures.build_for(student_spec, splits, name="student"))
    distiller = Distiller(student=student, teacher=teacher, temperature=1.0, alpha=0.0)
    distiller.compile(optimizer="adam", run_eagerly=True)
    distiller.fit(train_ds.take(1), epochs=1, verbose=0)
    np.testing.assert_array_equal(teacher.seen[0], student.seen[0])
    raw = next(iter(_first_epoch(splits, None, batch_size=16)))[0].numpy()
    mixed = student.seen[0]
    # Each image lies between itself and its partner (the next of the batch),
    # and the mixing moved it: fractions of pixel values appear.
    partner = np.roll(raw, 1, axis=0)
    low, high = np.minimum(raw, partner), np.maximum(raw, partner)
    assert np.all(mixed >= low - 1e-4) and np.all(mixed <= high + 1e-4)
    assert not np.array_equal(mixed, raw)
    assert np.any(mixed != np.round(mixed))


def test_mixup_needs_the_soft_targets_alone(tiny_config):
    from tf_distill.tasks.classifier import checks

    tiny_config.augment.mixup = 0.2
    with pytest.raises(ValueError, match="mixed images have no single label"):
        checks.validate(tiny_config)


def _small_cnn_config(image_dir, **overrides):
    """image_config with a one-epoch CNN teacher of 8 filters, a two-epoch
    student of 4 units, no colour jitter, no LiteRT files; then `overrides`."""
    small = {
        "teacher.arch": "cnn",
        "teacher.layers": (8,),
        "teacher.epochs": 1,
        "student.layers": (4,),
        "student.epochs": 2,
        "augment.color_jitter": 0.0,
        "export.tflite": False,
    }
    return image_config(image_dir, batch_size=16, **{**small, **overrides})


def test_an_image_folder_streams_through_the_teachers_cache(image_dir, tmp_path):
    """Without augmentation the teacher's logits on the streamed files are cached
    on disk, and a second distilling run reads them back."""
    from tests.conftest import run_mode
    from tf_distill.outputs import files

    config = _small_cnn_config(
        image_dir,
        **{"augment.translate": 0, "augment.flip": "none", "student.epochs": 1},
    )
    run_dir = run_mode(config, tmp_path)
    manifest = files.read_json(run_dir.teacher_cache("train") + "/manifest.json")
    assert manifest["complete"] and manifest["count"] == 31
    metrics = files.read_json(run_dir.model("distilling").metrics)
    assert metrics["teacher"] == "cached" and metrics["teacher_pass_seconds"] > 0
    config.distill.temperature = 2.0
    config.finished = "replace"  # the T=4 student gives way
    run_mode(config, tmp_path, "distilling")
    metrics = files.read_json(run_dir.model("distilling").metrics)
    assert metrics["teacher_pass_seconds"] == 0.0  # read back, not recomputed
    # A client's evaluation decodes the streamed test files a batch at a time.
    run_mode(config, tmp_path, "evaluate")
    evaluation = files.read_json(run_dir.model("distilling").evaluation)
    assert evaluation["saved_model"]["test_accuracy"] == pytest.approx(
        metrics["test_accuracy"], abs=1e-6
    )


def test_cached_views_of_streamed_image_files_distil(image_dir, tmp_path):
    """The views re-render any image by its index: an image folder's files are
    decoded for it, as for the teacher's pass (TFRecord data is refused,
    tests/test_data.py)."""
    from tests.conftest import run_mode
    from tf_distill.outputs import files

    config = _small_cnn_config(
        image_dir,
        **{"augment.mixup": 0.4, "distill.alpha": 0.0, "distill.cached_views": 2},
    )
    run_dir = run_mode(config, tmp_path, "all")
    metrics = files.read_json(run_dir.model("distilling").metrics)
    assert metrics["teacher"] == "cached_views" and metrics["cached_views"] == 2


def test_a_class_whose_images_sit_one_folder_deeper_is_named_with_that_folder(
    tmp_path,
):
    write_images(tmp_path / "data", 2, seed=0)
    cats = tmp_path / "data" / CLASSES[0]
    (cats / "imgs").mkdir()
    for image in list(cats.glob("*.png")):
        image.rename(cats / "imgs" / image.name)
    with pytest.raises(ValueError, match=f"its sub-folder {CLASSES[0]}/imgs does"):
        image_folder.class_names(str(tmp_path / "data"))
