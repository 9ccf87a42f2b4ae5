"""Digits with every label: the default's models and keys as base_config() sets them.

    python main.py --model=all --config=configs/digits_all_labels.py

MLP 256-128 teacher -> MLP 16 student on all 1,293 labelled training digits, early
stopping (patience 20) on the 144 validation images, one seed. Here the teacher is
barely better than the student alone and distillation does not beat it (docs/results.md,
"Results"); configs/default.py is the few-labels case where it does.
"""

from configs import default


def get_config():
    return default.base_config()
