"""Per-channel normalisation statistics of a training split.

Computed in one streaming pass with float64 accumulators over chunks of samples, so memory stays flat
whatever the split's size. Units: pixel values scaled to [0, 1] (uint8 / 255); features as they are.

The statistics of a dataset read from files are cached beside the data (``<root>/.trainlab-cache/
stats-<key>.json``, else under the data home), keyed by the files' fingerprint (names, sizes, mtimes,
options) and the training split's shape, so a later run skips the pass. The values used are recorded in
every run's results (``normalize_mean``, ``normalize_std``).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from trainlab.data.paths import cache_read_paths, write_cache_file
from trainlab.errors import ConfigError

if TYPE_CHECKING:
    from trainlab.data.base import Dataset
    from trainlab.data.config import DataConfig

CHUNK_ELEMENTS = 1 << 22  # values per chunk: 4M float64 = 32 MB (x2 for the squares), whatever the sample size


def channel_stats(x: torch.Tensor, chunk: int | None = None) -> tuple[list[float], list[float]]:
    """Mean and (population) std per channel of ``x``: ``(N, C, ...)``; uint8 is scaled to [0, 1] first.

    ``chunk`` samples are converted to float64 at a time (default: as many as fit in ``CHUNK_ELEMENTS``).
    """
    n_channels = x.shape[1]
    per_sample = max(1, x[:1].numel())
    chunk = chunk or max(1, CHUNK_ELEMENTS // per_sample)
    total = torch.zeros(n_channels, dtype=torch.float64)
    total_sq = torch.zeros(n_channels, dtype=torch.float64)
    count = 0
    scale = 1.0 / 255.0 if x.dtype == torch.uint8 else 1.0
    for start in range(0, len(x), chunk):
        c = x[start : start + chunk].to(torch.float64) * scale
        c = c.transpose(0, 1).reshape(n_channels, -1)  # (C, n * H * W)
        total += c.sum(dim=1)
        total_sq += (c * c).sum(dim=1)
        count += c.shape[1]
    mean = total / count
    var = (total_sq / count - mean * mean).clamp_min(0.0)
    std = var.sqrt().clamp_min(1e-8)  # a constant channel must not divide by zero
    return mean.tolist(), std.tolist()


STATS_VERSION = 1  # bump if the computation changes, so old cache entries are not reused


def stats_key(ds: Dataset) -> str | None:
    """Cache key of the training split's statistics, or None when the data has no file fingerprint."""
    if ds.fingerprint is None:
        return None
    x = ds.train.x
    ident = [STATS_VERSION, ds.name, ds.fingerprint, list(x.shape), str(x.dtype)]
    return hashlib.sha256(json.dumps(ident).encode()).hexdigest()[:24]


def cached_channel_stats(ds: Dataset) -> tuple[list[float], list[float]]:
    """:func:`channel_stats` of the training split, read from / written to the cache beside the data."""
    key = stats_key(ds)
    if key is None or ds.cache_dir is None:
        return channel_stats(ds.train.x)
    filename = f"stats-{key}.json"
    n_channels = ds.train.x.shape[1]
    for path in cache_read_paths(ds.cache_dir, filename):
        try:
            entry = json.loads(path.read_text())
            mean, std = [float(v) for v in entry["mean"]], [float(v) for v in entry["std"]]
        except (OSError, ValueError, KeyError, TypeError):
            continue  # absent or unreadable: try the next place, else compute
        if len(mean) == len(std) == n_channels:
            return mean, std
    mean, std = channel_stats(ds.train.x)
    record = {"dataset": ds.name, "samples": len(ds.train), "mean": mean, "std": std}
    write_cache_file(ds.cache_dir, filename, lambda p: Path(p).write_text(json.dumps(record, indent=1)))
    return mean, std


def resolve_normalization(cfg: DataConfig, ds: Dataset) -> tuple[list[float] | None, list[float] | None]:
    """The (mean, std) to normalise with: None when off, the given values, or the training split's."""
    if cfg.normalize is False:
        return None, None
    n_channels = ds.train.x.shape[1]
    if cfg.normalize is True:
        return cached_channel_stats(ds)
    mean, std = list(cfg.normalize.mean), list(cfg.normalize.std)
    if len(mean) == 1 and n_channels > 1:
        mean, std = mean * n_channels, std * n_channels
    if len(mean) != n_channels:
        raise ConfigError(
            f"data.normalize: {len(mean)} mean/std values for a dataset with {n_channels} channel"
            + (f"s; give 1 or {n_channels}" if n_channels > 1 else "; give 1")
        )
    return mean, std
