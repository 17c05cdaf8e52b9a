"""The in-memory form every dataset source produces, and the registry entry that describes a source."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import torch

from trainlab.data.options import SourceOptions
from trainlab.data.paths import default_root as home_default_root

if TYPE_CHECKING:
    from trainlab.data.config import DataConfig


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
    """A dataset ready for training: both splits (and a validation split when the source gave one), the class
    names and where it was read from."""

    name: str
    train: Split
    test: Split
    classes: list[str]
    task: Literal["classification", "regression"] = "classification"
    source: str = ""
    # Per-channel statistics computed or given for normalisation (units: [0, 1] pixel values); None if off.
    mean: list[float] | None = None
    std: list[float] | None = None
    # Size (H, W) the loaders resize image batches to on the device (data.resize); None keeps the stored size.
    resize: tuple[int, int] | None = None
    # Identity of the files the splits were read from (names, sizes, mtimes, options), for caches derived
    # from them (normalisation statistics); None when there are no files (generated or bundled data).
    fingerprint: str | None = None
    # Folder for files derived from the data (caches), beside the data when it is writable.
    cache_dir: Path | None = None
    # Column names of a table's features, in the order of x's columns (empty for images).
    features: list[str] = field(default_factory=list)
    # Regression targets are stored as (y - target_offset) / target_scale (data.target_scaling); 1 and 0 = as is.
    target_scale: float = 1.0
    target_offset: float = 0.0
    # The validation split: the source's own (a data function's third split, an hf dataset's validation
    # split), or carved from the training split by data.val_fraction; None without one. Evaluated every epoch,
    # it makes the run's choices (best epoch, epochs to target) and the study's (best variant).
    val: Split | None = None

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one sample as the model sees it: ``(C, H, W)`` (after ``resize``) or ``(F,)``."""
        shape = tuple(self.train.x.shape[1:])
        if self.resize is not None and len(shape) == 3:
            return (shape[0], *self.resize)
        return shape

    @property
    def num_classes(self) -> int:
        """Number of classes (classification) or of regression targets."""
        if self.task == "classification":
            return len(self.classes)
        return 1 if self.train.y.dim() == 1 else int(self.train.y.shape[1])

    @property
    def is_image(self) -> bool:
        """Whether the samples are ``(C, H, W) uint8`` images (else feature vectors)."""
        return self.train.x.dtype == torch.uint8 and self.train.x.dim() == 4


@dataclass(frozen=True)
class Resource:
    """One file a dataset is downloaded as: its name on the mirrors, MD5 as published, and its size.

    ``extract``: the file is an archive unpacked into the dataset's root after its checksum matches
    (and then deleted); otherwise it is kept as downloaded (the MNIST family reads its ``.gz`` files as they are).
    """

    filename: str
    md5: str
    size: int | None = None  # bytes, for the message before a download (None: unknown)
    extract: bool = False


@dataclass
class DatasetSource:
    """A registry entry: how to load a dataset and where it looks for its files.

    ``load(cfg)`` returns a :class:`Dataset` or raises :class:`~trainlab.errors.DataError` naming the file.
    ``default_root`` (for ``home`` sources) is where the files are looked for when ``data.root`` is not set;
    ``files`` names what is expected there (for ``trainlab data list`` and for the offline error message).
    ``mirrors`` are base URLs tried in order for each of ``resources``; a source without resources is never
    downloaded. ``options`` is the model of the ``[data]`` keys only this source reads (None: it has none);
    ``DataConfig.options`` is its validated instance.
    """

    name: str
    description: str
    load: Callable[[DataConfig], Dataset]
    # True: the files live in a default folder under the trainlab data home when data.root is not set.
    home: bool = False
    files: list[str] = field(default_factory=list)
    present: Callable[[Path], bool] | None = None
    mirrors: list[str] = field(default_factory=list)
    resources: list[Resource] = field(default_factory=list)
    # One line describing the expected layout under the root (for `data list` and error messages).
    layout: str = ""
    options: type[SourceOptions] | None = None

    @property
    def default_root(self) -> Path | None:
        """``$TRAINLAB_DATA/<name>`` (else ``~/.cache/trainlab/data/<name>``), read now, not at import."""
        return home_default_root(self.name) if self.home else None

    def root(self, configured: str | None) -> Path | None:
        """The folder (or file) to read: ``data.root`` when set, else the default root."""
        return Path(configured).expanduser() if configured else self.default_root

    @property
    def downloadable(self) -> bool:
        """Whether the source has files to fetch and mirrors to fetch them from."""
        return bool(self.resources and self.mirrors)

    @property
    def urls(self) -> list[str]:
        """Every URL of the first resource, mirror by mirror (for messages)."""
        return [m + self.resources[0].filename for m in self.mirrors] if self.resources else []
