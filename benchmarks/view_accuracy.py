"""How often the teacher is right on its cached views, by kind of view.

    python benchmarks/view_accuracy.py \
        --config=configs/fashion_mnist_function_matching.py \
        --views_dir=runs/fm_aug_recipes/base_0/teacher_cache/views

Function matching asks the teacher about augmented images; a teacher that is
wrong on them teaches the student its mistakes. This reads a run's views cache
(`<run>/teacher_cache/views`, written by a distilling run with
config.distill.cached_views) and the training labels of the config's data, and
prints the share of views whose largest logit is the label: in all, and for
views neither shifted nor flipped, shifted only, flipped only, and both. The
views' parameters are drawn again from the config (teacher/views.py's
draw_params, a function of the config's augmentation and first seed); the
cache's manifest must name the same data and parameters, or nothing is printed.
Full logits caches only (not config.distill.cache_top_k). Results:
benchmarks/README.md.
"""

from __future__ import annotations

import glob
import json
import os

import common  # benchmarks/common.py, beside this script
import numpy as np
from absl import app, flags

flags.DEFINE_string("config", None, "The config file the views were cached with.")
flags.DEFINE_string("views_dir", None, "A run's teacher_cache/views folder.")
flags.mark_flags_as_required(["config", "views_dir"])
FLAGS = flags.FLAGS


def main(argv):
    del argv
    from tf_distill.tasks.classifier import settings
    from tf_distill.teacher import store, views

    config = common.load_config(FLAGS.config, name_prefix="view_accuracy")
    s = settings.classifier_settings(config)
    splits = settings.load_data(config)
    y = splits.y_train
    params = views.draw_params(s.augment, len(y), s.cached_views, s.seed)
    with open(os.path.join(FLAGS.views_dir, "manifest.json")) as f:
        made_from = json.load(f)["made_from"]
    expected = store.fingerprint(
        s.cache_dtype, s.cache_top_k, s.teacher_dtype, store.fingerprint(params)
    )
    if made_from["data"] != store.fingerprint(splits.x_train):
        raise SystemExit(f"{FLAGS.views_dir} was cached from other training images")
    if made_from["settings"] != expected:
        raise SystemExit(f"{FLAGS.views_dir} holds other views than {FLAGS.config}'s")
    shards = sorted(glob.glob(os.path.join(FLAGS.views_dir, "rows_*.npz")))
    logits = np.concatenate([np.load(path)["logits"] for path in shards])
    right = logits.argmax(-1) == y[:, None]
    shifted = (params[..., views.PARAMS.index("dy")] != 0) | (
        params[..., views.PARAMS.index("dx")] != 0
    )
    flipped = params[..., views.PARAMS.index("flip_h")] > 0.5
    print(f"all {right.size} views: {right.mean():.4f} right")
    for name, kind in (
        ("neither shifted nor flipped", ~shifted & ~flipped),
        ("shifted only", shifted & ~flipped),
        ("flipped only", flipped & ~shifted),
        ("shifted and flipped", shifted & flipped),
    ):
        print(f"{name} ({kind.mean():.1%} of views): {right[kind].mean():.4f} right")


if __name__ == "__main__":
    app.run(main)
