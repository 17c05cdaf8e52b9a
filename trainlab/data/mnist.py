"""The MNIST family (MNIST, Fashion-MNIST, Kuzushiji-MNIST) from their official IDX files, ``.gz`` or plain.

All three share one layout: ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``
and ``t10k-labels-idx1-ubyte`` (each optionally ``.gz``), 28x28 grayscale, ten classes, 60,000 / 10,000 images.
They are looked for in the root, in ``root/raw`` and in torchvision's ``root/<Name>/raw``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from trainlab.data.base import Dataset, Split
from trainlab.data.catalog import FAMILY, FILES, MNIST_CLASSES, MNIST_URLS, IdxFamily
from trainlab.data.idx import read_idx
from trainlab.data.paths import cache_dir_for, default_root, files_fingerprint
from trainlab.errors import DataError

if TYPE_CHECKING:
    from trainlab.data.config import DataConfig

# The file names, class names and mirrors live in trainlab.data.catalog; re-exported for existing callers.
__all__ = [
    "FAMILY",
    "FILES",
    "MNIST_CLASSES",
    "MNIST_URLS",
    "IdxFamily",
    "find_file",
    "idx_present",
    "load_idx_dataset",
    "missing_message",
    "mnist_present",
    "read_idx_split",
]


def candidate_dirs(root: Path, dataset: str = "mnist") -> list[Path]:
    """Folders searched: the root itself, ``root/raw`` and torchvision's ``root/<Name>/raw``."""
    tv = FAMILY[dataset].torchvision_dir if dataset in FAMILY else "MNIST"
    return [root, root / "raw", root / tv / "raw"]


def find_file(root: Path, stem: str, dataset: str = "mnist") -> Path | None:
    """The first existing ``stem`` or ``stem.gz`` in the candidate folders."""
    for d in candidate_dirs(root, dataset):
        for name in (stem, stem + ".gz"):
            if (d / name).is_file():
                return d / name
    return None


def idx_present(root: Path, dataset: str = "mnist") -> bool:
    """Whether all four files are found under ``root``."""
    return all(find_file(root, stem, dataset) is not None for stem in FILES.values())


def mnist_present(root: Path) -> bool:
    """Whether MNIST's four files are found under ``root``."""
    return idx_present(root, "mnist")


def read_idx_split(root: Path, images_stem: str, labels_stem: str, num_classes: int, dataset: str) -> Split:
    """Read one split's image and label files and check they agree."""
    paths = {}
    for stem in (images_stem, labels_stem):
        p = find_file(root, stem, dataset)
        if p is None:
            raise DataError(missing_message(dataset, root))
        paths[stem] = p
    images = read_idx(paths[images_stem], expect_ndim=3)  # (N, H, W) uint8
    labels = read_idx(paths[labels_stem], expect_ndim=1)  # (N,) uint8
    if 0 in images.shape[1:]:  # no pixels: the model would fail later with a shape mismatch, far from the cause
        raise DataError(
            f"{paths[images_stem]}: images are {images.shape[1]}x{images.shape[2]} pixels; each image needs a "
            "height and width of at least 1 (28x28 in the MNIST family)"
        )
    if len(images) != len(labels):
        raise DataError(
            f"{paths[images_stem]} has {len(images)} images but {paths[labels_stem]} has {len(labels)} labels"
        )
    if len(labels) and int(labels.max()) >= num_classes:
        bad = int(np.argmax(labels >= num_classes))
        raise DataError(
            f"{paths[labels_stem]}: label {int(labels[bad])} at index {bad} is out of range 0..{num_classes - 1}"
        )
    x = torch.from_numpy(images).unsqueeze(1)  # (N, 1, H, W) uint8; read_idx's array is writable, no copy
    y = torch.from_numpy(labels.astype(np.int64))
    return Split(x, y)


def missing_message(dataset: str, root: Path, reason: str = "") -> str:
    """What is missing, where it was looked for, where to get it and where to put it."""
    fam = FAMILY.get(dataset, FAMILY["mnist"])
    names = ", ".join(f"{f}.gz" for f in FILES.values())
    urls = " or ".join(fam.mirrors)
    why = f" ({reason})" if reason else ""
    return (
        f"{dataset}: files not found in {root} (also looked in {root / 'raw'} and {root / fam.torchvision_dir / 'raw'})"
        f"{why}. Expected {names} (plain or .gz). Download them from {urls} and place them in {root}, or run "
        f"`trainlab data get {dataset} --root {root}`, or set data.root to the folder that holds them."
    )


def load_idx_dataset(cfg: DataConfig, dataset: str) -> Dataset:
    """Load member ``dataset`` of the family from ``data.root`` (default: the trainlab data folder)."""
    fam = FAMILY[dataset]
    root = Path(cfg.root).expanduser() if cfg.root else default_root(dataset)
    train = read_idx_split(root, FILES["train_images"], FILES["train_labels"], len(fam.classes), dataset)
    test = read_idx_split(root, FILES["test_images"], FILES["test_labels"], len(fam.classes), dataset)
    used = [find_file(root, stem, dataset) for stem in FILES.values()]
    return Dataset(
        name=dataset,
        train=train,
        test=test,
        classes=list(fam.classes),
        source=str(root),
        fingerprint=files_fingerprint([p for p in used if p is not None], extra=dataset),
        cache_dir=cache_dir_for(root),
    )
