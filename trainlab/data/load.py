"""``load_dataset``: a dataset in memory, fetched first when its files are missing and downloads are allowed."""

from __future__ import annotations

import numpy as np
import torch

from trainlab.data.base import Dataset, Split
from trainlab.data.cache import DatasetCache
from trainlab.data.config import DataConfig
from trainlab.data.download import download_dataset, manual_instructions
from trainlab.data.normalize import resolve_normalization
from trainlab.data.registry import source_for
from trainlab.data.split import random_split, stratified_split
from trainlab.errors import ConfigError, DataError


def ensure_files(cfg: DataConfig) -> None:
    """Make sure a downloadable dataset's files are present: fetch them, or explain where to put them."""
    src = source_for(cfg.name)
    root = src.root(cfg.root)
    if not src.downloadable or root is None or src.present is None or src.present(root):
        return
    if not cfg.download:
        raise DataError(
            f"{cfg.name}: files not found in {root} and data.download = false. Fetch them with "
            f"`trainlab data get {cfg.name} --root {root}` (or drop --no-download / data.download = false). "
            f"{manual_instructions(src, root)}"
        )
    download_dataset(src, root)
    if not src.present(root):
        raise DataError(f"{cfg.name}: downloaded into {root}, but the expected files are not there: {src.layout}")


def load_dataset(cfg: DataConfig) -> Dataset:
    """Load the dataset ``cfg.name``: fetch it if needed, apply ``limit_train``/``limit_test``, ``resize``, and
    resolve normalisation statistics (computed on the training split, cached beside the data)."""
    ensure_files(cfg)
    ds = source_for(cfg.name).load(cfg)
    if cfg.val_fraction is not None:
        carve_validation(ds, cfg.val_fraction, cfg.val_seed)
    ds.train = ds.train.head(cfg.limit_train)
    ds.test = ds.test.head(cfg.limit_test)
    if ds.val is not None:
        ds.val = ds.val.head(cfg.limit_val)
    if len(ds.train) == 0 or len(ds.test) == 0 or (ds.val is not None and len(ds.val) == 0):
        val = f", validation {len(ds.val)}" if ds.val is not None else ""
        raise DataError(f"{cfg.name}: empty split (train {len(ds.train)}, test {len(ds.test)}{val} samples)")
    if cfg.resize is not None:
        if not ds.is_image:
            raise ConfigError(f"data.resize applies to images; '{cfg.name}' has feature vectors {ds.input_shape}")
        ds.resize = (int(cfg.resize[0]), int(cfg.resize[1]))
    ds.mean, ds.std = resolve_normalization(cfg, ds)
    return ds


def carve_validation(ds: Dataset, fraction: float, seed: int) -> None:
    """Move ``fraction`` of ``ds.train`` into ``ds.val``: stratified by class (a seeded random split for
    regression), so the validation split has the training split's class balance; the same (data, fraction,
    seed) always gives the same samples, so every run of a study is chosen on the same validation split.

    A source that gave its own validation split keeps it: carving another out of its training split would
    make two, and which one chose would be a guess, so that is an error naming both ways out.
    """
    if ds.val is not None:
        raise ConfigError(
            f"data.val_fraction: {ds.name} has its own validation split ({len(ds.val)} samples), which is used"
            " as the validation split; drop data.val_fraction to use it, or leave the validation split out of"
            " the source to carve one from the training split"
        )
    y = ds.train.y
    if ds.task == "classification":
        train_idx, val_idx = stratified_split(y.numpy(), fraction, seed)
    else:
        train_idx, val_idx = random_split(len(y), fraction, seed)
    if len(val_idx) == 0 or len(train_idx) == 0:
        raise DataError(
            f"data.val_fraction = {fraction}: the training split of {ds.name} has {len(y)} samples, too few to"
            " hold out a validation split from"
        )
    train_t, val_t = torch.from_numpy(np.sort(train_idx)), torch.from_numpy(val_idx)
    # The training split keeps its source order (the loader shuffles it per epoch); the validation split is in
    # a seeded random order, so data.limit_val takes a random subset of it rather than the first classes.
    ds.val = Split(ds.train.x[val_t], ds.train.y[val_t])
    ds.train = Split(ds.train.x[train_t], ds.train.y[train_t])
    if ds.fingerprint is not None:  # derived caches (normalisation statistics) are of this training split
        ds.fingerprint = f"{ds.fingerprint}|val={fraction!r},{seed}"


def dataset_cache() -> DatasetCache:
    """An empty cache that loads with :func:`load_dataset`."""
    return DatasetCache(load_dataset)


__all__ = ["carve_validation", "dataset_cache", "ensure_files", "load_dataset"]
