"""The ``dataloader`` path: ``torch.utils.data.DataLoader`` over a per-sample Dataset.

This is the classic pipeline (a Dataset whose ``__getitem__`` transforms one sample, a DataLoader that
collates batches, optionally in worker processes), kept for data that does not fit on the device and for
studies of ``num_workers`` / ``pin_memory`` / ``persistent_workers`` / ``prefetch_factor``.

It applies exactly the resident loader's transforms, with the same random choices: the sampler (in the main
process) draws the epoch's order and every sample's augmentation parameters from (seed, epoch) like
:class:`~trainlab.data.loaders.ResidentLoader` does, and hands each sample's parameters to ``__getitem__``
with its index. So the batches do not depend on the number of workers or on worker seeding, persistent
workers see each new epoch, and a resumed run replays an epoch exactly.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import torch
from torch.utils.data import DataLoader, Sampler

from trainlab.data.augment import AugmentParams, BatchAugment, resize_batch
from trainlab.data.base import Split
from trainlab.data.epoch import Normalizer, epoch_order, epoch_params
from trainlab.data.pil import PilSampleDataset

if TYPE_CHECKING:
    from trainlab.data.config import DataConfig


class SampleDataset(torch.utils.data.Dataset):
    """One sample at a time: crop/flip (uint8), to float, jitter, normalise, resize.

    An item key is an index, or ``(index, dy, dx, flip, brightness, contrast)`` from :class:`EpochSampler`.
    Returns ``(x, y)``: ``x`` float32 ``(C, H, W)`` or ``(F,)``, ``y`` a 0-d tensor.
    """

    def __init__(
        self,
        split: Split,
        mean: list[float] | None,
        std: list[float] | None,
        augment: BatchAugment | None = None,
        resize: tuple[int, int] | None = None,
    ) -> None:
        self.x, self.y = split.x, split.y
        self.is_uint8 = self.x.dtype == torch.uint8
        # Broadcast over one sample (C, H, W) / (F,): drop the batch dimension of the batch normaliser.
        norm = Normalizer(self.x.shape[1], self.x.dim(), mean, std, "cpu", 255.0 if self.is_uint8 else 1.0)
        self.scale, self.shift = norm.scale[0], norm.shift[0]
        self.mean, self.std = norm.mean[0], norm.std[0]
        self.augment = augment
        self.resize = tuple(resize) if resize is not None and self.x.dim() == 4 else None

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, key: Any) -> tuple[torch.Tensor, torch.Tensor]:
        if isinstance(key, tuple):
            i, dy, dx, flip, brightness, contrast = key
        else:
            i, dy, dx, flip, brightness, contrast = int(key), None, None, None, None, None
        img = self.x[i]
        aug = self.augment
        if aug is not None and aug.geometric:
            img = aug.crop_flip_sample(img, dy, dx, flip)
        if aug is not None and (brightness is not None or contrast is not None):
            p = AugmentParams(
                brightness=None if brightness is None else torch.tensor([brightness]),
                contrast=None if contrast is None else torch.tensor([contrast]),
            )
            xf = aug.jitter(img.float().div_(255.0)[None], p)[0]
            xf = xf.sub_(self.mean).div_(self.std)
        elif self.is_uint8:
            xf = img.float().mul_(self.scale).add_(self.shift)
        else:
            xf = torch.addcmul(self.shift, img.float(), self.scale)
        if self.resize is not None:
            xf = resize_batch(xf[None], self.resize)[0]
        return xf, self.y[i]


class EpochSampler(Sampler):
    """The epoch's order (and augmentation parameters) from (seed, epoch), as the resident loader draws them."""

    def __init__(self, n: int, seed: int, shuffle: bool, augment: BatchAugment | None) -> None:
        self.n, self.seed, self.shuffle, self.augment = n, seed, shuffle, augment
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose order (and augmentation draws) ``__iter__`` yields."""
        self.epoch = epoch

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Iterator[Any]:
        order = epoch_order(self.n, self.seed, self.epoch) if self.shuffle else torch.arange(self.n)
        if self.augment is None:
            return iter(order.tolist())
        rows = epoch_params(self.augment, self.n, self.seed, self.epoch).rows()
        return iter([(i, *row) for i, row in zip(order.tolist(), rows)])


class EpochDataLoader:
    """A DataLoader with the resident loader's interface: ``set_epoch``, ``len`` (batches), ``(x, y)`` batches."""

    def __init__(self, loader: DataLoader, sampler: EpochSampler) -> None:
        self.loader = loader
        self.sampler = sampler

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose batches the next iteration yields."""
        self.sampler.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.loader)

    @property
    def num_samples(self) -> int:
        """Samples per epoch."""
        return self.sampler.n

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return iter(self.loader)


def make_dataloader(
    cfg: DataConfig,
    split: Split,
    train: bool,
    seed: int,
    mean: list[float] | None,
    std: list[float] | None,
    augment: BatchAugment | None,
    resize: tuple[int, int] | None = None,
) -> EpochDataLoader:
    """A DataLoader over ``split`` configured by ``cfg`` (batch size, workers, pinning, prefetching).

    ``train``: shuffled and augmented; otherwise in order and never augmented. ``cfg.pipeline`` picks the
    per-sample Dataset: :class:`SampleDataset` (``tensor``) or :class:`~trainlab.data.pil.PilSampleDataset`
    (``pil``). ``persistent_workers`` and ``prefetch_factor`` only apply with workers (``num_workers > 0``)
    and are ignored without; ``pin_memory`` only where CUDA is available.
    """
    if augment is not None and not isinstance(augment, BatchAugment):
        raise TypeError("the dataloader path applies trainlab's augmentations (build_augment), not a callable")
    aug = augment if train else None
    # pipeline: tensor indexing per sample, or torchvision-style PIL transforms (trainlab.data.pil); the same
    # sampler keys drive both, so the batches agree and do not depend on the workers.
    dataset_type = PilSampleDataset if cfg.pipeline == "pil" else SampleDataset
    dataset = dataset_type(split, mean, std, aug, resize)
    sampler = EpochSampler(len(split), seed, shuffle=train, augment=aug)
    kwargs: dict[str, Any] = {}
    if cfg.num_workers > 0:
        kwargs["persistent_workers"] = cfg.persistent_workers
        if cfg.prefetch_factor is not None:
            kwargs["prefetch_factor"] = cfg.prefetch_factor
    loader = DataLoader(
        dataset,
        batch_size=cfg.batch_size if train else cfg.test_batch_size,
        sampler=sampler,
        num_workers=cfg.num_workers,
        pin_memory=cfg.pin_memory and torch.cuda.is_available(),
        drop_last=False,
        **kwargs,
    )
    return EpochDataLoader(loader, sampler)
