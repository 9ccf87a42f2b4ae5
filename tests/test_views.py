"""Cached augmented views (tf_distill/teacher/views.py): the student trains on exactly
the pixels the teacher saw, the views survive a resume, the augmentations do what
they say, and a run says which path fed the teacher's logits."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import run_mode, set_key
from tf_distill.data import augment
from tf_distill.teacher import views

SPEC = augment.AugmentSpec(translate=2, flip="horizontal", rotation=15.0, mixup=0.4)


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits

    d = load_digits()
    return d.images[:40, :, :, None].astype(np.uint8), d.target[:40].astype(np.int32)


def _teacher():
    keras.utils.set_random_seed(0)
    return keras.Sequential(
        [keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(10)]
    )


def _alone(x, params, i, v):
    """View v of image i, rendered on its own."""
    p = params[i : i + 1, v]
    partner = x[int(p[0, views.PARAMS.index("partner")])][None]
    return views.render(x[i : i + 1], partner, tf.constant(p)).numpy()[0]


def test_the_student_trains_on_the_pixels_the_teacher_saw(digits):
    x, y = digits
    params = views.draw_params(SPEC, len(x), 3, seed=5)
    teacher = _teacher()
    logits = views.teacher_logits(teacher, x, params, batch_size=7, dtype="float32")
    ds = views.pipeline(
        x, y, params, logits, batch_size=6, shuffle_seed=1, epochs=range(2)
    )
    seen = 0
    for pixels, labels, teacher_logits in ds:
        columns = (pixels.numpy(), labels.numpy(), teacher_logits)
        for image, label, row in zip(*columns, strict=True):
            # Which image and view is this? The one whose stored logits it carries.
            i, v = np.argwhere(np.all(np.isclose(logits, row.numpy()), axis=-1))[0]
            assert y[i] == label
            np.testing.assert_array_equal(image, _alone(x, params, i, v))
            np.testing.assert_allclose(
                teacher(image[None]).numpy()[0], row.numpy(), rtol=1e-5, atol=1e-5
            )
            seen += 1
    assert seen == 2 * len(x)


def test_views_of_image_files_are_those_of_the_same_images_in_memory(digits, tmp_path):
    """An image folder's files are read by index (a mixup partner too): the
    teacher's logits and the student's pixels equal the in-memory path's."""
    from tf_distill.data.image_files import ImageFiles

    x, y = digits
    paths = []
    for i, image in enumerate(x):
        paths.append(str(tmp_path / f"{i}.png"))
        tf.io.write_file(paths[-1], tf.io.encode_png(image))
    files = ImageFiles(np.array(paths), (8, 8, 1))
    params = views.draw_params(SPEC, len(x), 2, seed=5)
    teacher = _teacher()
    kept = views.teacher_logits(teacher, x, params, batch_size=7, dtype="float32")
    read = views.teacher_logits(teacher, files, params, batch_size=7, dtype="float32")
    np.testing.assert_allclose(read, kept, rtol=1e-6, atol=1e-6)
    options = dict(batch_size=6, shuffle_seed=1, epochs=range(1))
    in_memory = views.pipeline(x, y, params, kept, **options)
    from_files = views.pipeline(files, y, params, kept, **options)
    for a, b in zip(in_memory, from_files, strict=True):
        for column_a, column_b in zip(a, b, strict=True):
            np.testing.assert_array_equal(column_a.numpy(), column_b.numpy())


def test_the_views_survive_a_resume(digits):
    x, y = digits
    first = views.draw_params(SPEC, len(x), 4, seed=9)
    np.testing.assert_array_equal(first, views.draw_params(SPEC, len(x), 4, seed=9))
    assert not np.array_equal(first, views.draw_params(SPEC, len(x), 4, seed=10))
    logits = np.random.default_rng(0).normal(size=(len(x), 4, 10)).astype(np.float32)

    def batches(epochs):
        ds = views.pipeline(
            x, y, first, logits, batch_size=8, shuffle_seed=3, epochs=epochs
        )
        return [tuple(t.numpy() for t in batch) for batch in ds]

    whole, resumed = batches(range(3)), batches(range(2, 3))
    per_epoch = len(resumed)
    for a, b in zip(whole[2 * per_epoch :], resumed, strict=True):
        for column_a, column_b in zip(a, b, strict=True):
            np.testing.assert_array_equal(column_a, column_b)
    # Each epoch picks views anew: not always view 0.
    picks = {tuple(np.round(b[2][:, 0], 4)) for b in whole}
    assert len(picks) > per_epoch


