"""Trains a teacher, a student alone, or a distilled student; or all three.

    python main.py --model=teacher|student|distilling|all|sweep|export|evaluate \
        [--config=configs/default.py] [--config.KEY=VALUE ...] [--workdir=runs/NAME]

Flags become a config; `tf_distill.experiment.run` does the rest: it looks
`config.task` up in the task table (tf_distill/tasks/), whose modes say what each
`--model` does.
"""

import ast
import os
import sys

# TensorFlow's own chatter (CUDA probing on a machine without a GPU, oneDNN notes,
# "Assets written to" a temporary folder, the LiteRT converter's progress) is not
# this program's: silenced unless --verbosity (-v) is given.
QUIET = not any(a.startswith(("--verbosity", "-v")) for a in sys.argv[1:])


from tf_distill import quiet  # noqa: E402  (imports no TensorFlow)

if QUIET:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # the C++ logs after loading
with quiet.stderr_silenced(QUIET):
    import tensorflow

    # Probes for GPUs (CUDA's "failed call to cuInit" on a machine without one)
    # without starting the runtime, which MultiWorkerMirroredStrategy must precede.
    tensorflow.config.list_physical_devices("GPU")

from absl import app, flags  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from tf_distill import experiment  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_enum(
    "model",
    None,
    list(experiment.MODES),
    "What to train; or export / evaluate the models trained in --workdir.",
)
flags.DEFINE_string("workdir", None, "Run directory; default runs/<config name>.")


def _exit_unknown_key(error: Exception) -> None:
    """A misspelt --config.KEY: one line with ml_collections' suggestion, exit 1."""
    text = str(error).replace("\\n", " ")
    hint = (
        text[text.find("Did you mean") :].rstrip("'\"")
        if "Did you mean" in text
        else text
    )
    sys.exit(f"error: a --config.KEY=VALUE flag names a key the config lacks. {hint}")


# ml_collections applies --config.KEY overrides when it parses the config file: for
# the default file while the flag is defined, for --config=FILE while flags are
# parsed. A misspelt key surfaces in either place.
try:
    config_flags.DEFINE_config_file(
        "config",
        # Beside main.py, so that main.py runs from any folder.
        os.path.join(
            os.path.dirname(os.path.abspath(__file__)), "configs", "default.py"
        ),
        "An ml_collections config file.",
        lock_config=True,
    )
except (AttributeError, KeyError) as e:
    _exit_unknown_key(e)


def _check_config_file(argv) -> None:
    """--config=FILE must be a Python file with a get_config(): one line if not.

    ml_collections would report a missing or broken file as a long traceback, and
    a file without get_config() as a misspelt key; checked here without running it.
    """
    path = None
    for i, arg in enumerate(argv):
        if arg.startswith("--config="):
            path = arg.split("=", 1)[1]
        elif arg == "--config" and i + 1 < len(argv):
            path = argv[i + 1]
    if path is None:
        return
    if not os.path.isfile(path):
        sys.exit(f"error: config file {path!r} not found")
    try:
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read(), filename=path)
    except (SyntaxError, UnicodeDecodeError, ValueError) as e:
        where = f" line {e.lineno}" if getattr(e, "lineno", None) else ""
        sys.exit(f"error: config file {path!r} is not valid Python{where}: {e}")
    if not any(
        isinstance(node, ast.FunctionDef) and node.name == "get_config"
        for node in tree.body
    ):
        sys.exit(
            f"error: config file {path!r} defines no get_config(); a config file "
            "returns its ml_collections.ConfigDict from get_config()"
        )


def _parse_flags(argv):
    _check_config_file(argv)
    try:
        return app.parse_flags_with_usage(argv)
    except (AttributeError, KeyError) as e:
        _exit_unknown_key(e)


flags.mark_flags_as_required(["model"])


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    config = FLAGS.config
    if config.name is None:
        filename = config_flags.get_config_filename(FLAGS["config"])
        config.name = os.path.splitext(os.path.basename(filename))[0]
    workdir = FLAGS.workdir or os.path.join("runs", config.name)
    if QUIET:
        quiet.only_ours(__file__)
    try:
        results = experiment.run(config, workdir=workdir, mode=FLAGS.model)
    except (ValueError, FileNotFoundError) as e:
        # A user error: the message says what to fix; no traceback to read through.
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        backup = os.path.join(workdir, ".backup")
        resume = (
            f"the finished models are kept, the unfinished one's backup is in "
            f"{backup}: run the same command again to resume"
            if os.path.isdir(backup)
            else "nothing was lost"
        )
        print(f"interrupted: {resume}", file=sys.stderr)
        sys.exit(130)
    run_dir = experiment.run_dir_of(workdir)
    print(experiment.summary(FLAGS.model, results, run_dir, config))


if __name__ == "__main__":
    app.run(main, flags_parser=_parse_flags)
