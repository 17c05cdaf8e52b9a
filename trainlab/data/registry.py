"""The dataset registry: every source trainlab reads, by name (``trainlab data list`` shows them).

Each source is one module that owns its loader and, when it has any, its options model
(:class:`~trainlab.data.options.SourceOptions`); this module only assembles their registry entries. A data
function (``data.name = "module:function"``, :mod:`trainlab.data.user`) is a source of its own, not in the
registry: :func:`source_for` makes its entry.
"""

from __future__ import annotations

from functools import partial

from trainlab.data.base import DatasetSource
from trainlab.data.catalog import FAMILY, FILES, IDX_LAYOUT, MIRRORS, expected_files, layout_text, resources
from trainlab.data.cifar import Cifar100Options, cifar_present, load_cifar
from trainlab.data.digits import load_digits
from trainlab.data.folder import FolderOptions, load_folder
from trainlab.data.hf import HFOptions, load_hf
from trainlab.data.mnist import idx_present, load_idx_dataset
from trainlab.data.options import SourceOptions
from trainlab.data.synthetic import SyntheticOptions, load_synthetic
from trainlab.data.tabular import CsvOptions, load_csv
from trainlab.data.user import UserDataOptions, is_user_name, load_user_data


def _idx_source(name: str, description: str) -> DatasetSource:
    fam = FAMILY[name]
    return DatasetSource(
        name,
        description,
        partial(load_idx_dataset, dataset=name),
        home=True,
        files=list(FILES.values()),
        present=partial(idx_present, dataset=name),
        mirrors=list(fam.mirrors),
        resources=fam.resources(),
        layout=IDX_LAYOUT,
    )


def _cifar_source(name: str, description: str, options: type[SourceOptions] | None = None) -> DatasetSource:
    return DatasetSource(
        name,
        description,
        partial(load_cifar, name=name),
        home=True,
        files=expected_files(name),
        present=partial(cifar_present, name=name),
        mirrors=list(MIRRORS),
        resources=resources(name),
        layout=layout_text(name),
        options=options,
    )


DATASETS: dict[str, DatasetSource] = {
    "digits": DatasetSource(
        "digits", "scikit-learn's bundled 8x8 digits (1,797 images, 10 classes); no download", load_digits
    ),
    "mnist": _idx_source("mnist", "MNIST handwritten digits, 28x28 grayscale, 60k/10k, official IDX files"),
    "fashion_mnist": _idx_source(
        "fashion_mnist", "Fashion-MNIST clothing, 28x28 grayscale, 10 classes, 60k/10k, IDX files"
    ),
    "kmnist": _idx_source("kmnist", "Kuzushiji-MNIST cursive characters, 28x28 grayscale, 10 classes, 60k/10k"),
    "cifar10": _cifar_source("cifar10", "CIFAR-10 colour images, 32x32 RGB, 10 classes, 50k/10k"),
    "cifar100": _cifar_source(
        "cifar100", "CIFAR-100 colour images, 32x32 RGB, 100 (or 20 coarse) classes, 50k/10k", Cifar100Options
    ),
    "folder": DatasetSource(
        "folder",
        "your images, one subfolder per class (train/ and test/, or one tree split by data.test_fraction)",
        load_folder,
        layout="<root>/train/<class>/*.png|jpg and <root>/test/<class>/..., or <root>/<class>/*.png|jpg",
        options=FolderOptions,
    ),
    "csv": DatasetSource(
        "csv",
        "a table with a target column (data.target); classification or regression",
        load_csv,
        layout="<root> is the .csv file, or a folder with train.csv and test.csv (or one .csv file)",
        options=CsvOptions,
    ),
    "hf": DatasetSource(
        "hf",
        "a Hugging Face dataset saved on disk (save_to_disk) or parquet files; no Hub access",
        load_hf,
        layout="<root> is a folder written by save_to_disk (train/test splits), or train*.parquet and"
        " test*.parquet files (a folder, or one .parquet file)",
        options=HFOptions,
    ),
    "synthetic": DatasetSource(
        "synthetic",
        "generated class prototypes plus noise, any shape and class count (tests)",
        load_synthetic,
        options=SyntheticOptions,
    ),
}


def source_for(name: str) -> DatasetSource:
    """The source ``data.name`` selects: a registered dataset, or a data function (``module:function``)."""
    if is_user_name(name):
        return DatasetSource(name, f"your function {name}", load_user_data, options=UserDataOptions)
    return DATASETS[name]


def option_models() -> list[type[SourceOptions]]:
    """Every source's options model, once each, in registry order (a data function's last)."""
    models = [src.options for src in DATASETS.values() if src.options is not None]
    return list(dict.fromkeys([*models, UserDataOptions]))


__all__ = ["DATASETS", "option_models", "source_for"]
