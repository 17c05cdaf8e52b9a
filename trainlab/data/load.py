"""``load_dataset``: a dataset in memory, fetched first when its files are missing and downloads are allowed."""

from __future__ import annotations

from trainlab.data.base import Dataset
from trainlab.data.cache import DatasetCache
from trainlab.data.config import DataConfig
from trainlab.data.download import download_dataset, manual_instructions
from trainlab.data.normalize import resolve_normalization
from trainlab.data.registry import source_for
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
    ds.train = ds.train.head(cfg.limit_train)
    ds.test = ds.test.head(cfg.limit_test)
    if len(ds.train) == 0 or len(ds.test) == 0:
        raise DataError(f"{cfg.name}: empty split (train {len(ds.train)}, test {len(ds.test)} samples)")
    if cfg.resize is not None:
        if not ds.is_image:
            raise ConfigError(f"data.resize applies to images; '{cfg.name}' has feature vectors {ds.input_shape}")
        ds.resize = (int(cfg.resize[0]), int(cfg.resize[1]))
    ds.mean, ds.std = resolve_normalization(cfg, ds)
    return ds


def dataset_cache() -> DatasetCache:
    """An empty cache that loads with :func:`load_dataset`."""
    return DatasetCache(load_dataset)


__all__ = ["dataset_cache", "ensure_files", "load_dataset"]
