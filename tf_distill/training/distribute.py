"""Several devices and machines: the `tf.distribute` strategy and who writes what.

`config.strategy` picks TensorFlow's own strategy; `config.batch_size` is always the
*global* batch, split evenly across replicas, so the learning-rate schedule, the
number of steps and the loss (averaged over the global batch) are the same on one
device or many. Under `multi_worker` every worker trains, but only the chief writes
the run directory and TensorBoard's logs; the others write to a scratch folder
inside the workdir that is removed when the run ends. Each worker reads and
decodes only its own examples of every global batch (`worker_batches`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil

import tensorflow as tf

from tf_distill.training import interrupt, peers

STRATEGIES = ("auto", "mirrored", "multi_worker", "one_device")


def make_strategy(name: str, connect_timeout: float = 300.0) -> tf.distribute.Strategy:
    """The `tf.distribute` strategy that `config.strategy` names.

    - `auto`: MirroredStrategy when more than one GPU is visible, else the default.
    - `mirrored`: MirroredStrategy over every GPU, or, with none, over every
      logical CPU device (one unless split with
      `tf.config.set_logical_device_configuration`, as the tests do).
    - `multi_worker`: MultiWorkerMirroredStrategy; the cluster comes from the
      `TF_CONFIG` environment variable. Its workers are first waited for, at
      most `connect_timeout` seconds (peers.py: TensorFlow's own wait cannot be
      stopped or timed out).
    - `one_device`: OneDeviceStrategy on the first GPU, else the CPU.
    """
    if name == "multi_worker":
        if "TF_CONFIG" not in os.environ:
            raise ValueError(
                "config.strategy='multi_worker' needs the TF_CONFIG environment "
                "variable describing the cluster (see docs/machines.md, several "
                "machines)"
            )
        peers.wait_for_peers(connect_timeout)
        with peers.guarded(connect_timeout):
            strategy = tf.distribute.MultiWorkerMirroredStrategy()
        # TensorFlow's preemption notifier took SIGTERM over: ours again, so that
        # a scheduler's SIGTERM stops the run and keeps its backup.
        interrupt.reinstall()
        return _reduce_nested(strategy)
    if name == "auto":
        gpus = tf.config.list_logical_devices("GPU")
        if len(gpus) > 1:
            return tf.distribute.MirroredStrategy()
        return tf.distribute.get_strategy()
    if name == "mirrored":
        devices = tf.config.list_logical_devices(
            "GPU"
        ) or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy([d.name for d in devices])
    if name == "one_device":
        gpus = tf.config.list_logical_devices("GPU")
        return tf.distribute.OneDeviceStrategy(gpus[0].name if gpus else "/cpu:0")
    raise ValueError(f"Unknown strategy {name!r}; valid: {', '.join(STRATEGIES)}")


def _reduce_nested(strategy):
    """MultiWorkerMirroredStrategy whose `reduce` takes nested structures.

    Keras 3's `fit` does not work with MultiWorkerMirroredStrategy as it comes
    (keras-team/keras#20585, tensorflow/tensorflow#72388): it reduces a first
    (x, y) batch with `strategy.reduce`, whose multi-worker version, unlike
    MirroredStrategy's, fails on a tuple ("Attempt to convert a value
    (PerReplica...)"), and it averages each step's scalar logs with `axis=0`,
    which fails on a scalar. This reduces each tensor of a structure on its own,
    a scalar across replicas only, on this strategy object alone.
    """
    reduce = strategy.reduce

    def reduce_one(reduce_op, value, axis):
        local = strategy.experimental_local_results(value)[0]
        if axis is not None and local.shape.rank == 0:
            axis = None  # a scalar per replica: the mean across replicas
        return reduce(reduce_op, value, axis=axis)

    def reduce_each(reduce_op, value, axis=None):
        return tf.nest.map_structure(lambda v: reduce_one(reduce_op, v, axis), value)

    strategy.reduce = reduce_each
    return strategy


def global_batch_size(x) -> tf.Tensor:
    """Examples in this step's global batch: the sum over replicas of the local
    batch sizes of `x`.

    tf.nn.compute_average_loss would otherwise assume local size x replicas, which
    is wrong when the last batch of an epoch splits unevenly across replicas.
    """
    local = tf.shape(x)[0]
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return local
    return context.all_reduce(tf.distribute.ReduceOp.SUM, local)


def check_batch_size(batch_size: int, strategy: tf.distribute.Strategy) -> None:
    """The global batch must split evenly across replicas."""
    replicas = strategy.num_replicas_in_sync
    if batch_size % replicas:
        raise ValueError(
            f"config.batch_size={batch_size} is the global batch and must be a "
            f"multiple of the {replicas} replicas"
        )


@dataclasses.dataclass(frozen=True)
class Share:
    """One worker's part of every global batch: replicas [first, first + count)
    of `total` (data/batches.take_share cuts it)."""

    first: int
    count: int
    total: int


def worker_batches(strategy: tf.distribute.Strategy, make):
    """The training batches `make(share=...)` gives (batches.pipeline's `share`):
    whole global batches for Keras to split, or, under several workers, a
    dataset distributed from a function whose every worker makes only its own
    replicas' slices (batches.take_share), so no worker reads or decodes another
    worker's images. tf.data's own sharding would either read everything on
    every worker (by data) or give workers unequal numbers of batches and
    global batches unlike one worker's (by file); this keeps one worker's
    global batches exactly, so the loss is the same on one worker or several.
    """
    if not several_workers(strategy):
        return make(share=None)
    return per_replica_batches(strategy, make)


def per_replica_batches(strategy: tf.distribute.Strategy, make):
    """`make(share=...)` distributed from a function: each input pipeline (one per
    worker) makes its replicas' slices of every global batch."""

    def per_worker(context: tf.distribute.InputContext):
        local = context.num_replicas_in_sync // context.num_input_pipelines
        first = context.input_pipeline_id * local
        return make(share=Share(first, local, context.num_replicas_in_sync))

    return strategy.distribute_datasets_from_function(per_worker)


def several_workers(strategy: tf.distribute.Strategy) -> bool:
    """True for a multi-worker cluster (TF_CONFIG naming more than this task)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    return resolver is not None and bool(resolver.cluster_spec().as_dict())


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """True unless this process is a non-chief worker of a multi-worker cluster."""
    if not several_workers(strategy):
        return True
    resolver = strategy.cluster_resolver
    task_type, task_id = resolver.task_type, resolver.task_id
    if task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return task_type == "worker" and task_id == 0 and not has_chief


def worker_index(strategy: tf.distribute.Strategy) -> tuple[int, int]:
    """(this process's index among the cluster's tasks that train, their
    number): the chief is 0, then the workers in order; (0, 1) alone."""
    if not several_workers(strategy):
        return 0, 1
    resolver = strategy.cluster_resolver
    spec = resolver.cluster_spec().as_dict()
    tasks = [("chief", i) for i in range(len(spec.get("chief", [])))]
    tasks += [("worker", i) for i in range(len(spec.get("worker", [])))]
    return tasks.index((resolver.task_type, resolver.task_id)), len(tasks)


@contextlib.contextmanager
def output_dirs(strategy, workdir: str, tensorboard_dir: str):
    """(workdir, tensorboard_dir) this process writes to; scratch for non-chiefs.

    A non-chief worker must still save everything the chief saves (saving can
    involve collective ops that every worker joins), so it writes to
    `<workdir>/.worker-<type>-<id>/`, the same place on every restart (its
    BackupAndRestore backups live there), removed when the run succeeds.
    """
    if is_chief(strategy):
        yield workdir, tensorboard_dir
        return
    resolver = strategy.cluster_resolver
    created_workdir = not os.path.exists(workdir)
    scratch = os.path.join(workdir, f".worker-{resolver.task_type}-{resolver.task_id}")
    yield scratch, os.path.join(scratch, "tensorboard")
    # Only after success: a crashed worker resumes from the backups kept there.
    shutil.rmtree(scratch, ignore_errors=True)
    if created_workdir:
        with contextlib.suppress(OSError):
            os.rmdir(workdir)  # only if empty: never the chief's files
