"""scikit-learn's bundled 8x8 handwritten digits: the embedded default dataset (no download).

1,797 grayscale 8x8 images with values 0..16, ten classes. trainlab rescales them to uint8 0..255 and splits
them once with a fixed, stratified 75/25 split (seed 0), so every user sees the same test set.
"""

from __future__ import annotations

import numpy as np
import torch

from trainlab.config import DataConfig
from trainlab.data.base import Dataset, Split

SPLIT_SEED = 0  # fixed: the split is part of the dataset, not of the run
TEST_FRACTION = 0.25


def load_digits(cfg: DataConfig) -> Dataset:
    """Load the digits dataset with its fixed stratified train/test split."""
    from sklearn.datasets import load_digits as sk_load_digits
    from sklearn.model_selection import train_test_split

    bunch = sk_load_digits()
    # 0..16 -> 0..255, rounded; (N, 64) -> (N, 1, 8, 8)
    images = np.clip(np.rint(bunch.images * (255.0 / 16.0)), 0, 255).astype(np.uint8)[:, None, :, :]
    labels = bunch.target.astype(np.int64)
    idx_train, idx_test = train_test_split(
        np.arange(len(labels)), test_size=TEST_FRACTION, stratify=labels, random_state=SPLIT_SEED
    )
    return Dataset(
        name="digits",
        train=Split(torch.from_numpy(images[idx_train]), torch.from_numpy(labels[idx_train])),
        test=Split(torch.from_numpy(images[idx_test]), torch.from_numpy(labels[idx_test])),
        classes=[str(i) for i in range(10)],
        source="sklearn.datasets.load_digits (bundled)",
    )
