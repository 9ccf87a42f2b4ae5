"""configs/default.py's main job, distilled with examples/my_method.py's method.

    python main.py --model=all --config=examples/my_method_config.py
    python main.py --model=all --config=examples/my_method_config.py \
        --config.distill.logit_matching.label_weight=0.25

A method of your own names itself in config.distill.method and adds its own
section of keys here: a locked config takes --config.KEY flags only for keys that
a config file has defined.
"""

import ml_collections

from configs import default


def get_config() -> ml_collections.ConfigDict:
    config = default.get_config()
    config.distill.method = "examples.my_method:LogitMatching"
    config.distill.logit_matching = ml_collections.ConfigDict()
    config.distill.logit_matching.label_weight = 0.5
    return config
