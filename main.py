"""Trains a teacher, a student alone, or a distilled student; or all three.

    python main.py --model=teacher|student|distilling|all|sweep|export|evaluate \
        [--config=configs/default.py] [--config.KEY=VALUE ...] [--workdir=runs/NAME]

The same command as `tf-distill` and `python -m tf_distill` (tf_distill/cli.py),
from a checkout.
"""

from tf_distill import cli

if __name__ == "__main__":
    cli.run()
