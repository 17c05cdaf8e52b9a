"""Dataset sources, downloads, normalisation and loaders.

``load_dataset(cfg)`` returns a :class:`Dataset` with both splits in memory (fetching the files first when
they are missing and ``data.download`` is on); ``make_loaders`` (:mod:`trainlab.data.loaders`) turns it into
the training and evaluation iterables the loop uses. ``DATASETS`` (:mod:`trainlab.data.registry`) maps a name to
its :class:`DatasetSource`; each source is one module that owns its loader and its options model, and
:class:`DataConfig` is the ``[data]`` section that names one.
"""

from __future__ import annotations

from trainlab.data.base import Dataset, DatasetSource, Resource, Split
from trainlab.data.cache import DatasetCache, dataset_key
from trainlab.data.config import DataConfig
from trainlab.data.load import dataset_cache, ensure_files, load_dataset
from trainlab.data.paths import default_root
from trainlab.data.registry import DATASETS

__all__ = [
    "DATASETS",
    "DataConfig",
    "Dataset",
    "DatasetCache",
    "DatasetSource",
    "Resource",
    "Split",
    "dataset_cache",
    "dataset_key",
    "default_root",
    "ensure_files",
    "load_dataset",
]
