"""Dataset sources, normalisation and loaders.

``load_dataset(cfg)`` returns a :class:`Dataset` with both splits in memory; ``make_loaders`` turns it into
the training and evaluation iterables the loop uses. Each source is one module; ``DATASETS`` maps a name to
its :class:`DatasetSource`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from trainlab.data.base import Dataset, DatasetSource, Split
from trainlab.data.paths import default_root

if TYPE_CHECKING:
    from trainlab.config import DataConfig


def _load_digits(cfg: DataConfig) -> Dataset:
    from trainlab.data.digits import load_digits

    return load_digits(cfg)


def _load_mnist(cfg: DataConfig) -> Dataset:
    from trainlab.data.mnist import load_mnist

    return load_mnist(cfg)


def _load_synthetic(cfg: DataConfig) -> Dataset:
    from trainlab.data.synthetic import load_synthetic

    return load_synthetic(cfg)


def _mnist_present(root):
    from trainlab.data.mnist import mnist_present

    return mnist_present(root)


_MNIST_FILES = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
]

DATASETS: dict[str, DatasetSource] = {
    "digits": DatasetSource(
        "digits", "scikit-learn's bundled 8x8 digits (1,797 images, 10 classes); no download", _load_digits
    ),
    "mnist": DatasetSource(
        "mnist",
        "MNIST handwritten digits, 28x28 grayscale, 60k/10k, official IDX files",
        _load_mnist,
        default_root=default_root("mnist"),
        files=_MNIST_FILES,
        present=_mnist_present,
    ),
    "synthetic": DatasetSource(
        "synthetic",
        "generated class prototypes plus noise, any shape and class count (tests)",
        _load_synthetic,
    ),
}


def load_dataset(cfg: DataConfig) -> Dataset:
    """Load the dataset ``cfg.name``, apply ``limit_train``/``limit_test`` and resolve normalisation stats."""
    from trainlab.data.normalize import resolve_normalization

    ds = DATASETS[cfg.name].load(cfg)
    ds.train = ds.train.head(cfg.limit_train)
    ds.test = ds.test.head(cfg.limit_test)
    if len(ds.train) == 0 or len(ds.test) == 0:
        from trainlab.errors import DataError

        raise DataError(f"{cfg.name}: empty split (train {len(ds.train)}, test {len(ds.test)} samples)")
    ds.mean, ds.std = resolve_normalization(cfg, ds)
    return ds


__all__ = ["DATASETS", "Dataset", "DatasetSource", "Split", "load_dataset"]
