"""The in-memory form every dataset source produces, and the registry entry that describes a source."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import torch

if TYPE_CHECKING:
    from trainlab.config import DataConfig


@dataclass
class Split:
    """One split of a dataset, held as whole tensors.

    ``x`` is ``(N, C, H, W) uint8`` for images (pixel values 0..255) or ``(N, F) float32`` for tables;
    ``y`` is ``(N,) int64`` class indices for classification or ``(N,)`` / ``(N, T) float32`` for regression.
    """

    x: torch.Tensor
    y: torch.Tensor

    def __post_init__(self) -> None:
        if len(self.x) != len(self.y):
            raise ValueError(f"split has {len(self.x)} inputs but {len(self.y)} targets")

    def __len__(self) -> int:
        return len(self.x)

    def head(self, n: int | None) -> Split:
        """The first ``n`` samples (all when ``n`` is None)."""
        return self if n is None or n >= len(self) else Split(self.x[:n], self.y[:n])


@dataclass
class Dataset:
    """A dataset ready for training: both splits, the class names and where it was read from."""

    name: str
    train: Split
    test: Split
    classes: list[str]
    task: Literal["classification", "regression"] = "classification"
    source: str = ""
    # Per-channel statistics computed or given for normalisation (units: [0, 1] pixel values); None if off.
    mean: list[float] | None = None
    std: list[float] | None = None

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one sample: ``(C, H, W)`` or ``(F,)``."""
        return tuple(self.train.x.shape[1:])

    @property
    def num_classes(self) -> int:
        """Number of classes (classification) or of regression targets."""
        if self.task == "classification":
            return len(self.classes)
        return 1 if self.train.y.dim() == 1 else int(self.train.y.shape[1])

    @property
    def is_image(self) -> bool:
        return self.train.x.dtype == torch.uint8 and self.train.x.dim() == 4


@dataclass
class DatasetSource:
    """A registry entry: how to load a dataset and where it looks for its files.

    ``load(cfg)`` returns a :class:`Dataset` or raises :class:`~trainlab.errors.DataError` naming the file.
    ``default_root`` is where the files are looked for when ``data.root`` is not set; ``files`` names what is
    expected there (for ``trainlab data list`` and for the offline error message).
    """

    name: str
    description: str
    load: Callable[[DataConfig], Dataset]
    default_root: Path | None = None
    files: list[str] = field(default_factory=list)
    present: Callable[[Path], bool] | None = None
