"""MNIST-family datasets from their official IDX files (``.gz`` or uncompressed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from trainlab.config import DataConfig
from trainlab.data.base import Dataset, Split
from trainlab.data.idx import read_idx
from trainlab.data.paths import default_root
from trainlab.errors import DataError

FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
MNIST_CLASSES = [str(i) for i in range(10)]
MNIST_URLS = [
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
]


def candidate_dirs(root: Path) -> list[Path]:
    """Folders searched for the files: the root itself, ``root/raw`` and torchvision's ``root/MNIST/raw``."""
    return [root, root / "raw", root / "MNIST" / "raw"]


def find_file(root: Path, stem: str) -> Path | None:
    """The first existing ``stem`` or ``stem.gz`` in the candidate folders."""
    for d in candidate_dirs(root):
        for name in (stem, stem + ".gz"):
            if (d / name).is_file():
                return d / name
    return None


def mnist_present(root: Path) -> bool:
    return all(find_file(root, stem) is not None for stem in FILES.values())


def read_idx_split(root: Path, images_stem: str, labels_stem: str, num_classes: int, dataset: str) -> Split:
    """Read one split's image and label files and check they agree."""
    paths = {}
    for stem in (images_stem, labels_stem):
        p = find_file(root, stem)
        if p is None:
            raise DataError(missing_message(dataset, root))
        paths[stem] = p
    images = read_idx(paths[images_stem], expect_ndim=3)  # (N, H, W) uint8
    labels = read_idx(paths[labels_stem], expect_ndim=1)  # (N,) uint8
    if len(images) != len(labels):
        raise DataError(
            f"{paths[images_stem]} has {len(images)} images but {paths[labels_stem]} has {len(labels)} labels"
        )
    if len(labels) and int(labels.max()) >= num_classes:
        bad = int(np.argmax(labels >= num_classes))
        raise DataError(
            f"{paths[labels_stem]}: label {int(labels[bad])} at index {bad} is out of range 0..{num_classes - 1}"
        )
    x = torch.from_numpy(images.copy()).unsqueeze(1)  # (N, 1, H, W) uint8
    y = torch.from_numpy(labels.astype(np.int64))
    return Split(x, y)


def missing_message(dataset: str, root: Path) -> str:
    from trainlab.data import DATASETS

    src = DATASETS[dataset]
    names = ", ".join(f"{f}.gz" for f in src.files)
    urls = getattr(src, "urls", None) or MNIST_URLS
    return (
        f"{dataset}: files not found in {root} (also looked in {root / 'raw'}). Expected {names} "
        f"(plain or .gz). Download them from {urls[0]} and place them in {root}, or run "
        f"`trainlab data get {dataset} --root {root}`, or set data.root to the folder that holds them."
    )


def load_mnist(cfg: DataConfig) -> Dataset:
    """Load MNIST from ``data.root`` (default: the trainlab data folder)."""
    root = Path(cfg.root).expanduser() if cfg.root else default_root("mnist")
    train = read_idx_split(root, FILES["train_images"], FILES["train_labels"], 10, "mnist")
    test = read_idx_split(root, FILES["test_images"], FILES["test_labels"], 10, "mnist")
    return Dataset(name="mnist", train=train, test=test, classes=MNIST_CLASSES, source=str(root))
