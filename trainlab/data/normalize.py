"""Per-channel normalisation statistics of a training split.

Computed in one streaming pass with float64 accumulators over chunks of samples, so memory stays flat
whatever the split's size. Units: pixel values scaled to [0, 1] (uint8 / 255); features as they are.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from trainlab.errors import ConfigError

if TYPE_CHECKING:
    from trainlab.config import DataConfig
    from trainlab.data.base import Dataset

CHUNK = 4096  # samples per chunk: 4096 x 3 x 32 x 32 float64 = 100 MB at most


def channel_stats(x: torch.Tensor, chunk: int = CHUNK) -> tuple[list[float], list[float]]:
    """Mean and (population) std per channel of ``x``: ``(N, C, ...)``; uint8 is scaled to [0, 1] first."""
    n_channels = x.shape[1]
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


def resolve_normalization(cfg: DataConfig, ds: Dataset) -> tuple[list[float] | None, list[float] | None]:
    """The (mean, std) to normalise with: None when off, the given values, or the training split's."""
    if cfg.normalize is False:
        return None, None
    n_channels = ds.train.x.shape[1]
    if cfg.normalize is True:
        return channel_stats(ds.train.x)
    mean, std = list(cfg.normalize.mean), list(cfg.normalize.std)
    if len(mean) == 1 and n_channels > 1:
        mean, std = mean * n_channels, std * n_channels
    if len(mean) != n_channels:
        raise ConfigError(
            f"data.normalize: {len(mean)} mean/std values for a dataset with {n_channels} channels;"
            f" give 1 or {n_channels}"
        )
    return mean, std