def test_each_augmentation_does_what_it_says():
    x = np.zeros((1, 5, 5, 1), np.float32)
    x[0, 1, 1, 0] = 10.0
    partner = np.full_like(x, 2.0)
    names = views.PARAMS

    def render(**values):
        p = np.zeros((1, len(names)), np.float32)
        p[0, names.index("mix")] = 1.0
        for name, value in values.items():
            p[0, names.index(name)] = value
        return views.render(x, partner, tf.constant(p)).numpy()[0, ..., 0]

    shifted = render(dx=1, dy=2)
    assert shifted[3, 2] == pytest.approx(10.0) and shifted.sum() == pytest.approx(10)
    np.testing.assert_allclose(render(flip_h=1), x[0, :, ::-1, 0])
    np.testing.assert_allclose(render(flip_v=1), x[0, ::-1, :, 0])
    turned = render(angle=np.pi / 2)
    assert turned.sum() == pytest.approx(10.0, abs=1e-4)
    assert turned[1, 3] == pytest.approx(10.0, abs=1e-4)  # a quarter turn, clockwise
    np.testing.assert_allclose(render(mix=0.25), 0.25 * x[0, ..., 0] + 0.75 * 2.0)


def test_distilling_on_cached_views_says_so_and_bad_settings_are_refused(
    tiny_config, tmp_path
):
    config = tiny_config
    set_key(config, "augment.translate", 1)
    set_key(config, "distill.cached_views", 2)
    set_key(config, "distill.cache_top_k", 3)
    run_dir = run_mode(config, tmp_path)
    metrics = json.loads(open(run_dir.model("distilling").metrics).read())
    assert metrics["teacher"] == "cached_views" and metrics["cached_views"] == 2
    assert metrics["cache_top_k"] == 3
    report = open(run_dir.file("report.md")).read()
    assert "teacher on 2 cached views per image, top 3 logits kept" in report

    from tf_distill.tasks.classifier import checks

    set_key(config, "augment.translate", 0)
    with pytest.raises(ValueError, match="config.distill.cached_views=2: views are"):
        checks.validate(config)
    set_key(config, "augment.translate", 1)
    set_key(config, "augment.color_jitter", 0.2)
    with pytest.raises(ValueError, match="config.augment.color_jitter=0.2"):
        checks.validate(config)
    set_key(config, "augment.color_jitter", 0.0)
    with config.ignore_type():  # as a config file could set it
        set_key(config, "distill.validation_teacher", "yes")
    with pytest.raises(
        ValueError, match="config.distill.validation_teacher='yes': expected True/False"
    ):
        checks.validate(config)
    with config.ignore_type():
        set_key(config, "distill.validation_teacher", False)
    set_key(config, "distill.cache_top_k", -1)
    with pytest.raises(ValueError, match="config.distill.cache_top_k=-1: expected"):
        checks.validate(config)
    set_key(config, "distill.cache_top_k", 3)
    set_key(config, "distill.cache_teacher_logits", False)
    with pytest.raises(ValueError, match="config.distill.cache_top_k=3: nothing is"):
        checks.validate(config)


def test_views_the_epochs_cannot_show_or_memory_cannot_hold_are_refused(
    tiny_config, tmp_path, monkeypatch
):
    from tf_distill.tasks.classifier import checks, data_checks

    set_key(tiny_config, "augment.translate", 1)
    set_key(tiny_config, "distill.cached_views", 3)  # the student trains 2 epochs
    with pytest.raises(ValueError, match="cached_views=3: each epoch shows one view"):
        checks.validate(tiny_config)

    # 1,293 images x 2 views x (10 logits + 7 parameters) x 4 bytes = 175,848 bytes.

    assert views.views_bytes(1293, 2, 10, "float32", 0) == 175_848
    assert views.views_bytes(1293, 2, 10, "float16", 3) == 1293 * 2 * (8 + 6 + 28)
    set_key(tiny_config, "distill.cached_views", 2)
    monkeypatch.setattr(data_checks, "free_memory", lambda: 300_000)
    with pytest.raises(
        ValueError, match=r"would take 0.2 MB .* over half the 0.3 MB free"
    ):
        run_mode(tiny_config, tmp_path)
    assert not (tmp_path / "w").exists()
