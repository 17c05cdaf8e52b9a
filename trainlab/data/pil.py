"""The ``pil`` pipeline of the DataLoader path: per-sample transforms with PIL, as torchvision users write them.

``data.pipeline = "pil"`` replaces :class:`~trainlab.data.dataloader.SampleDataset`'s tensor indexing with the
classic torchvision recipe, run once per sample in ``__getitem__`` (so in the DataLoader's workers):

1. ``Image.fromarray`` of the sample's uint8 ``(H, W, C)`` array (mode ``RGB``, or ``L`` for one channel);
2. random crop with padding: ``ImageOps.expand`` by ``crop_padding`` zeros, then ``Image.crop`` of the
   ``H x W`` window at ``(dy, dx)`` (what ``transforms.RandomCrop(size, padding=p)`` does);
3. horizontal flip: ``Image.transpose(FLIP_LEFT_RIGHT)``;
4. brightness / contrast jitter, in float32 numpy on the ``(H, W, C)`` array (see below);
5. to-tensor (``(H, W, C)`` uint8 -> ``(C, H, W)`` float32 / 255) and normalise (``(x - mean) / std``);
6. resize (``data.resize``) as the tensor pipeline does.

The random choices are not drawn here: the key of an item is ``(index, dy, dx, flip, brightness, contrast)``
from :class:`~trainlab.data.dataloader.EpochSampler`, exactly as for the tensor pipeline. So the batches depend
only on (seed, epoch), not on the number of workers, and equal the tensor pipeline's: crops and flips
exactly, jitter to float32 rounding.

Jitter follows :mod:`trainlab.data.augment`'s definitions on the float image (brightness: multiply, clamp;
contrast: blend with the mean ITU-R 601 grey level, clamp), not ``PIL.ImageEnhance``: ImageEnhance rounds to
uint8 after each step and takes an integer mean grey level, which differs from the definition by up to
~2.3/255 per pixel.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps

from trainlab.data.augment import LUMA, BatchAugment, resize_batch
from trainlab.data.base import Split
from trainlab.data.epoch import Normalizer
from trainlab.errors import ConfigError

# PIL image mode of a sample with this many channels.
MODES = {1: "L", 3: "RGB", 4: "RGBA"}


def to_hwc_uint8(x: torch.Tensor) -> np.ndarray:
    """A split's images ``(N, C, H, W)`` (uint8, or float in [0, 1]) as one contiguous uint8 array ``(N, H, W, C)``.

    Raises :class:`~trainlab.errors.ConfigError` (naming ``data.pipeline``) for anything else: feature
    vectors, float values outside [0, 1], or a channel count PIL has no mode for.
    """
    if x.dim() != 4:
        raise ConfigError(
            f"data.pipeline = 'pil' decodes each sample as an image, but the samples are {tuple(x.shape[1:])}"
            " feature vectors; use data.pipeline = 'tensor' for tables"
        )
    c = int(x.shape[1])
    if c not in MODES:
        raise ConfigError(
            f"data.pipeline = 'pil' handles images with 1, 3 or 4 channels (PIL modes L, RGB, RGBA); these have {c}"
        )
    if x.dtype != torch.uint8:
        if not x.is_floating_point():
            raise ConfigError(f"data.pipeline = 'pil' needs uint8 or float images; these are {x.dtype}")
        lo, hi = (float(x.min()), float(x.max())) if x.numel() else (0.0, 0.0)
        if lo < 0.0 or hi > 1.0:
            raise ConfigError(
                f"data.pipeline = 'pil' needs float images in [0, 1] (to store them as 8-bit pixels); these"
                f" range over [{lo:g}, {hi:g}]; use data.pipeline = 'tensor'"
            )
        x = x.mul(255.0).round_().to(torch.uint8)  # once, at construction: PIL images hold 8-bit pixels
    return np.ascontiguousarray(x.permute(0, 2, 3, 1).numpy())


class PilSampleDataset(torch.utils.data.Dataset):
    """One sample at a time through PIL: decode, pad + crop, flip, jitter, to-tensor, normalise, resize.

    Same constructor and item keys as :class:`~trainlab.data.dataloader.SampleDataset`: a key is an index, or
    ``(index, dy, dx, flip, brightness, contrast)`` from :class:`~trainlab.data.dataloader.EpochSampler` (None
    for an augmentation that is off). Returns ``(x, y)``: ``x`` float32 ``(C, H, W)`` (``resize`` when set),
    ``y`` a 0-d tensor. ``mean`` / ``std`` are per channel in [0, 1] units; None leaves the values in [0, 1].
    """

    def __init__(
        self,
        split: Split,
        mean: list[float] | None,
        std: list[float] | None,
        augment: BatchAugment | None = None,
        resize: tuple[int, int] | None = None,
    ) -> None:
        self.images = to_hwc_uint8(split.x)  # (N, H, W, C) uint8, contiguous: one sample is one slice
        self.y = split.y
        _, self.h, self.w, self.c = self.images.shape  # (N, H, W, C)
        # (C, 1, 1) per-channel statistics, as SampleDataset broadcasts them over one sample.
        norm = Normalizer(self.c, 4, mean, std, "cpu", 255.0)
        self.mean, self.std = norm.mean[0], norm.std[0]
        self.normalize = mean is not None or std is not None
        self.augment = augment
        self.luma = np.asarray(LUMA, dtype=np.float32)  # (3,) ITU-R 601 weights of the mean grey level
        self.resize = tuple(resize) if resize is not None else None

    def __len__(self) -> int:
        return len(self.images)

    def decode(self, i: int) -> Image.Image:
        """Sample ``i`` as a PIL image (mode L, RGB or RGBA), as a torchvision dataset's ``__getitem__`` makes it."""
        arr = self.images[i]  # (H, W, C) uint8 view; fromarray picks the mode from the shape
        return Image.fromarray(arr[:, :, 0] if self.c == 1 else arr)

    def __getitem__(self, key: Any) -> tuple[torch.Tensor, torch.Tensor]:
        if isinstance(key, tuple):
            i, dy, dx, flip, brightness, contrast = key
        else:
            i, dy, dx, flip, brightness, contrast = int(key), None, None, None, None, None
        img = self.decode(i)
        aug = self.augment
        if aug is not None and aug.pad and dy is not None and dx is not None:
            # Zero-pad p pixels per side, then the H x W window whose top-left corner is (dx, dy) in the padded
            # image: output pixel (i, j) is input pixel (i + dy - p, j + dx - p), as augment.py defines it.
            img = ImageOps.expand(img, border=aug.pad, fill=0)
            img = img.crop((dx, dy, dx + self.w, dy + self.h))
        if aug is not None and flip:
            img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        arr = np.array(img)  # (H, W) or (H, W, C) uint8, a writable copy (torch.from_numpy needs one)
        if arr.ndim == 2:
            arr = arr[:, :, None]
        if aug is not None and (brightness is not None or contrast is not None):
            t = torch.from_numpy(self.jitter(arr, brightness, contrast)).permute(2, 0, 1).contiguous()
        else:
            # to-tensor: (H, W, C) uint8 -> (C, H, W) float32 in [0, 1]
            t = torch.from_numpy(arr).permute(2, 0, 1).contiguous().float().div_(255.0)
        if self.normalize:
            t = t.sub_(self.mean).div_(self.std)
        if self.resize is not None:
            t = resize_batch(t[None], self.resize)[0]
        return t, self.y[i]

    def jitter(self, arr: np.ndarray, brightness: float | None, contrast: float | None) -> np.ndarray:
        """Brightness then contrast of one ``(H, W, C)`` uint8 image -> float32 ``(H, W, C)`` in [0, 1]."""
        xf = arr.astype(np.float32) / np.float32(255.0)
        if brightness is not None:
            xf = np.clip(xf * np.float32(brightness), 0.0, 1.0)
        if contrast is not None:
            grey = xf @ self.luma if self.c == 3 else xf  # (H, W) luma for RGB; the image itself otherwise
            m = np.float32(grey.mean(dtype=np.float32))
            xf = np.clip((xf - m) * np.float32(contrast) + m, 0.0, 1.0)
        return xf.astype(np.float32, copy=False)
