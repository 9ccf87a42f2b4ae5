"""The command line: `tf-distill`, `python -m tf_distill` and `python main.py`.

    tf-distill --model=teacher|student|distilling|all|sweep|export|evaluate \
        [--config=NAME|path/to/config.py] [--config.KEY=VALUE ...] [--workdir=DIR]

Flags become a config; `tf_distill.experiment.run` does the rest: it looks
`config.task` up in the task table (tf_distill/tasks/), whose modes say what each
`--model` does. `--config` takes a file, or the name of a shipped config
(`mnist_cnn`, from `shipped_configs()`), so the command works from any folder and
from an installed wheel.
"""

import ast
import importlib.util
import logging
import os
import signal
import sys
import traceback

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
from tf_distill.training import interrupt  # noqa: E402

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


def shipped_configs() -> str:
    """The folder of the shipped configs: `tf_distill/configs/` in an installed
    wheel (setup.py), `configs/` beside the package in a checkout."""
    here = os.path.dirname(os.path.abspath(__file__))
    for folder in (
        os.path.join(here, "configs"),  # first: never another package's configs/
        os.path.join(os.path.dirname(here), "configs"),
    ):
        if os.path.isfile(os.path.join(folder, "default.py")):
            return folder
    raise FileNotFoundError(f"the shipped configs are missing beside {here}")


def _configs_importable() -> None:
    """Config files start from `from configs import default`: make that the
    shipped folder when no `configs` package is importable from here (an
    installed command run from any folder)."""
    if importlib.util.find_spec("configs") is not None:
        return
    folder = shipped_configs()
    spec = importlib.util.spec_from_file_location(
        "configs",
        os.path.join(folder, "__init__.py"),
        submodule_search_locations=[folder],
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules["configs"] = module
    spec.loader.exec_module(module)


def _resolve_config(argv: list[str]) -> list[str]:
    """--config=NAME or --config NAME (no folder, no such file) as the shipped
    config NAME.py."""
    out = list(argv)
    for i, arg in enumerate(out):
        if arg.startswith("--config="):
            out[i] = f"--config={_shipped_or(arg.split('=', 1)[1])}"
        elif arg == "--config" and i + 1 < len(out):
            out[i + 1] = _shipped_or(out[i + 1])
    return out


def _shipped_or(value: str) -> str:
    shipped = os.path.join(shipped_configs(), f"{value.removesuffix('.py')}.py")
    if not os.path.exists(value) and os.sep not in value and os.path.isfile(shipped):
        return shipped
    return value


_configs_importable()

# ml_collections applies --config.KEY overrides when it parses the config file: for
# the default file while the flag is defined, for --config=FILE while flags are
# parsed. A misspelt key surfaces in either place.
try:
    config_flags.DEFINE_config_file(
        "config",
        # The shipped one, so that the command runs from any folder.
        os.path.join(shipped_configs(), "default.py"),
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
        names = sorted(
            n.removesuffix(".py")
            for n in os.listdir(shipped_configs())
            if n.endswith(".py") and n != "__init__.py"
        )
        sys.exit(
            f"error: config file {path!r} not found (a file, or a shipped config: "
            f"{', '.join(names)})"
        )
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
    argv = _resolve_config(argv)
    _check_config_file(argv)
    try:
        return app.parse_flags_with_usage(argv)
    except (AttributeError, KeyError) as e:
        _exit_unknown_key(e)
    except Exception as e:  # the config file's get_config() raised
        where = traceback.extract_tb(e.__traceback__)[-1]
        sys.exit(
            f"error: the config raised {type(e).__name__}: {e} "
            f"({where.filename} line {where.lineno})"
        )


def _check_keys(config) -> None:
    """A config written before newer keys existed: one line naming them, rather
    than an AttributeError from deep inside the run."""
    import configs

    missing = configs.missing_keys(config)
    if missing:
        task = config.get("task", "classifier")
        shown = ", ".join(missing[:5]) + (", ..." if len(missing) > 5 else "")
        sys.exit(
            f"error: the config lacks {len(missing)} key(s) a {task} config has: "
            f"{shown}. Start it from configs/{configs.REFERENCE[task]}.py's "
            "base_config() and change what differs"
        )


flags.mark_flags_as_required(["model"])


def _exit_interrupted(workdir: str):
    """Ctrl-C or SIGTERM: one line saying what was kept; exit 128 + the signal."""
    signum = interrupt.received()
    backup = os.path.join(workdir, ".backup")
    resume = (
        f"the finished models are kept, the unfinished one's backup is in "
        f"{backup}: run the same command again to resume"
        if os.path.isdir(backup)
        else "nothing was lost"
    )
    by = "" if signum == signal.SIGINT else f" by {signal.Signals(signum).name}"
    print(f"interrupted{by}: {resume}", file=sys.stderr, flush=True)
    sys.stdout.flush()
    # Without the interpreter's teardown: TensorFlow's threads (an input
    # pipeline's prefetch) can still run after an interrupted fit and have
    # crashed it (SIGSEGV instead of this exit status). Every file is already
    # whole: each is written under a temporary name and renamed.
    os._exit(128 + signum)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    config = FLAGS.config
    _check_keys(config)
    if config.name is None:
        filename = config_flags.get_config_filename(FLAGS["config"])
        config.name = os.path.splitext(os.path.basename(filename))[0]
    workdir = FLAGS.workdir or os.path.join("runs", config.name)
    if QUIET:
        quiet.only_ours()
    # Every log line to <workdir>/run.log; the terminal shows the info lines
    # only with --verbosity (-v), else the warnings and what the run prints.
    quiet.log_to_run_dir(logging.WARNING if QUIET else logging.NOTSET)
    interrupt.install()
    try:
        results = experiment.run(config, workdir=workdir, mode=FLAGS.model)
    except (ValueError, FileNotFoundError) as e:
        # A user error: the message says what to fix; no traceback to read through.
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        _exit_interrupted(workdir)
    run_dir = experiment.run_dir_of(workdir)
    print(experiment.summary(FLAGS.model, results, run_dir, config))


def run() -> None:
    """The console script's entry point (setup.py), main.py's and __main__'s."""
    app.run(main, flags_parser=_parse_flags)
