"""Default experiment: scikit-learn's bundled 8x8 digits, offline, few labels.

    python main.py --model=all

`base_config()` holds every config key with its default and a comment; the other
configs start from it and change a few fields. `get_config()`, the main job, is
the case where distillation pays on digits: the teacher (MLP 256-128) and the
student alone (MLP 16) see the labels of 20% of the training digits, and the
distilled student also learns from the teacher on the other 80% of the images,
which keep no labels (Hinton et al. 2015, sec. 3-4). Every model trains its 300
epochs and keeps the last, the schedule chosen on validation
(benchmarks/recipes.py --recipes=few_labels). Measured results: docs/results.md.
"""

import os

import ml_collections

# The real MNIST / Fashion-MNIST IDX files, beside the repository (../shared/data).
_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_DATA = os.path.join(os.path.dirname(_REPO), "shared", "data")


def get_config() -> ml_collections.ConfigDict:
    """The main job: few labels, many images, patient schedules, 3 seeds."""
    config = base_config()
    config.labeled_fraction = 0.2
    config.distill.transfer_data = "train"
    config.distill.alpha = 0.5  # chosen on validation with the schedule below
    config.teacher.epochs = 300
    config.student.epochs = 300
    config.early_stopping.patience = 0  # every epoch, the last kept
    config.num_seeds = 3
    # A whole epoch (5 or 21 steps here) per tf.function call: the same
    # weights, bit for bit, in a fraction of the Python overhead.
    config.steps_per_execution = 32
    # The six students (3 seeds alone, 3 distilled) two at a time, on the two
    # cores one small model leaves half idle; the same weights as one at a time.
    config.concurrent_fits = 2
    # Validation every 10th epoch (and the last): the last epoch is kept, so the
    # models and the verdict are those of validating every epoch, which took
    # half of each 0.05 s epoch; the curves get 31 points a model.
    config.validation_every_epochs = 10
    return config


