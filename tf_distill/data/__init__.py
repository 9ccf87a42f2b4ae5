"""Data: sources (digits, IDX, tfds, image folders), splits, unlabelled images,
augmentation and the tf.data pipeline."""
