"""Trains a teacher, a student alone, or a distilled student; or all three.

    python main.py --model=teacher|student|distilling|all|sweep|export|evaluate \
        [--config=configs/default.py] [--config.KEY=VALUE ...] [--workdir=runs/NAME]

Flags become a config; `tf_distill.experiment.run` does the rest (its MODES table
says what each mode does).
"""

import os
import sys

from absl import app, flags
from ml_collections import config_flags

from tf_distill import experiment

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


def _parse_flags(argv):
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
    try:
        experiment.run(config, workdir=workdir, mode=FLAGS.model)
    except (ValueError, FileNotFoundError) as e:
        # A user error: the message says what to fix; no traceback to read through.
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    app.run(main, flags_parser=_parse_flags)
