"""Loaders: the ``resident`` path (the split lives on the device) and the factory for both paths.

The resident loader is the fast path (DESIGN principle 7): the split is one uint8 tensor on the training
device; each epoch draws a seeded permutation, and each batch is gathered, converted to float and normalised
on the device in one fused multiply-add: ``x * (1 / (255 std)) + (-mean / std)``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import torch

from trainlab.data.base import Dataset, Split

if TYPE_CHECKING:
    from trainlab.config import DataConfig

# An augmentation takes a float batch (B, C, H, W) in [0, 1] and a generator, and returns a batch of the
# same shape; see trainlab.data.augment.
Augment = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


def epoch_seed(seed: int, epoch: int) -> int:
    """Seed of epoch ``epoch``'s data order: depends on (seed, epoch) only, so a resumed run replays it."""
    return (seed * 1_000_003 + epoch * 7_919) % (2**63 - 1)


class ResidentLoader:
    """Batches of a split held on ``device`` as whole tensors.

    Yields ``(x, y)``: ``x`` float32 ``(B, C, H, W)`` (images) or ``(B, F)`` (features), normalised;
    ``y`` as stored. ``set_epoch(e)`` selects the epoch's permutation.
    """

    def __init__(
        self,
        split: Split,
        batch_size: int,
        device: torch.device,
        *,
        shuffle: bool,
        seed: int = 0,
        mean: list[float] | None = None,
        std: list[float] | None = None,
        augment: Augment | None = None,
    ) -> None:
        self.x = split.x.to(device)
        self.y = split.y.to(device)
        self.batch_size = batch_size
        self.device = device
        self.shuffle = shuffle
        self.seed = seed
        self.augment = augment
        self.epoch = 0
        self.is_uint8 = self.x.dtype == torch.uint8
        c = self.x.shape[1]
        bshape = (1, c) + (1,) * (self.x.dim() - 2)  # broadcast over (B, C, ...)
        mean_t = torch.tensor(mean if mean is not None else [0.0] * c, dtype=torch.float32, device=device)
        std_t = torch.tensor(std if std is not None else [1.0] * c, dtype=torch.float32, device=device)
        self.mean = mean_t.view(bshape)
        self.std = std_t.view(bshape)
        pixel = 255.0 if self.is_uint8 else 1.0
        # Without augmentation, conversion and normalisation are one multiply-add on the raw values.
        self.scale = (1.0 / (pixel * std_t)).view(bshape)
        self.shift = (-mean_t / std_t).view(bshape)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return (len(self.x) + self.batch_size - 1) // self.batch_size

    @property
    def num_samples(self) -> int:
        return len(self.x)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = len(self.x)
        gen = None
        if self.shuffle:
            # The permutation is drawn on the CPU (same order on every device), then moved once per epoch.
            gen = torch.Generator().manual_seed(epoch_seed(self.seed, self.epoch))
            order = torch.randperm(n, generator=gen).to(self.device)
        else:
            order = None
        aug_gen = None
        if self.augment is not None:
            aug_gen = torch.Generator(device=self.device).manual_seed(epoch_seed(self.seed, self.epoch) + 1)
        for start in range(0, n, self.batch_size):
            if order is None:
                xb, yb = self.x[start : start + self.batch_size], self.y[start : start + self.batch_size]
            else:
                idx = order[start : start + self.batch_size]
                xb, yb = self.x[idx], self.y[idx]
            yield self.convert(xb, aug_gen), yb

    def convert(self, xb: torch.Tensor, aug_gen: torch.Generator | None = None) -> torch.Tensor:
        """Raw batch -> normalised float32 batch, augmenting in [0, 1] space when an augmentation is set."""
        if self.augment is None or aug_gen is None:
            return (
                torch.addcmul(self.shift, xb.float(), self.scale)
                if self.is_uint8
                else (xb.float() - self.mean) / self.std
            )
        xf = xb.float() / 255.0 if self.is_uint8 else xb.float()
        xf = self.augment(xf, aug_gen)
        return (xf - self.mean) / self.std


def make_loaders(
    cfg: DataConfig, ds: Dataset, device: torch.device, seed: int
) -> tuple[ResidentLoader, ResidentLoader]:
    """Training loader (shuffled, augmented) and test loader (in order, never augmented) for ``cfg.loader``."""
    augment = None
    if cfg.augment.active:
        from trainlab.data.augment import build_augment

        augment = build_augment(cfg.augment, ds)
    if cfg.loader == "dataloader":
        from trainlab.data.dataloader import make_dataloader

        train = make_dataloader(cfg, ds.train, train=True, seed=seed, mean=ds.mean, std=ds.std, augment=augment)
    else:
        train = ResidentLoader(
            ds.train,
            cfg.batch_size,
            device,
            shuffle=True,
            seed=seed,
            mean=ds.mean,
            std=ds.std,
            augment=augment,
        )
    test = ResidentLoader(ds.test, cfg.test_batch_size, device, shuffle=False, mean=ds.mean, std=ds.std)
    return train, test
