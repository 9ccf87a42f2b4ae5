"""The run context every mode of every task opens: strategy, seeds, precision,
data, the run directory's lock and the state a crashed run resumes from."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Callable

import keras
import ml_collections
import tensorflow as tf
from absl import logging

from tf_distill import quiet
from tf_distill.data import sources
from tf_distill.outputs import files
from tf_distill.outputs.rundir import RunDir
from tf_distill.tasks import rerun
from tf_distill.training import distribute, resume


def data_spec(config: ml_collections.ConfigDict) -> sources.DataSpec:
    """The data keys every task shares, as a DataSpec."""
    return sources.DataSpec(
        dataset=config.dataset,
        data_dir=config.data_dir,
        validation_fraction=config.validation_fraction,
        split_seed=config.split_seed,
        image_size=tuple(config.image_size),
        color_mode=config.color_mode,
        skip_bad_files=config.data.skip_bad_files,
        train_files=config.data.train_files,
        validation_files=config.data.validation_files,
        test_files=config.data.test_files,
        image_feature=config.data.image_feature,
        label_feature=config.data.label_feature,
    )


def config_fingerprint(config: ml_collections.ConfigDict) -> str:
    """12 hex digits identifying the resolved config (the keys that change no
    model, rerun.IGNORED, aside): every model's metrics.json carries its run's, so
    models of different runs are told apart (reports, tasks/rerun.py)."""
    values = rerun.without_added_defaults(config.to_dict())
    values = {k: v for k, v in values.items() if k not in rerun.IGNORED}
    text = json.dumps(values, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def config_dict(config: ml_collections.ConfigDict) -> dict:
    """The config as metrics.json records it (JSON's types: tuples as lists)."""
    return json.loads(json.dumps(config.to_dict(), default=str))


def check_trained_on(metrics_path: str, name: str, splits) -> None:
    """Refuses a model whose run's metrics.json says it was trained on other data
    than `splits` (same shapes, other images: MNIST and Fashion-MNIST would pass
    every shape check and teach a useless student). A model without one (a user's
    own .keras file) is not checked."""
    if not os.path.isfile(metrics_path):
        return
    source = files.read_json(metrics_path).get("data", {}).get("source")
    if source is not None and source != splits.source:
        raise ValueError(
            f"{name} was trained on {source}, but this --config names "
            f"{splits.source}: pass the config it was trained with"
        )


class RunContext:
    """What a mode works in, set up in this order on entry:

    1. the strategy (MultiWorkerMirroredStrategy must exist before TensorFlow's
       runtime starts), and the global batch checked against it;
    2. seeds, op determinism and the mixed-precision policy, all restored on exit
       (tests and notebooks run several modes in one process);
    3. the data (`load_data(config)`), then the task's checks that need it
       (`prepare(data, strategy)`, which may also load models): bad data or a
       model that does not fit fails here, before anything is written;
    4. the output folders (a worker's own under several workers), the lock (a
       second run on the folder exits, naming this one's process), what to do
       with the finished models already there (`rerun_rules`, tasks/rerun.py)
       and the run state a crashed run resumes from.

    A context that ends well writes config.json and removes the crash backups; one
    that fails or is interrupted leaves the last finished run's config.json, never
    one no finished run used.
    """

    def __init__(
        self,
        config: ml_collections.ConfigDict,
        run_dir: RunDir,
        mode: str,
        *,
        load_data: Callable,
        prepare: Callable | None = None,
        rerun_rules: rerun.Rules | None = None,
        fingerprint: str | None = None,
    ):
        self.config = config
        self.run_dir = run_dir
        self.mode = mode
        self._load_data = load_data
        self._prepare = prepare
        self._rerun = rerun_rules
        self._fingerprint = fingerprint
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> RunContext:
        config = self.config
        with self._stack as stack:
            self.strategy = distribute.make_strategy(
                config.strategy, config.distribute.connect_timeout
            )
            distribute.check_batch_size(config.batch_size, self.strategy)
            stack.enter_context(_runtime(config))
            self.data = self._load_data(config)
            if self._prepare is not None:
                self._prepare(self.data, self.strategy)
            logging.info("Config: %s", config.to_json(sort_keys=True))
            root, tensorboard = stack.enter_context(
                distribute.output_dirs(
                    self.strategy, self.run_dir.root, self.run_dir.tensorboard
                )
            )
            shared = config.distribute.get("shared_workdir", False)
            self.run_dir = RunDir(
                root, tensorboard, cache_root=self.run_dir.root if shared else None
            )
            stack.enter_context(files.locked(root))  # one run per folder at a time
            quiet.attach_run_log(self.run_dir.file("run.log"))
            reused = []
            if self._rerun is not None:  # the finished models: reuse, refuse, replace
                settings = config.to_dict()
                if distribute.several_workers(self.strategy):
                    # Every worker must train the same models (their steps are
                    # collective) and only the chief sees the run directory: all
                    # train every model again, as "replace" does.
                    settings["finished"] = rerun.REPLACE
                reused = rerun.plan(
                    self.run_dir, settings, self._fingerprint, self._rerun
                )
            self.state = resume.RunState(
                self.run_dir.backup_root,
                config=config.to_dict(),
                mode=self.mode,
                finished=reused,
            )
            self._stack = stack.pop_all()
        return self

    def __exit__(self, exc_type, exc, tb):
        try:
            if exc_type is None:
                files.write_json(
                    self.run_dir.file("config.json"), self.config.to_dict()
                )
                self.state.close()
        finally:
            self._stack.__exit__(exc_type, exc, tb)


@contextlib.contextmanager
def _runtime(config: ml_collections.ConfigDict):
    """Seeds, op determinism and the mixed-precision policy; the policy and
    determinism are restored afterwards."""
    from tensorflow.python.framework import config as tf_config  # no public getter

    policy = keras.mixed_precision.global_policy()
    deterministic = tf_config.is_op_determinism_enabled()
    keras.utils.set_random_seed(config.seed)  # Python, NumPy and TensorFlow
    if config.deterministic:
        tf.config.experimental.enable_op_determinism()
    keras.mixed_precision.set_global_policy(config.mixed_precision or "float32")
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(policy)
        if not deterministic:
            tf_config.disable_op_determinism()
