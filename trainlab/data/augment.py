"""Training-time augmentation: random crop with zero padding, horizontal flip, brightness and contrast jitter.

Randomness is separated from the transform: :meth:`BatchAugment.draw` makes every random choice for ``n``
samples from one generator (crop offsets, flips, jitter factors), and :meth:`BatchAugment.apply` applies them.
The resident loader draws a whole epoch's parameters at once and applies them per batch on the device; the
DataLoader path draws the same epoch parameters in its sampler and applies them one sample at a time. Both
depend only on (seed, epoch), and the two paths produce the same images.

Definitions (per sample, on images with values in [0, 1]):

- crop with padding ``p``: zero-pad ``p`` pixels on every side, then take the ``H x W`` window at offset
  ``(dy, dx)``, each uniform in ``0 .. 2p``: output pixel ``(i, j)`` is input pixel ``(i + dy - p, j + dx - p)``,
  or 0 outside the image. ``dy = dx = p`` is the identity.
- horizontal flip with probability 0.5: ``out[..., j] = in[..., W - 1 - j]``, after the crop.
- brightness ``b``: multiply by a factor uniform in ``[1 - b, 1 + b]``, clamp to [0, 1].
- contrast ``c``: ``(x - m) * f + m`` with ``f`` uniform in ``[1 - c, 1 + c]`` and ``m`` the image's mean
  grey level (ITU-R 601 luma weights for RGB, as torchvision does), clamp to [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from trainlab.errors import ConfigError

if TYPE_CHECKING:
    from trainlab.data.base import Dataset
    from trainlab.data.config import AugmentConfig

LUMA = (0.299, 0.587, 0.114)


@dataclass
class AugmentParams:
    """The random choices for ``n`` samples; a field is None when its augmentation is off.

    ``dy``, ``dx``: ``(n,) int64`` crop offsets in ``0 .. 2p``; ``flip``: ``(n,) bool``;
    ``brightness``, ``contrast``: ``(n,) float32`` factors.
    """

    dy: torch.Tensor | None = None
    dx: torch.Tensor | None = None
    flip: torch.Tensor | None = None
    brightness: torch.Tensor | None = None
    contrast: torch.Tensor | None = None

    def _map(self, fn) -> AugmentParams:
        return AugmentParams(**{f.name: None if (v := getattr(self, f.name)) is None else fn(v) for f in fields(self)})

    def to(self, device: torch.device | str) -> AugmentParams:
        """The same draws on ``device``."""
        return self._map(lambda t: t.to(device))

    def index(self, idx: torch.Tensor | slice) -> AugmentParams:
        """The parameters of a subset of the samples."""
        return self._map(lambda t: t[idx])

    def rows(self) -> list[tuple]:
        """One tuple ``(dy, dx, flip, brightness, contrast)`` of Python values (or None) per sample."""
        cols = [None if (v := getattr(self, f.name)) is None else v.tolist() for f in fields(self)]
        n = next((len(c) for c in cols if c is not None), 0)
        return list(zip(*[c if c is not None else [None] * n for c in cols]))


class WindowStore:
    """Random crops with padding and flips of many images as one gather, on uint8 and on any device.

    Holds the zero-padded images, and with flips also their mirror images, as one contiguous tensor
    ``S (M, C, H + 2p, W + 2p)``. ``view`` is a strided view of S's storage in which ``view[o]`` is the
    ``(C, H, W)`` window whose first element is element ``o`` of S. The crop of image ``i`` at ``(dy, dx)`` is
    ``view[i*C*Hp*Wp + dy*Wp + dx]``; its mirror image is the crop of the mirrored copy at ``dx' = 2p - dx``.
    So a batch's crops and flips together are a single ``index_select`` over precomputed offsets: no Python
    loop over samples, no per-sample kernels, and only uint8 traffic. Memory: ``(1 + hflip)`` padded copies.
    """

    def __init__(self, x: torch.Tensor, pad: int, hflip: bool) -> None:
        n, c, h, w = x.shape
        self.n, self.c, self.h, self.w, self.pad, self.hflip = n, c, h, w, pad, hflip
        self.hp, self.wp = h + 2 * pad, w + 2 * pad
        padded = F.pad(x, (pad, pad, pad, pad)) if pad else x.contiguous()  # (N, C, Hp, Wp)
        store = torch.cat([padded, padded.flip(-1)]) if hflip else padded
        self.store = store.contiguous()
        flat = self.store.view(-1)
        span = (c - 1) * self.hp * self.wp + (h - 1) * self.wp + w  # elements covered by one window
        self.view = flat.as_strided((flat.numel() - span + 1, c, h, w), (1, self.hp * self.wp, self.wp, 1))
        self.image_stride = c * self.hp * self.wp

    def offsets(self, ids: torch.Tensor, params: AugmentParams) -> torch.Tensor:
        """Flat start offsets ``(B,) int64`` of the windows of images ``ids`` under ``params``."""
        ids = ids.to(torch.int64)
        dy = params.dy if params.dy is not None else torch.full_like(ids, self.pad)
        dx = params.dx if params.dx is not None else torch.full_like(ids, self.pad)
        if self.hflip and params.flip is not None:
            flip = params.flip.to(torch.int64)
            ids = ids + self.n * flip
            dx = dx + flip * (2 * self.pad - 2 * dx)  # mirrored copy: dx' = 2p - dx
        return ids * self.image_stride + dy * self.wp + dx

    def gather(self, ids: torch.Tensor, params: AugmentParams, out: torch.Tensor | None = None) -> torch.Tensor:
        """``(B, C, H, W)`` crops (and flips) of images ``ids``, same dtype as the store."""
        return torch.index_select(self.view, 0, self.offsets(ids, params), out=out)


class BatchAugment:
    """The configured augmentations of one dataset; callable as ``augment(x, generator)`` on a float batch.

    ``x`` is ``(B, C, H, W)`` float in [0, 1]; the result has the same shape. See the module docstring for
    the exact definitions.
    """

    def __init__(self, cfg: AugmentConfig, image_shape: tuple[int, int, int]) -> None:
        self.cfg = cfg
        self.pad = int(cfg.crop_padding)
        self.hflip = bool(cfg.hflip)
        self.brightness = float(cfg.brightness)
        self.contrast = float(cfg.contrast)
        self.image_shape = image_shape

    @property
    def geometric(self) -> bool:
        """Whether crops or flips move pixels (done on uint8 by the loaders)."""
        return bool(self.pad or self.hflip)

    @property
    def photometric(self) -> bool:
        """Whether brightness or contrast jitter change values (done in float)."""
        return bool(self.brightness or self.contrast)

    def draw(self, n: int, generator: torch.Generator) -> AugmentParams:
        """Every random choice for ``n`` samples, in a fixed order, on the generator's device."""
        dev = generator.device
        p = AugmentParams()
        if self.pad:
            p.dy = torch.randint(0, 2 * self.pad + 1, (n,), generator=generator, device=dev)
            p.dx = torch.randint(0, 2 * self.pad + 1, (n,), generator=generator, device=dev)
        if self.hflip:
            p.flip = torch.rand(n, generator=generator, device=dev) < 0.5
        if self.brightness:
            u = torch.rand(n, generator=generator, device=dev)
            p.brightness = 1.0 - self.brightness + 2.0 * self.brightness * u
        if self.contrast:
            u = torch.rand(n, generator=generator, device=dev)
            p.contrast = 1.0 - self.contrast + 2.0 * self.contrast * u
        return p

    def apply(self, x: torch.Tensor, params: AugmentParams) -> torch.Tensor:
        """Apply ``params`` to a batch ``x (B, C, H, W)`` (any dtype for crops/flips; float for jitter)."""
        if self.geometric:
            ids = torch.arange(len(x), device=x.device)
            x = WindowStore(x, self.pad, self.hflip).gather(ids, params)
        if self.photometric:
            x = self.jitter(x, params)
        return x

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return self.apply(x, self.draw(len(x), generator).to(x.device))

    def jitter(self, x: torch.Tensor, params: AugmentParams) -> torch.Tensor:
        """Brightness then contrast on a float batch in [0, 1] (in place when ``x`` is a fresh tensor)."""
        if params.brightness is not None:
            x = x.mul(params.brightness.view(-1, 1, 1, 1).to(x.dtype)).clamp_(0.0, 1.0)
        if params.contrast is not None:
            if x.shape[1] == 3:
                w = torch.tensor(LUMA, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
                m = (x * w).sum(dim=1).mean(dim=(1, 2)).view(-1, 1, 1, 1)
            else:
                m = x.mean(dim=(1, 2, 3), keepdim=True)
            f = params.contrast.view(-1, 1, 1, 1).to(x.dtype)
            x = ((x - m) * f + m).clamp_(0.0, 1.0)
        return x

    def crop_flip_sample(self, img: torch.Tensor, dy: int | None, dx: int | None, flip: bool | None) -> torch.Tensor:
        """The per-sample form of crop and flip on one ``(C, H, W)`` image (the DataLoader path)."""
        if self.pad and dy is not None and dx is not None and (dy != self.pad or dx != self.pad):
            _, h, w = img.shape
            sy, sx = dy - self.pad, dx - self.pad  # output (i, j) reads input (i + sy, j + sx)
            y0, y1 = max(0, -sy), min(h, h - sy)
            x0, x1 = max(0, -sx), min(w, w - sx)
            out = torch.zeros_like(img)
            out[:, y0:y1, x0:x1] = img[:, y0 + sy : y1 + sy, x0 + sx : x1 + sx]
            img = out
        if flip:
            img = img.flip(-1)
        return img


def build_augment(cfg: AugmentConfig, ds: Dataset) -> BatchAugment:
    """The augmentation for ``ds``'s training images, as configured in ``[data.augment]``."""
    if not ds.is_image:
        raise ConfigError(
            f"data.augment: augmentations apply to images; '{ds.name}' has {tuple(ds.input_shape)} feature vectors"
        )
    c, h, w = ds.train.x.shape[1:]
    if cfg.crop_padding > max(h, w):
        raise ConfigError(f"data.augment.crop_padding = {cfg.crop_padding} is larger than the {h}x{w} images")
    return BatchAugment(cfg, (int(c), int(h), int(w)))


def resize_batch(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of a float batch ``(B, C, H, W)`` to ``size``; antialiased when shrinking."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    shrink = size[0] < x.shape[-2] or size[1] < x.shape[-1]
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False, antialias=shrink)
