"""scikit-learn's bundled 8x8 handwritten digits: the embedded default dataset (no download).

1,797 grayscale 8x8 images with values 0..16, ten classes. trainlab rescales them to uint8 0..255 and splits
them once with a fixed, stratified 75/25 split (seed 0), so every user sees the same test set.

The data is the CSV file scikit-learn ships (``sklearn/datasets/data/digits.csv.gz``: 64 pixel columns then
the label). It is located with ``importlib.util.find_spec`` and read with NumPy, because importing sklearn
costs over a second per run process; only when the file cannot be found is sklearn imported. Both paths give
the same arrays, and the split is trainlab's own (:func:`~trainlab.data.split.stratified_split`), so the
result is identical either way.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from trainlab.data.base import Dataset, Split
from trainlab.data.split import stratified_split
from trainlab.errors import DataError

if TYPE_CHECKING:
    from trainlab.data.config import DataConfig

SPLIT_SEED = 0  # fixed: the split is part of the dataset, not of the run
TEST_FRACTION = 0.25


def bundled_csv() -> Path | None:
    """Path of sklearn's ``digits.csv.gz`` without importing sklearn, or None when it is not installed."""
    try:
        spec = importlib.util.find_spec("sklearn")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin:
        return None
    path = Path(spec.origin).parent / "datasets" / "data" / "digits.csv.gz"
    return path if path.is_file() else None


def read_digits(prefer_csv: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """``(images (1797, 8, 8) float64 0..16, labels (1797,) int64)``, from the bundled CSV when possible."""
    path = bundled_csv() if prefer_csv else None
    if path is not None:
        try:
            table = np.loadtxt(path, delimiter=",", dtype=np.float64)
        except (OSError, ValueError, EOFError) as exc:
            raise DataError(f"{path}: cannot read the bundled digits table ({exc})") from None
        if table.ndim != 2 or table.shape[1] != 65:
            raise DataError(f"{path}: expected 65 columns (64 pixels, label), got shape {table.shape}")
        return table[:, :-1].reshape(-1, 8, 8), table[:, -1].astype(np.int64)
    try:
        # Deferred: importing scikit-learn costs over a second; only needed when its CSV file is not found.
        from sklearn.datasets import load_digits as sk_load_digits
    except ImportError:
        raise DataError("the digits dataset needs scikit-learn installed (pip install scikit-learn)") from None
    bunch = sk_load_digits()
    return bunch.images.astype(np.float64), bunch.target.astype(np.int64)


def load_digits(cfg: DataConfig) -> Dataset:
    """Load the digits dataset with its fixed stratified train/test split."""
    raw, labels = read_digits()
    # 0..16 -> 0..255, rounded; (N, 8, 8) -> (N, 1, 8, 8)
    images = np.clip(np.rint(raw * (255.0 / 16.0)), 0, 255).astype(np.uint8)[:, None, :, :]
    idx_train, idx_test = stratified_split(labels, TEST_FRACTION, SPLIT_SEED)
    return Dataset(
        name="digits",
        train=Split(torch.from_numpy(images[idx_train]), torch.from_numpy(labels[idx_train])),
        test=Split(torch.from_numpy(images[idx_test]), torch.from_numpy(labels[idx_test])),
        classes=[str(i) for i in range(10)],
        source="scikit-learn's bundled digits (digits.csv.gz)",
    )
