"""What both loader paths share: the epoch's random choices and the per-channel normaliser.

The resident loader (:mod:`trainlab.data.loaders`) and the DataLoader path (:mod:`trainlab.data.dataloader`)
draw the epoch's order and augmentation parameters from (seed, epoch) with these functions, so both produce
the same batches and a resumed run replays an epoch exactly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from trainlab.data.augment import AugmentParams, BatchAugment


def epoch_seed(seed: int, epoch: int) -> int:
    """Seed of epoch ``epoch``'s data order: depends on (seed, epoch) only, so a resumed run replays it."""
    return (seed * 1_000_003 + epoch * 7_919) % (2**63 - 1)


def epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The epoch's permutation of ``n`` samples ``(n,) int64`` on the CPU (the same on every device)."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(epoch_seed(seed, epoch)))


def epoch_params(augment: BatchAugment, n: int, seed: int, epoch: int) -> AugmentParams:
    """Random augmentation choices for the ``n`` positions of the epoch, drawn on the CPU from one generator."""
    return augment.draw(n, torch.Generator().manual_seed(epoch_seed(seed, epoch) + 1))


class Normalizer:
    """Per-channel normalisation of raw batches: ``x * scale + shift == (x / pixel - mean) / std``.

    ``pixel`` is 255 for uint8 images (so the result is in units of [0, 1] pixel values before
    normalisation) and 1 for float features. Tensors broadcast over ``(B, C, ...)`` (``ndim`` dimensions).
    """

    def __init__(
        self,
        channels: int,
        ndim: int,
        mean: list[float] | None,
        std: list[float] | None,
        device: torch.device | str = "cpu",
        pixel: float = 255.0,
    ) -> None:
        shape = (1, channels) + (1,) * (ndim - 2)
        mean_t = torch.tensor(mean if mean is not None else [0.0] * channels, dtype=torch.float32, device=device)
        std_t = torch.tensor(std if std is not None else [1.0] * channels, dtype=torch.float32, device=device)
        self.pixel = pixel
        self.mean, self.std = mean_t.view(shape), std_t.view(shape)
        self.scale = (1.0 / (pixel * std_t)).view(shape)
        self.shift = (-mean_t / std_t).view(shape)

    def __call__(self, xb: torch.Tensor) -> torch.Tensor:
        """Raw batch -> normalised float32; never writes into ``xb``."""
        if xb.dtype == torch.uint8:
            return xb.float().mul_(self.scale).add_(self.shift)  # float() made a new tensor: in place is safe
        return torch.addcmul(self.shift, xb.float(), self.scale)

    def unit(self, xf: torch.Tensor) -> torch.Tensor:
        """Normalise a fresh float batch already in [0, 1] units, in place."""
        return xf.sub_(self.mean).div_(self.std)
