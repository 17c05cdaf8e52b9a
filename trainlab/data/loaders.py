"""Loaders: the ``resident`` path (the split lives on the device) and the factory for both paths.

The resident loader is the fast path (DESIGN principle 7): the split is one uint8 tensor on the training
device. Each epoch draws a seeded permutation and, with augmentation, every sample's random crop offsets,
flips and jitter factors at once. Each batch is then

1. gathered, cropped and flipped in a single uint8 ``index_select`` over a padded (and mirrored) copy of the
   split (:class:`~trainlab.data.augment.WindowStore`), or a plain gather without crops/flips;
2. converted to float and normalised in place: ``x * (1 / (255 std)) + (-mean / std)``;
3. jittered in [0, 1] space (brightness/contrast, only when configured) and resized (``data.resize``).

No Python work per sample and few, large kernels per batch: that is why it is fast on CPU and GPU alike.
The random choices depend only on (seed, epoch), so a resumed run replays an epoch exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import torch

from trainlab.data.augment import BatchAugment, WindowStore, build_augment, resize_batch
from trainlab.data.base import Dataset, Split
from trainlab.data.dataloader import make_dataloader
from trainlab.data.epoch import Normalizer, epoch_order, epoch_params, epoch_seed
from trainlab.data.sealed import is_sealed

if TYPE_CHECKING:
    from trainlab.data.config import DataConfig

# An augmentation takes a float batch (B, C, H, W) in [0, 1] and a generator, and returns a batch of the
# same shape; see trainlab.data.augment.
Augment = Callable[[torch.Tensor, torch.Generator], torch.Tensor]

# A padded (and mirrored) copy of the split is kept for crops/flips when it is at most this large (bytes);
# above it, each batch is padded on the fly (slower, but memory stays at one batch).
WINDOW_STORE_MAX_BYTES = 4 << 30


class ResidentLoader:
    """Batches of a split held on ``device`` as whole tensors.

    Yields ``(x, y)``: ``x`` float32 ``(B, C, H, W)`` (images, resized to ``resize`` when set) or ``(B, F)``
    (features), normalised; ``y`` as stored. ``set_epoch(e)`` selects the epoch's permutation and
    augmentation draws.
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
        resize: tuple[int, int] | None = None,
    ) -> None:
        self.x = split.x.to(device)
        self.y = split.y.to(device)
        self.batch_size = batch_size
        self.device = device
        self.shuffle = shuffle
        self.seed = seed
        self.augment = augment
        self.resize = tuple(resize) if resize is not None and self.x.dim() == 4 else None
        self.epoch = 0
        self.is_uint8 = self.x.dtype == torch.uint8
        # Conversion and normalisation are one multiply and one add on the raw values (x * scale + shift).
        self.norm = Normalizer(self.x.shape[1], self.x.dim(), mean, std, device, 255.0 if self.is_uint8 else 1.0)
        self.mean, self.std = self.norm.mean, self.norm.std  # broadcastable, in [0, 1] units
        self._windows = None  # WindowStore of the whole split (False: too large, batches are padded one by one)
        self._buffer: torch.Tensor | None = None  # staging buffer of raw batches, see _staging
        aug = self._fast_augment()
        if aug is not None and aug.geometric:
            self._window_store(aug)  # built now, so the first epoch's data time does not include it

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose batches the next iteration yields."""
        self.epoch = epoch

    def __len__(self) -> int:
        return (len(self.x) + self.batch_size - 1) // self.batch_size

    @property
    def num_samples(self) -> int:
        """Samples per epoch."""
        return len(self.x)

    def _fast_augment(self) -> BatchAugment | None:
        return self.augment if isinstance(self.augment, BatchAugment) and self.is_uint8 else None

    def _window_store(self, aug: BatchAugment):
        if self._windows is None:
            n, c, h, w = self.x.shape
            size = n * c * (h + 2 * aug.pad) * (w + 2 * aug.pad) * (2 if aug.hflip else 1) * self.x.element_size()
            self._windows = WindowStore(self.x, aug.pad, aug.hflip) if size <= WINDOW_STORE_MAX_BYTES else False
        return self._windows or None

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = len(self.x)
        order = epoch_order(n, self.seed, self.epoch).to(self.device) if self.shuffle else None
        aug = self._fast_augment()
        if aug is not None:
            yield from self._iter_augmented(aug, order)
            return
        aug_gen = None
        if self.augment is not None:  # a user-supplied callable: generic path, batch by batch
            aug_gen = torch.Generator(device=self.device).manual_seed(epoch_seed(self.seed, self.epoch) + 1)
        for start in range(0, n, self.batch_size):
            if order is None:
                xb, yb = self.x[start : start + self.batch_size], self.y[start : start + self.batch_size]
            else:
                idx = order[start : start + self.batch_size]
                xb = torch.index_select(self.x, 0, idx, out=self._staging(len(idx)))
                yb = torch.index_select(self.y, 0, idx)
            yield self.convert(xb, aug_gen), yb

    def _iter_augmented(
        self, aug: BatchAugment, order: torch.Tensor | None
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = len(self.x)
        order = order if order is not None else torch.arange(n, device=self.device)
        # All of the epoch's random choices at once, from a CPU generator (the same on every device).
        params = epoch_params(aug, n, self.seed, self.epoch).to(self.device)
        store = self._window_store(aug) if aug.geometric else None
        # The whole epoch's window offsets in one vectorised step, (N,) int64: batches only slice them.
        offsets = store.offsets(order, params) if store is not None else None
        for start in range(0, n, self.batch_size):
            stop = start + self.batch_size
            idx = order[start:stop]
            p = params.index(slice(start, stop)) if aug.photometric or store is None else params
            if offsets is not None:  # (B, C, H, W) uint8, cropped and flipped
                xb = torch.index_select(store.view, 0, offsets[start:stop], out=self._staging(len(idx)))
            elif aug.geometric:  # split too large for a padded copy: pad this batch only
                xb = torch.index_select(self.x, 0, idx)
                xb = WindowStore(xb, aug.pad, aug.hflip).gather(torch.arange(len(idx), device=self.device), p)
            else:
                xb = torch.index_select(self.x, 0, idx, out=self._staging(len(idx)))
            if aug.photometric:
                xf = self.norm.unit(aug.jitter(xb.float().div_(255.0), p))
            else:
                xf = self.norm(xb)
            if self.resize is not None:
                xf = resize_batch(xf, self.resize)
            yield xf, torch.index_select(self.y, 0, idx)

    def _staging(self, n: int) -> torch.Tensor:
        """A reusable buffer ``(n, ...)`` for a gathered raw batch.

        It lives only until the batch is converted (the float batch handed out is always a new tensor), so one
        buffer serves every batch: a fresh allocation per batch costs page faults that are a sizeable part of
        the resident loader's time on CPU. On CUDA, stream order keeps the reuse safe.
        """
        if self._buffer is None or len(self._buffer) < n:
            self._buffer = torch.empty(
                (max(n, self.batch_size), *self.x.shape[1:]), dtype=self.x.dtype, device=self.device
            )
        return self._buffer[:n]

    def convert(self, xb: torch.Tensor, aug_gen: torch.Generator | None = None) -> torch.Tensor:
        """Raw batch -> normalised float32 batch (resized when set), augmenting in [0, 1] space when asked."""
        if self.augment is None or aug_gen is None:
            xf = self.norm(xb)
        else:
            xf = xb.float() / 255.0 if self.is_uint8 else xb.float()
            xf = (self.augment(xf, aug_gen) - self.mean) / self.std
        if self.resize is not None:
            xf = resize_batch(xf, self.resize)
        return xf


def make_loaders(cfg: DataConfig, ds: Dataset, device: torch.device, seed: int) -> tuple[object, ResidentLoader | None]:
    """Training loader (shuffled, augmented) and test loader (in order, never augmented) for ``cfg.loader``;
    no test loader (None) when the test split is sealed (a tuning trial's, :mod:`trainlab.data.sealed`).

    The training loader is a :class:`ResidentLoader` or, with ``data.loader = "dataloader"``, a
    :class:`~trainlab.data.dataloader.EpochDataLoader`; both have ``set_epoch`` and ``len`` and yield ``(x, y)``.
    The test loader is always resident (inference timing reads ``test_loader.x``).
    """
    augment = None
    if cfg.augment.active:
        augment = build_augment(cfg.augment, ds)
    if cfg.loader == "dataloader":
        train = make_dataloader(
            cfg, ds.train, train=True, seed=seed, mean=ds.mean, std=ds.std, augment=augment, resize=ds.resize
        )
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
            resize=ds.resize,
        )
    return train, None if is_sealed(ds.test) else eval_loader(cfg, ds, ds.test, device)


def eval_loader(cfg: DataConfig, ds: Dataset, split: Split, device: torch.device) -> ResidentLoader:
    """A loader of ``split`` for evaluation (the test or the validation split of ``ds``): resident, in order,
    never augmented, normalised and resized as the training batches are."""
    return ResidentLoader(split, cfg.test_batch_size, device, shuffle=False, mean=ds.mean, std=ds.std, resize=ds.resize)