def base_config() -> ml_collections.ConfigDict:
    """Every key with its default: all labels, early stopping, one seed."""
    config = ml_collections.ConfigDict()
    # tensorboard/<name>/ and the default workdir runs/<name>; main.py fills it in
    # from the config file name (configs/mnist_cnn.py -> "mnist_cnn") when None.
    config.name = ml_collections.config_dict.placeholder(str)
    # "classifier": teacher logits into a smaller classifier (this file's keys);
    # "diffusion": progressive distillation of a sampler (configs/digits_diffusion.py).
    config.task = "classifier"

    # Data.
    # "digits" | "idx" | a tfds name | "image_folder" | "tfrecord"
    config.dataset = "digits"
    # A folder of IDX files / a tfds data_dir; None for digits. Typed placeholders
    # (not plain None) so that --config.data_dir=... can set them.
    config.data_dir = ml_collections.config_dict.placeholder(str)
    config.validation_fraction = 0.1  # carved from the training split, fixed seed
    # image_folder and tfrecord (configs/image_folder.py): images are resized to this
    # (height, width) and read as "rgb" or "grayscale".
    config.image_size = (64, 64)
    config.color_mode = "rgb"
    config.data = data_section()
    config.split_seed = 0  # the data split never changes with config.seed
    # Few labels, many images (tf_distill/data/unlabelled.py): the teacher and the
    # student
    # alone see the labels of this stratified fraction of the training split;
    # with distill.transfer_data="train" the distilled student also learns, from
    # the teacher alone, on the training images whose labels are withheld.
    config.labeled_fraction = 1.0
    config.seed = 42  # seeds Python, NumPy and TensorFlow
    # Seeds of the student alone and the distilled student (config.seed, seed + 1,
    # ...), all distilled from the one teacher: the report gives mean +- std, so a
    # gain smaller than the seed-to-seed noise shows as such.
    config.num_seeds = 1
    # True: TensorFlow's op determinism, so two runs give identical weights (slower
    # on GPUs; on CPUs the cost is small).
    config.deterministic = False
    config.batch_size = 64  # global batch size, across all replicas

    # Models. `arch`: "mlp", "cnn", "convnet" or a Keras Applications name
    # (models.APPLICATIONS).
    # `layers` are Dense units (mlp) or Conv2D filters (cnn); applications ignore it.
    config.teacher = ml_collections.ConfigDict()
    config.teacher.arch = "mlp"
    config.teacher.layers = (256, 128)
    config.teacher.dropout = 0.2
    # A local weights file for a Keras Applications arch; None: random weights.
    config.teacher.weights = ml_collections.config_dict.placeholder(str)
    config.teacher.epochs = 100
    # Which of the teacher's weights it keeps and teaches with: "auto" (as every
    # model: the best on validation with early stopping, else the last epoch),
    # "best", "last", or an epoch number as text ("10": the weights after epoch
    # 10 of the whole schedule, which then trains without early stopping). An
    # early-stopped teacher can teach better (Cho & Hariharan 2019);
    # benchmarks/recipes.py --teacher_keeps compares them on validation.
    config.teacher.keep = "auto"

    config.student = ml_collections.ConfigDict()
    config.student.arch = "mlp"
    config.student.layers = (16,)
    config.student.dropout = 0.0
    # A local weights file for a Keras Applications arch; None: random weights.
    config.student.weights = ml_collections.config_dict.placeholder(str)
    config.student.epochs = 100  # student alone, and distilling unless distill.epochs

    # An existing teacher to distil from (--model=distilling): a .keras file, or a
    # SavedModel folder (TF Hub, Kaggle, TF Serving; load only ones you trust),
    # whose `teacher.signature` is called on the raw pixels (cast to its input
    # dtype) and whose output `teacher.output_key` (None: the only one, else
    # "logits") gives "logits" or "probabilities" (`teacher.outputs`).
    config.teacher_path = ml_collections.config_dict.placeholder(str)
    config.teacher.signature = "serving_default"
    config.teacher.output_key = ml_collections.config_dict.placeholder(str)
    config.teacher.outputs = "logits"
    # Several .keras teachers distilled as one committee
    # (tf_distill/distillation/ensemble.py):
    # their T-softened probabilities averaged. --model=distilling distils it;
    # --model=all uses it instead of training a teacher, the report's teacher row
    # is the ensemble. E.g. --config.teacher_paths='("a.keras", "b.keras")'.
    config.teacher_paths = ()

    # Distillation: alpha * hard + (1 - alpha) * T^2 * KL(teacher_T || student_T).
    config.distill = ml_collections.ConfigDict()
    # "kd", "dkd", "hint" (tf_distill/distillation/), or a Method of your own as
    # "package.module:Class" (examples/my_method.py).
    config.distill.method = "kd"
    config.distill.temperature = 4.0
    config.distill.alpha = 0.1  # weight of the hard (label) loss
    # method="dkd", Decoupled KD (Zhao et al. 2022): CE + w * T^2 * (alpha TCKD +
    # beta NCKD), w rising linearly to 1 over warmup_epochs; their CIFAR values.
    # Uses distill.temperature; distill.alpha (KD's) does not apply.
    config.distill.dkd = ml_collections.ConfigDict()
    config.distill.dkd.alpha = 1.0
    config.distill.dkd.beta = 8.0
    config.distill.dkd.warmup_epochs = 20
    # method="hint", FitNets (Romero et al. 2015): KD (temperature, alpha above)
    # plus weight * mean squared error between the teacher's layer and the
    # student's layer through a learned regressor (not exported). Layer names as
    # in the models, e.g. "dense_0" (mlp), "conv_1" / "pool_1" (cnn, convnet).
    config.distill.hint = ml_collections.ConfigDict()
    config.distill.hint.teacher_layer = ml_collections.config_dict.placeholder(str)
    config.distill.hint.student_layer = ml_collections.config_dict.placeholder(str)
    config.distill.hint.weight = 1.0
    # Generations of distilled students (Furlanello et al. 2018, born-again
    # networks): generation g is distilled from generation g - 1 of its seed; 1:
    # from the teacher alone. Born-again: give the student the teacher's arch.
    config.distill.generations = 1
    # Epochs of the distilled student; None: config.student.epochs.
    config.distill.epochs = ml_collections.config_dict.placeholder(int)
    # Early-stopping patience of the distilled student; None: early_stopping's.
    # 0 trains every epoch and keeps the last (a patient schedule, Beyer et al.).
    config.distill.patience = ml_collections.config_dict.placeholder(int)
    # Unlabelled images the distilled student also trains on, with the teacher's
    # soft targets alone: "train" (the training images config.labeled_fraction
    # withholds), a folder of images (no class sub-folders) or an IDX images file.
    # None: the labelled training images alone.
    config.distill.transfer_data = ml_collections.config_dict.placeholder(str)
    # Run the teacher once over the data and reuse its logits every epoch, instead
    # of a teacher forward pass in every step (valid while inputs are not augmented).
    config.distill.cache_teacher_logits = True
    config.distill.cache_dtype = "float32"  # or "float16": half the memory
    # Keep only the k largest logits of each cached example or view, their classes
    # and one logit for the rest (tf_distill/teacher/topk.py, as FKD stores soft
    # labels):
    # for many classes and views. 0 (or >= the classes): all of them.
    config.distill.cache_top_k = 0
    # With augmentation on: run the teacher once over this many augmented views
    # of every training image and train on one stored view per image each epoch
    # (tf_distill/teacher/views.py, FKD); 0: the teacher runs in every training step.
    config.distill.cached_views = 0
    # Also measure the distilled student against the teacher on the validation
    # split (val_soft_loss, val_agreement in the logs and TensorBoard): one more
    # teacher pass over the validation images (cached, or per validation step when
    # the teacher runs per step). False: validation on the labels alone, val_loss
    # then the label cross-entropy, as for the student alone.
    config.distill.validation_teacher = False
    # Batch of the caching pass (benchmarks/knobs.py compares sizes); a smaller one
    # needs less memory for large teachers.
    config.distill.teacher_batch_size = 256
    # "bfloat16" runs the caching pass on a bfloat16 copy of the teacher: faster on
    # CPUs with AVX512-BF16/AMX and on GPUs/TPUs, slower without (benchmarks/README).
    config.distill.teacher_dtype = "float32"

    # Training-time augmentation of the training split (tf_distill/data/augment.py);
    # all off by default. Teacher and student see the same augmented batch, and
    # the teacher's logits are then computed in every step, not cached.
    config.augment = ml_collections.ConfigDict()
    config.augment.translate = 0  # pixels each way (Hinton et al.: 2 on MNIST)
    config.augment.flip = "none"  # "horizontal" | "vertical" | both: see FLIPS
    config.augment.rotation = 0.0  # degrees each way
    config.augment.color_jitter = 0.0  # brightness/contrast fraction, RGB only
    # mixup (Beta(a, a) weights) of the distilled student's images, which the
    # teacher then sees too ("function matching", Beyer et al. 2022); needs
    # distill.alpha=0: mixed images have no single label. 0 turns it off.
    config.augment.mixup = 0.0

    # Optimisation: Adam with cosine decay over all training steps.
    config.optimizer = ml_collections.ConfigDict()
    config.optimizer.learning_rate = 3e-3
    config.optimizer.final_lr_fraction = 0.1  # CosineDecay alpha
    config.optimizer.amsgrad = False

    config.early_stopping = ml_collections.ConfigDict()
    config.early_stopping.monitor = "val_accuracy"
    config.early_stopping.patience = 20  # 0 turns early stopping off
    # Validate every this many epochs and after the last (patience stays in
    # epochs); the epochs between log no val_* (None in metrics.json's history).
    config.validation_every_epochs = 1

    # Shipping (tf_distill/shipping/export.py). Every model gets a SavedModel for
    # serving;
    # with tflite, also <role>_float32.tflite and <role>_int8.tflite (LiteRT), the
    # int8 one calibrated on this many training images (the converter's guidance
    # is a few hundred; more only slows the conversion).
    config.export = ml_collections.ConfigDict()
    config.export.tflite = True
    config.export.representative_examples = 500

    # The finished models a run finds in its --workdir (tf_distill/tasks/rerun.py):
    # "reuse" those trained with this config and refuse to replace those trained
    # with another, naming the keys that differ; "replace" trains them again and
    # first removes what depended on them (distilled students, the report).
    config.finished = "reuse"

    # --model=sweep: distils the teacher over this temperature x alpha grid
    # (config.num_seeds seeds per cell) and writes sweep.json, sweep.md, sweep.png.
    config.sweep = ml_collections.ConfigDict()
    config.sweep.temperatures = (1.0, 2.0, 4.0, 8.0)
    config.sweep.alphas = (0.1, 0.5, 0.9)

    # TensorBoard, in tensorboard/<name>/<model>/{train,validation}: every epoch,
    # and the training scalars also every this many steps (0: per epoch only).
    config.tensorboard = ml_collections.ConfigDict()
    config.tensorboard.every_steps = 100

    # Runtime.
    # "auto" | "mirrored" | "multi_worker" | "one_device"
    # (tf_distill/training/distribute.py).
    # batch_size stays the global batch, split evenly across replicas.
    config.strategy = "auto"
    # multi_worker: how long a worker waits for the others of TF_CONFIG before it
    # gives up with one line (tf_distill/training/peers.py).
    config.distribute = ml_collections.ConfigDict()
    config.distribute.connect_timeout = 300.0  # seconds
    # multi_worker with one --workdir every worker sees (a shared file system):
    # the teacher's caching pass is split between the workers, each writing its
    # shards into the chief's run directory (tf_distill/teacher/store.py). Off:
    # every worker runs the whole pass into its own scratch folder.
    config.distribute.shared_workdir = False
    config.mixed_precision = ml_collections.config_dict.placeholder(str)
    # Training steps per tf.function call: fewer Python round trips for small
    # models (Keras' steps_per_execution); callbacks still see every epoch.
    config.steps_per_execution = 1
    # Crash backups (tf_distill/training/backups.py): after a fit's first epoch,
    # then at the first epoch end this many seconds after the last one; a crash
    # loses at most that much training. 0: after every epoch (as Keras' own
    # BackupAndRestore), which doubles the time of epochs as short as digits'.
    config.backup_every_seconds = 30.0
    # Models fitted at once, in threads (tf_distill/training/concurrent.py): the
    # students of a mode, each seed with the weights it gets alone. For small
    # models, which leave cores idle; on one device (several replicas: 1).
    config.concurrent_fits = 1
    return config


def data_section() -> ml_collections.ConfigDict:
    """`config.data`, the same for every task."""
    data = ml_collections.ConfigDict()
    # image_folder and tfrecord: every image is decoded once before training; one
    # that cannot be read stops the run naming it, or, with True, is skipped (and
    # counted).
    data.skip_bad_files = False
    # tfrecord: globs of TFRecord files of tf.train.Example records, each an
    # encoded image (JPEG, PNG, ...) under image_feature and an integer label
    # under label_feature, as tfds writes them; images are resized to
    # config.image_size. Without validation_files, about config.validation_fraction
    # of the training records are held out by a hash of (file name, index).
    data.train_files = ml_collections.config_dict.placeholder(str)
    data.validation_files = ml_collections.config_dict.placeholder(str)
    data.test_files = ml_collections.config_dict.placeholder(str)
    data.image_feature = "image"
    data.label_feature = "label"
    return data
