"""Fixed, seeded train/test splits (stratified for classification) shared by every source that needs one."""

from __future__ import annotations

import numpy as np


def stratified_split(labels: np.ndarray, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(train, test)`` holding out ``test_fraction`` of each class.

    Per class, ``round(n_c * test_fraction)`` samples go to the test split, but a class keeps at least one
    training sample, and a class with two or more samples gets at least one test sample. Both index arrays
    are shuffled with the same seed, so ``head(n)`` of a split is a random subset rather than the first
    classes. The result depends only on (labels, test_fraction, seed): the split is part of the dataset,
    not of the run.
    """
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    train_parts: list[np.ndarray] = []
    test_parts: list[np.ndarray] = []
    for cls in np.unique(labels):  # sorted, so the draws are made in a fixed order
        idx = rng.permutation(np.flatnonzero(labels == cls))
        n_test = round(len(idx) * test_fraction)
        if len(idx) >= 2:
            n_test = min(max(n_test, 1), len(idx) - 1)
        else:
            n_test = 0
        test_parts.append(idx[:n_test])
        train_parts.append(idx[n_test:])
    train = np.concatenate(train_parts) if train_parts else np.zeros(0, dtype=np.int64)
    test = np.concatenate(test_parts) if test_parts else np.zeros(0, dtype=np.int64)
    return rng.permutation(train).astype(np.int64), rng.permutation(test).astype(np.int64)


def random_split(n: int, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(train, test)`` of a seeded random split of ``n`` samples (regression targets)."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(n).astype(np.int64)
    n_test = min(max(round(n * test_fraction), 1), n - 1) if n >= 2 else 0
    return order[n_test:], order[:n_test]
