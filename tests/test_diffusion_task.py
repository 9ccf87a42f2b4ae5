"""The diffusion task as users run it (tf_distill/tasks/diffusion/modes.py): a tiny
end-to-end run on real digits that crashes between rounds and resumes, the
shipped sampler loaded with plain TensorFlow, bad configs refused before any
work, and the quality measures against independent computations."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import set_key
from tf_distill.outputs.rundir import RunDir
from tf_distill.tasks.diffusion import quality, sampler, settings

TINY = {
    "diffusion.channels": 8,
    "diffusion.multipliers": (1,),  # one level: the smallest graph to trace
    "diffusion.epochs": 1,
    "progressive.teacher_steps": 2,
    "progressive.epochs": 1,
    "quality.num_samples": 40,
    "quality.noise_seeds": 2,
    "quality.classifier_epochs": 1,
    "quality.classifier_layers": (32,),
}


def tiny(**changes):
    from configs import digits_diffusion

    config = digits_diffusion.base_config()
    config.name = "tiny_diffusion"
    for key, value in {**TINY, **changes}.items():
        set_key(config, key, value)
    return config


def _run(config, tmp_path, mode):
    from tf_distill import experiment

    run_dir = RunDir(str(tmp_path / "w"), str(tmp_path / "tb"))
    results = experiment.run(
        config, workdir=run_dir.root, mode=mode, tensorboard_dir=run_dir.tensorboard
    )
    return run_dir, results


class Crash(Exception):
    pass


@pytest.mark.slow
def test_all_crashes_between_rounds_resumes_and_ships_a_sampler(tmp_path, monkeypatch):
    from tf_distill.tasks.diffusion import trainer

    def crash(*args, **kwargs):
        raise Crash

    # The first run dies as the first round starts: teacher and baseline are done.
    monkeypatch.setattr(trainer.SamplerTrainer, "_round", crash)
    with pytest.raises(Crash):
        _run(tiny(), tmp_path, "all")
    teacher_file = tmp_path / "w" / "teacher" / "model.keras"
    stamp = os.stat(teacher_file).st_mtime_ns
    assert (tmp_path / "w" / "student" / "metrics.json").is_file()
    assert not (tmp_path / "w" / "report.json").exists()
    monkeypatch.undo()

    run_dir, results = _run(tiny(), tmp_path, "all")
    assert os.stat(teacher_file).st_mtime_ns == stamp  # not trained again
    report = json.loads(open(run_dir.file("report.json")).read())
    assert [r["steps"] for r in report["rows"]] == [1, 2]
    assert report["rows"][0]["distilled"]["seeds"] == 2
    assert report["rows"][1]["distilled"] is None  # the teacher's own count
    assert os.path.isfile(run_dir.file("quality.png"))
    assert not os.path.exists(run_dir.backup_root)  # the run ended well
    for name in ("teacher/samples.png", "student/samples_steps1.png"):
        assert os.path.isfile(os.path.join(run_dir.root, name))
    # TensorBoard: the losses and the round's sample grid.
    assert os.listdir(os.path.join(run_dir.tensorboard, "distilling_steps1"))

    # The sampler a client loads: uint8 images, the same as the Keras student
    # draws from the same noise.
    student = tf.keras.models.load_model(
        run_dir.model("distilling_steps1").keras, compile=False
    )
    loaded = tf.saved_model.load(run_dir.model("distilling_steps1").saved_model)
    drawn = loaded.signatures["serving_default"](
        seed=tf.constant(3, tf.int64), count=tf.constant(5)
    )["images"]
    assert drawn.dtype == tf.uint8 and drawn.shape == (5, 8, 8, 1)
    z = sampler.noise(3, 5, (8, 8, 1))
    keras_images = sampler.to_uint8(
        sampler.draw(sampler.compiled(student, 1, "v"), z)
    ).numpy()
    np.testing.assert_allclose(drawn.numpy(), keras_images, atol=1)
    from_noise = loaded.signatures["from_noise"](noise=z)["images"]
    np.testing.assert_array_equal(from_noise.numpy(), drawn.numpy())

    # --model=evaluate: the shipped sampler measured as a client draws it (uint8)
    # from the same noise gives the Keras student's quality, up to rounding.
    _, evaluated = _run(tiny(), tmp_path, "evaluate")
    shipped = evaluated["distilling_steps1"]
    assert shipped["saved_model"]["fid"]["mean"] == pytest.approx(
        shipped["keras"]["fid"]["mean"], rel=0.05, abs=0.05
    )


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("progressive.final_steps", 3, "config.progressive.final_steps=3"),
        ("progressive.final_steps", 2, "a power of two below"),
        ("progressive.teacher_steps", 12, "config.progressive.teacher_steps=12"),
        ("diffusion.prediction", "eps", "epsilon-prediction cannot be distilled"),
        ("diffusion.weighting", "snr", "config.diffusion.weighting='snr'"),
        ("diffusion.multipliers", (1, 2, 2, 2, 2), "cannot be halved"),
        ("quality.noise_seeds", 0, "config.quality.noise_seeds=0"),
        (
            "diffusion.learning_rate",
            float("inf"),
            "learning_rate=inf: expected a finite",
        ),
        ("progressive.learning_rate", float("nan"), "learning_rate=nan: expected a"),
    ],
)
def test_bad_configs_are_refused_before_any_work(tmp_path, key, value, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        _run(tiny(**{key: value}), tmp_path, "all")
    assert not (tmp_path / "w").exists()
    assert not (tmp_path / "tb").exists()


def test_a_mode_without_its_model_says_what_to_run_and_writes_nothing(tmp_path):
    for mode in ("student", "distilling"):
        with pytest.raises(FileNotFoundError, match="Run --model=teacher first"):
            _run(tiny(), tmp_path, mode)
    for mode in ("export", "evaluate"):
        with pytest.raises(FileNotFoundError, match="Run --model=distilling first"):
            _run(tiny(), tmp_path, mode)
    assert not (tmp_path / "w").exists()


def test_the_classifier_config_refuses_an_unknown_task(tmp_path):
    from tests.conftest import tiny as classifier_tiny

    config = classifier_tiny()
    config.task = "difusion"
    with pytest.raises(ValueError, match="config.task='difusion'"):
        _run(config, tmp_path, "all")


def test_round_steps_halve_from_the_teacher_to_the_final_count():
    s = settings.from_config(tiny(**{"progressive.teacher_steps": 64}))
    assert s.round_steps == [32, 16, 8, 4, 2, 1]
    assert s.ddim_steps == [1, 2, 4, 8, 16, 32, 64]


def test_fid_matches_the_closed_form_for_gaussians():
    rng = np.random.default_rng(0)
    a = rng.normal(0.0, 1.0, (20000, 3))
    b = rng.normal(0.5, 2.0, (20000, 3))
    # Independent axes: |mu_a - mu_b|^2 + sum (s_a - s_b)^2 = 3 * 0.25 + 3 * 1.
    assert quality.fid(a, b) == pytest.approx(3.75, rel=0.03)
    assert quality.fid(a, a) == pytest.approx(0.0, abs=1e-6)
    # Correlated features: against scipy's general matrix square root.
    import scipy.linalg

    a = rng.normal(size=(300, 5)) @ rng.normal(size=(5, 5))
    b = rng.normal(size=(400, 5)) @ rng.normal(size=(5, 5)) + 1.0
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = scipy.linalg.sqrtm(cov_a @ cov_b).real
    expected = np.sum((a.mean(0) - b.mean(0)) ** 2) + np.trace(cov_a + cov_b - 2 * root)
    assert quality.fid(a, b) == pytest.approx(expected, rel=1e-9)


def test_kid_is_unbiased_near_zero_for_one_distribution_and_positive_apart():
    rng = np.random.default_rng(1)
    same = [quality.kid(rng.normal(size=(200, 8)), rng.normal(size=(300, 8)))]
    same += [quality.kid(rng.normal(size=(200, 8)), rng.normal(size=(300, 8)))]
    shifted = quality.kid(rng.normal(size=(200, 8)), rng.normal(1.0, 1, (300, 8)))
    assert abs(np.mean(same)) < 0.02
    assert shifted > 0.5


def test_nearest_neighbour_distances_are_exact():
    pool = np.zeros((3, 2, 2, 1), np.float32)
    pool[1] += 1.0
    images = np.full((2, 2, 2, 1), 0.25, np.float32)
    images[1] = 1.0
    np.testing.assert_allclose(quality.nearest(images, pool), [0.5, 0.0], atol=1e-6)


def test_coverage_and_confidence_of_real_images(tmp_path):
    """A classifier's own training images cover every class (~100%); one class
    repeated covers a tenth."""
    from tf_distill.data import sources
    from tf_distill.models.architectures import ModelSpec

    splits = sources.load(sources.DataSpec())
    spec = ModelSpec(arch="mlp", layers=(64,), dropout=0.0, epochs=30)
    classifier = quality.train_classifier(spec, splits, seed=0)
    unit = quality.to_unit(splits.x_train, splits.input_scale)
    reference = quality.Reference(
        classifier,
        splits.input_scale,
        splits.x_train,
        splits.y_train,
        splits.num_classes,
    )
    real = reference.measure(unit[:500])
    assert real["coverage"] > 90.0 and real["confidence"] > 0.8
    assert real["nn_distance"] == 0.0  # each is its own nearest neighbour
    ones = unit[splits.y_train == 1][:50]
    assert reference.measure(ones)["coverage"] < 15.0


def test_a_diverging_teacher_stops_naming_its_learning_rate(tmp_path):
    from tf_distill.training.resume import TrainingDiverged

    config = tiny(**{"diffusion.learning_rate": 1e30})
    with pytest.raises(TrainingDiverged, match="config.diffusion.learning_rate"):
        _run(config, tmp_path, "teacher")
    assert not (tmp_path / "w" / "teacher" / "model.keras").exists()


def test_main_refuses_a_bad_diffusion_config_in_one_line(tmp_path):
    from tests.conftest import REPO
    from tests.test_main import run_main

    proc = run_main(
        tmp_path,
        "--model=all",
        "--workdir=run",
        "--config.progressive.final_steps=3",
        config=os.path.join(REPO, "configs", "digits_diffusion.py"),
    )
    assert proc.returncode == 1
    assert (
        proc.stderr.strip()
        .splitlines()[-1]
        .startswith("error: config.progressive.final_steps=3: expected a power of two")
    )
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "run").exists()


def test_kid_and_nearest_neighbours_in_chunks_equal_the_whole_matrices():
    """MNIST's 55,000 training features cannot make one 55,000^2 kernel matrix:
    the chunked sums must be the same numbers."""
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(50, 6)), rng.normal(0.2, 1.0, (70, 6))
    whole = ((a @ b.T / 6 + 1.0) ** 3).sum()
    assert quality._kernel_sum(a, b, chunk=7) == pytest.approx(whole, rel=1e-12)
    k_bb = (b @ b.T / 6 + 1.0) ** 3
    within = (k_bb.sum() - np.trace(k_bb)) / (70 * 69)
    assert quality._within(b) == pytest.approx(within, rel=1e-12)
    images, pool = rng.normal(size=(30, 4, 4, 1)), rng.normal(size=(40, 4, 4, 1))
    direct = np.sqrt(
        ((images.reshape(30, 1, -1) - pool.reshape(1, 40, -1)) ** 2).sum(-1).min(1)
    )
    np.testing.assert_allclose(quality.nearest(images, pool, chunk=4), direct)
    in_batches = quality.nearest(images, iter([pool[:15], pool[15:]]), chunk=4)
    np.testing.assert_allclose(in_batches, direct)


def test_the_quality_reference_streams_image_files_as_it_reads_an_array(tmp_path):
    """The classifier trained on image files read in shuffled batches; the
    reference's features and measures the same from the files as from the same
    images in memory."""
    import dataclasses

    from tf_distill.data import image_files, sources
    from tf_distill.models.architectures import ModelSpec

    splits = sources.load(sources.DataSpec())
    x, y = splits.x_train[:300], splits.y_train[:300]
    paths = []
    for i, image in enumerate(x):
        paths.append(str(tmp_path / f"{i}.png"))
        tf.io.write_file(paths[-1], tf.io.encode_png(image))
    files = image_files.ImageFiles(np.array(paths), x.shape[1:])
    streamed = dataclasses.replace(splits, x_train=files, y_train=y)
    spec = ModelSpec(arch="mlp", layers=(32,), dropout=0.0, epochs=30)
    classifier = quality.train_classifier(spec, streamed, seed=0)
    assert (
        classifier.evaluate(x.astype(np.float32), y, verbose=0)[1] > 0.5
    )  # 0.1: chance
    scale, classes = splits.input_scale, splits.num_classes
    from_files = quality.Reference(classifier, scale, files, y, classes)
    in_memory = quality.Reference(classifier, scale, x, y, classes)
    np.testing.assert_allclose(
        from_files.train_features, in_memory.train_features, rtol=1e-5, atol=1e-5
    )
    samples = quality.to_unit(splits.x_test[:40], scale)
    assert from_files.measure(samples) == pytest.approx(in_memory.measure(samples))


@pytest.mark.parametrize("mode", ["export", "evaluate"])
def test_a_sampler_trained_on_other_data_is_refused_naming_it(tmp_path, mode):
    final = tmp_path / "w" / "distilling_steps1"
    final.mkdir(parents=True)
    (final / "model.keras").write_bytes(b"")  # never read: refused before
    (final / "metrics.json").write_text('{"data": {"source": "idx:/mnist"}}')
    with pytest.raises(ValueError, match="model.keras was trained on idx:/mnist, but"):
        _run(tiny(), tmp_path, mode)


def test_the_summary_pairs_each_sampler_with_ddim_in_as_many_steps(tmp_path):
    """Mean ± std over the noise seeds, and the paired difference to the
    teacher's DDIM in the same steps with its interval and the gap it closes."""
    from tf_distill.tasks.diffusion import report

    def fid(*values):
        return quality.summarise([{"fid": v} for v in values])

    results = {
        "teacher": {"sampling_steps": 8},
        "student": {"quality": {"2": fid(20.0, 22.0, 21.0), "8": fid(5.0, 5.5, 4.5)}},
        "distilling_steps2": {"sampling_steps": 2, "quality": fid(10.0, 11.0, 12.0)},
    }
    lines = report.summary("distilling", results, RunDir(str(tmp_path), str(tmp_path)))
    text = "\n".join(lines)
    assert "2-step sampler: FID 11.00 ± 1.00 over 3 noise seeds" in text, text
    # Per seed -10, -11, -9: mean -10, t(0.975, 2) * 1 / sqrt(3) = 2.48 either side;
    # (21 - 11) / (21 - 5) = 62.5% of DDIM's gap to the 8-step teacher closed.
    assert "DDIM in 2 steps (FID 21.00 ± 1.00): -10.00 FID" in text, text
    assert "95% CI [-12.48, -7.52]" in text, text
    assert "62% of its gap to the teacher's sampler (FID 5.00) closed" in text, text


def test_the_diffusion_task_streams_an_image_folder(tmp_path):
    """Teacher and DDIM baseline on PNG files read in batches, never decoded
    whole: the quality measures come out finite."""
    from tests.test_image_folder import write_images

    root = tmp_path / "images"
    write_images(root / "train", 24, seed=0, size=(8, 8))
    write_images(root / "val", 8, seed=1, size=(8, 8))  # the test split
    config = tiny(
        dataset="image_folder",
        data_dir=str(root),
        image_size=(8, 8),
        **{"quality.num_samples": 12},
    )
    _run(config, tmp_path, "teacher")
    run_dir, results = _run(config, tmp_path, "student")
    measured = results["student"]["quality"]
    assert measured, results["student"]
    for per_steps in measured.values():  # "1", "2": DDIM steps
        means = [v["mean"] for v in per_steps.values() if isinstance(v, dict)]
        assert len(means) == 5 and np.all(np.isfinite(means)), per_steps
    with open(run_dir.model("quality_classifier").metrics) as f:
        classifier = json.load(f)
    assert classifier["real_vs_real"]["count"] == 12
