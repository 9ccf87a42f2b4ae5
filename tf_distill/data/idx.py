"""IDX files: the four files of MNIST and Fashion-MNIST, gzipped as they ship or
uncompressed (the same names without .gz, as some mirrors and archives give them),
read with their headers checked, so a wrong, truncated or mismatched file fails
naming it."""

from __future__ import annotations

import gzip
import math
import os

import numpy as np

# The four standard IDX gzip files of MNIST and Fashion-MNIST.
FILES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}
IMAGES_MAGIC = 2051  # 0x00000803: unsigned bytes, 3 dimensions
LABELS_MAGIC = 2049  # 0x00000801: unsigned bytes, 1 dimension


def has_files(folder: str) -> bool:
    """Whether `folder` holds any of the four files: then it is read as IDX, and a
    missing one is named rather than the folder taken for something else."""
    return any(
        os.path.exists(os.path.join(folder, name))
        for f in FILES.values()
        for name in (f, f.removesuffix(".gz"))
    )


def load_folder(folder: str):
    """Reads the four standard IDX gzip files of an MNIST-layout folder.

    Returns:
        (x_train, y_train, x_test, y_test): images (n, rows, cols, 1) uint8 and
        labels (n,) int32.

    Raises:
        FileNotFoundError: a file is missing (named in the message).
        ValueError: a file is not gzip, truncated, has the wrong magic number or
            length, or images and labels disagree in count.
    """
    arrays = {}
    for key, filename in FILES.items():
        magic = IMAGES_MAGIC if key.endswith("images") else LABELS_MAGIC
        arrays[key] = read(os.path.join(folder, filename), magic)
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if len(images) != len(labels):
            raise ValueError(
                f"{os.path.join(folder, FILES[split + '_images'])} holds "
                f"{len(images)} images but "
                f"{os.path.join(folder, FILES[split + '_labels'])} holds "
                f"{len(labels)} labels"
            )
    return (
        arrays["train_images"][..., None],
        arrays["train_labels"].astype(np.int32),
        arrays["test_images"][..., None],
        arrays["test_labels"].astype(np.int32),
    )


def read(path: str, expected_magic: int) -> np.ndarray:
    """Reads one IDX file of unsigned bytes, checking its header: `path` (.gz),
    or the uncompressed file of that name without .gz."""
    plain = path.removesuffix(".gz")
    if not os.path.exists(path) and plain != path and os.path.exists(plain):
        with open(plain, "rb") as f:
            raw = f.read()
        path = plain
    elif not os.path.exists(path):
        raise FileNotFoundError(f"IDX file not found: {path}")
    else:
        try:
            with gzip.open(path, "rb") as f:
                raw = f.read()
        except (OSError, EOFError) as e:  # not gzip, or truncated
            raise ValueError(f"{path}: cannot decompress ({e})") from e
    if len(raw) < 8:
        raise ValueError(f"{path}: only {len(raw)} bytes, too short for an IDX header")
    magic = int.from_bytes(raw[:4], "big")
    if magic != expected_magic:
        kind = "images" if expected_magic == IMAGES_MAGIC else "labels"
        raise ValueError(
            f"{path}: magic number {magic}, expected {expected_magic} (IDX {kind})"
        )
    ndim = raw[3]
    header = 4 + 4 * ndim
    dims = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected_len = header + math.prod(dims)
    if len(raw) != expected_len:
        raise ValueError(
            f"{path}: {len(raw)} bytes after decompression, but its header "
            f"{dims} needs {expected_len}"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)
