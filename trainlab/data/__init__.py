"""Dataset sources, downloads, normalisation and loaders.

``load_dataset(cfg)`` returns a :class:`Dataset` with both splits in memory (fetching the files first when
they are missing and ``data.download`` is on); ``make_loaders`` turns it into the training and evaluation
iterables the loop uses. Each source is one module, imported only when used (this package is imported by
config validation, so it stays light); ``DATASETS`` maps a name to its :class:`DatasetSource`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from trainlab.data.base import Dataset, DatasetSource, Resource, Split
from trainlab.data.paths import default_root

if TYPE_CHECKING:
    from trainlab.config import DataConfig

_IDX_FILES = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
]
_IDX_LAYOUT = ", ".join(f"{f}.gz" for f in _IDX_FILES) + " (plain or .gz; also looked for in raw/)"


def _load_digits(cfg: DataConfig) -> Dataset:
    from trainlab.data.digits import load_digits

    return load_digits(cfg)


def _load_synthetic(cfg: DataConfig) -> Dataset:
    from trainlab.data.synthetic import load_synthetic

    return load_synthetic(cfg)


def _idx_loader(name: str):
    def load(cfg: DataConfig) -> Dataset:
        from trainlab.data.mnist import load_idx_dataset

        return load_idx_dataset(cfg, name)

    return load


def _idx_present(name: str):
    def present(root: Path) -> bool:
        from trainlab.data.mnist import idx_present

        return idx_present(root, name)

    return present


def _cifar_loader(name: str):
    def load(cfg: DataConfig) -> Dataset:
        from trainlab.data.cifar import load_cifar

        return load_cifar(cfg, name)

    return load


def _cifar_present(name: str):
    def present(root: Path) -> bool:
        from trainlab.data.cifar import cifar_present

        return cifar_present(root, name)

    return present


def _load_folder(cfg: DataConfig) -> Dataset:
    from trainlab.data.folder import load_folder

    return load_folder(cfg)


def _load_csv(cfg: DataConfig) -> Dataset:
    from trainlab.data.tabular import load_csv

    return load_csv(cfg)


def _idx_source(name: str, description: str) -> DatasetSource:
    from trainlab.data.catalog import FAMILY

    fam = FAMILY[name]
    return DatasetSource(
        name,
        description,
        _idx_loader(name),
        home=True,
        files=list(_IDX_FILES),
        present=_idx_present(name),
        mirrors=list(fam.mirrors),
        resources=fam.resources(),
        layout=_IDX_LAYOUT,
    )


def _cifar_source(name: str, description: str) -> DatasetSource:
    from trainlab.data.catalog import MIRRORS, expected_files, layout_text, resources

    return DatasetSource(
        name,
        description,
        _cifar_loader(name),
        home=True,
        files=expected_files(name),
        present=_cifar_present(name),
        mirrors=list(MIRRORS),
        resources=resources(name),
        layout=layout_text(name),
    )


DATASETS: dict[str, DatasetSource] = {
    "digits": DatasetSource(
        "digits", "scikit-learn's bundled 8x8 digits (1,797 images, 10 classes); no download", _load_digits
    ),
    "mnist": _idx_source("mnist", "MNIST handwritten digits, 28x28 grayscale, 60k/10k, official IDX files"),
    "fashion_mnist": _idx_source(
        "fashion_mnist", "Fashion-MNIST clothing, 28x28 grayscale, 10 classes, 60k/10k, IDX files"
    ),
    "kmnist": _idx_source("kmnist", "Kuzushiji-MNIST cursive characters, 28x28 grayscale, 10 classes, 60k/10k"),
    "cifar10": _cifar_source("cifar10", "CIFAR-10 colour images, 32x32 RGB, 10 classes, 50k/10k"),
    "cifar100": _cifar_source("cifar100", "CIFAR-100 colour images, 32x32 RGB, 100 (or 20 coarse) classes, 50k/10k"),
    "folder": DatasetSource(
        "folder",
        "your images, one subfolder per class (train/ and test/, or one tree split by data.test_fraction)",
        _load_folder,
        layout="<root>/train/<class>/*.png|jpg and <root>/test/<class>/..., or <root>/<class>/*.png|jpg",
    ),
    "csv": DatasetSource(
        "csv",
        "a table with a target column (data.target); classification or regression",
        _load_csv,
        layout="<root> is the .csv file, or a folder with train.csv and test.csv (or one .csv file)",
    ),
    "synthetic": DatasetSource(
        "synthetic",
        "generated class prototypes plus noise, any shape and class count (tests)",
        _load_synthetic,
    ),
}


def ensure_files(cfg: DataConfig) -> None:
    """Make sure a downloadable dataset's files are present: fetch them, or explain where to put them."""
    from trainlab.errors import DataError

    src = DATASETS[cfg.name]
    root = src.root(cfg.root)
    if not src.downloadable or root is None or src.present is None or src.present(root):
        return
    if not cfg.download:
        from trainlab.data.download import manual_instructions

        raise DataError(
            f"{cfg.name}: files not found in {root} and data.download = false. Fetch them with "
            f"`trainlab data get {cfg.name} --root {root}` (or drop --no-download / data.download = false). "
            f"{manual_instructions(src, root)}"
        )
    from trainlab.data.download import download_dataset

    download_dataset(src, root)
    if not src.present(root):
        raise DataError(f"{cfg.name}: downloaded into {root}, but the expected files are not there: {src.layout}")


def load_dataset(cfg: DataConfig) -> Dataset:
    """Load the dataset ``cfg.name``: fetch it if needed, apply ``limit_train``/``limit_test``, ``resize``, and
    resolve normalisation statistics (computed on the training split, cached beside the data)."""
    from trainlab.data.normalize import resolve_normalization
    from trainlab.errors import ConfigError, DataError

    ensure_files(cfg)
    ds = DATASETS[cfg.name].load(cfg)
    ds.train = ds.train.head(cfg.limit_train)
    ds.test = ds.test.head(cfg.limit_test)
    if len(ds.train) == 0 or len(ds.test) == 0:
        raise DataError(f"{cfg.name}: empty split (train {len(ds.train)}, test {len(ds.test)} samples)")
    if cfg.resize is not None:
        if not ds.is_image:
            raise ConfigError(f"data.resize applies to images; '{cfg.name}' has feature vectors {ds.input_shape}")
        ds.resize = (int(cfg.resize[0]), int(cfg.resize[1]))
    ds.mean, ds.std = resolve_normalization(cfg, ds)
    return ds


__all__ = ["DATASETS", "Dataset", "DatasetSource", "Resource", "Split", "default_root", "load_dataset"]
