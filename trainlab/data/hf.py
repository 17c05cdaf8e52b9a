"""Hugging Face datasets: a ``datasets.Dataset`` as a split, and the ``hf`` source (a dataset saved on disk).

A ``datasets.Dataset`` has named columns. The label column is ``data.label_column``, else the column named
``label``, else ``labels``; every other column is a feature:

- one image column (``datasets.Image``: PIL images) is the input, as ``uint8 (C, H, W)`` images;
- one array column (a list, sequence or ``ArrayND`` of numbers per row) is the input as it is;
- otherwise every feature column must be a number (``Value`` of a numeric type, ``ClassLabel``): they are
  stacked, in column order, into a ``float32`` feature vector (``Dataset.features`` names them).

A ``ClassLabel`` label column gives the class names. Text and other columns are an error naming them.

``data.name = "hf"`` reads ``data.root``: a folder written by ``save_to_disk`` (a ``DatasetDict`` with
``train`` and ``test``, optionally ``validation``, splits, or one ``Dataset``), or parquet files — a folder
holding ``train*.parquet`` and ``test*.parquet`` (optionally ``validation*.parquet``; also in subfolders, or in
subfolders named after the split), or one ``.parquet`` file. Without a test split, one is held out
(``data.test_fraction``, ``data.split_seed``; stratified by class). Nothing is fetched from the Hub.
``datasets`` is an optional extra (``pip install trainlab[datasets]``).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from trainlab.data.base import Dataset
from trainlab.data.materialize import Materialized, finish, stack
from trainlab.data.options import HeldOutSplit, LabelColumnOption
from trainlab.data.paths import cache_dir_for, files_fingerprint
from trainlab.data.split import random_split, stratified_split
from trainlab.errors import DataError

if TYPE_CHECKING:
    from trainlab.data.config import DataConfig

LABEL_COLUMNS = ("label", "labels")
# The split names a saved DatasetDict or a parquet file may use, by the split they are.
SPLIT_NAMES = {"train": ("train",), "test": ("test",), "val": ("validation", "valid", "val")}
NUMERIC = ("bool", "int", "uint", "float")  # prefixes of the numeric Value dtypes
ARRAYS = {"List", "LargeList", "Sequence", "Array2D", "Array3D", "Array4D", "Array5D"}


class HFOptions(LabelColumnOption, HeldOutSplit):
    """``hf``'s options: the label column, and the held-out split of a dataset saved without a test split."""

    def check(self, cfg: DataConfig) -> None:
        """``data.root`` is required."""
        if not cfg.root:
            raise ValueError(
                "data.root is required for the hf dataset: a folder written by save_to_disk, or parquet files"
            )


def is_hf_dataset(value: Any) -> bool:
    """Whether ``value`` is a ``datasets.Dataset`` (never imports ``datasets``: one must have made it)."""
    module = sys.modules.get("datasets")
    return module is not None and isinstance(value, module.Dataset)


def is_hf_iterable(value: Any) -> bool:
    """Whether ``value`` is a streaming ``datasets.IterableDataset``."""
    module = sys.modules.get("datasets")
    return module is not None and isinstance(value, module.IterableDataset)


def _column_kind(feature: Any) -> str:
    """``image``, ``array``, ``number`` or what else a column holds (``string``, ``Audio``, ...)."""
    kind = type(feature).__name__
    if kind == "Image":
        return "image"
    if kind == "ClassLabel":
        return "number"
    if kind == "Value":
        dtype = str(feature.dtype)
        return "number" if dtype.startswith(NUMERIC) else dtype
    if kind in ARRAYS:
        return "array"
    return "struct" if isinstance(feature, dict) else kind


def hf_split(
    ds: Any, label_column: str | None, where: str
) -> tuple[torch.Tensor, np.ndarray, list[str] | None, list[str]]:
    """``(x, y, class names or None, feature names)`` of a ``datasets.Dataset``; ``where`` names it."""
    columns = list(ds.column_names)
    label = label_column or next((c for c in LABEL_COLUMNS if c in columns), None)
    if label is None or label not in columns:
        which = f"no column '{label_column}' (data.label_column)" if label_column else "no column label or labels"
        raise DataError(
            f"{where}: {which}; its columns: {', '.join(columns) or 'none'}. Name the label column with"
            " data.label_column"
        )
    inputs = [c for c in columns if c != label]
    if not inputs:
        raise DataError(f"{where}: only the label column '{label}'; there is no feature column")
    kinds = {c: _column_kind(ds.features[c]) for c in inputs}
    other = [c for c in inputs if kinds[c] not in ("image", "array", "number")]
    if other:
        c = other[0]
        raise DataError(
            f"{where}: column '{c}' holds {kinds[c]} values; trainlab reads numbers, arrays and images: remove it"
            f" (ds.remove_columns(['{c}'])) or encode it as numbers"
        )
    features: list[str] = []
    if len(inputs) == 1 and kinds[inputs[0]] == "image":
        x = stack(list(ds.select_columns(inputs)[:][inputs[0]]), f"{where}: column '{inputs[0]}'")
    elif len(inputs) == 1 and kinds[inputs[0]] == "array":
        values = ds.select_columns(inputs).with_format("numpy")[:][inputs[0]]
        if isinstance(values, np.ndarray) and values.dtype != object:  # rows of one shape: one array already
            x = torch.from_numpy(np.ascontiguousarray(values))
        else:
            x = stack(list(values), f"{where}: column '{inputs[0]}'")
    elif all(kinds[c] == "number" for c in inputs):
        table = ds.select_columns(inputs).with_format("numpy")[:]
        x = torch.from_numpy(np.stack([np.asarray(table[c], dtype=np.float32) for c in inputs], axis=1))
        features = inputs
    else:
        shown = ", ".join(f"{c} ({kinds[c]})" for c in inputs[:5])
        raise DataError(
            f"{where}: columns {shown} cannot make one input: give one image or array column, or numeric columns"
            f" only, beside the label column '{label}' (remove the others with ds.remove_columns)"
        )
    y = np.asarray(ds.select_columns([label]).with_format("numpy")[:][label])
    names = getattr(ds.features[label], "names", None)
    return x, y, list(names) if names else None, features


def _import_datasets() -> Any:
    try:
        import datasets  # deferred: datasets is an optional extra and takes a second to import

        return datasets
    except ImportError:
        raise DataError(
            "data.name = 'hf' needs the datasets package: pip install 'trainlab[datasets]' (or datasets)"
        ) from None


def _visible_files(root: Path) -> list[Path]:
    """Every file under ``root`` (or ``root`` itself), skipping hidden files and folders (caches)."""
    if root.is_file():
        return [root]
    return sorted(
        p for p in root.rglob("*") if p.is_file() and not any(s.startswith(".") for s in p.relative_to(root).parts)
    )


def _split_of(path: Path) -> str | None:
    """The split a parquet file holds, from its name (``train-00000-of-00001``) or its folder's (``train/``)."""
    for name in (path.stem.lower(), path.parent.name.lower()):
        for split, prefixes in SPLIT_NAMES.items():
            if name.startswith(prefixes):
                return split
    return None


def _read_saved(root: Path) -> dict[str, Any]:
    """The splits of ``root``: a ``save_to_disk`` folder or parquet files, as ``datasets.Dataset`` objects."""
    hf = _import_datasets()
    if root.is_dir() and ((root / "dataset_dict.json").is_file() or (root / "state.json").is_file()):
        try:
            saved = hf.load_from_disk(str(root))
        except Exception as exc:  # a damaged or foreign folder: a message, not a traceback
            raise DataError(f"{root}: cannot read the saved dataset ({type(exc).__name__}: {exc})") from None
        if isinstance(saved, hf.Dataset):
            return {"all": saved}
        out: dict[str, Any] = {}
        for split, names in SPLIT_NAMES.items():
            found = [n for n in saved if n.lower() in names]
            if found:
                out[split] = saved[found[0]]
        if "train" not in out:
            raise DataError(f"{root}: the saved DatasetDict has no train split (it has {', '.join(saved) or 'none'})")
        return out
    files = [p for p in _visible_files(root) if p.suffix == ".parquet"]
    if not files:
        raise DataError(
            f"{root}: neither a folder written by save_to_disk (dataset_dict.json) nor parquet files"
            " (train*.parquet and test*.parquet)"
        )
    import pyarrow.parquet as pq  # deferred: pyarrow comes with the datasets extra

    by_split: dict[str, list[Path]] = {}
    for f in files:
        by_split.setdefault(_split_of(f) or "all", []).append(f)
    if "train" not in by_split:
        by_split = {"all": files}
    import pyarrow as pa  # deferred: as above

    out = {}
    for split, paths in by_split.items():
        if split == "all" and len(by_split) > 1:
            continue  # files of no split beside train/test files: not read
        try:
            table = pa.concat_tables([pq.read_table(p) for p in paths])
        except Exception as exc:  # not parquet, or files whose columns disagree
            raise DataError(f"{paths[0]}: cannot read the parquet file ({type(exc).__name__}: {exc})") from None
        out[split] = hf.Dataset(table)
    return out


def _held_out(parts: dict[str, tuple[torch.Tensor, np.ndarray]], opts: HFOptions) -> None:
    """Split a test split off ``parts["train"]`` (in place): stratified for integer labels, else random."""
    x, y = parts["train"]
    if np.issubdtype(y.dtype, np.integer) or y.dtype == bool:
        train, test = stratified_split(y.reshape(len(y), -1)[:, 0], opts.test_fraction, opts.split_seed)
    else:
        train, test = random_split(len(y), opts.test_fraction, opts.split_seed)
    parts["train"] = (x[torch.from_numpy(train)], y[train])
    parts["test"] = (x[torch.from_numpy(test)], y[test])


def materialize_hf(
    splits: dict[str, Any], label_column: str | None, where: str, opts: HFOptions | None = None
) -> Materialized:
    """Convert named ``datasets.Dataset`` splits (train, test, val; or ``all``, split with ``opts``)."""
    if "all" in splits:
        splits = {"train": splits["all"]}
    parts: dict[str, tuple[torch.Tensor, Any]] = {}
    classes = features = None
    for split, ds in splits.items():
        x, y, names, cols = hf_split(ds, label_column, f"{where}, the {split} split")
        parts[split] = (x, y)
        if split == "train":
            classes, features = names, cols
    if "test" not in parts:
        if opts is None:
            raise DataError(f"{where}: no test split")
        _held_out(parts, opts)
    return finish({k: (x, torch.from_numpy(np.asarray(y))) for k, (x, y) in parts.items()}, where, classes, features)


def load_hf(cfg: DataConfig) -> Dataset:
    """The ``hf`` source: a dataset saved with ``save_to_disk``, or parquet files, under ``data.root``."""
    opts = cfg.options
    assert isinstance(opts, HFOptions)  # the registry gives hf these options
    assert cfg.root is not None  # HFOptions.check
    root = Path(cfg.root).expanduser()
    if not root.exists():
        raise DataError(f"hf: {root} does not exist; data.root is a folder written by save_to_disk, or parquet files")
    m = materialize_hf(_read_saved(root), opts.label_column, str(root), opts)
    extra = {"label_column": opts.label_column, "test_fraction": opts.test_fraction, "split_seed": opts.split_seed}
    return Dataset(
        name="hf",
        train=m.train,
        test=m.test,
        val=m.val,
        classes=m.classes,
        task=m.task,
        source=f"Hugging Face dataset in {root}",
        fingerprint=files_fingerprint(_visible_files(root), extra, base=root if root.is_dir() else None),
        cache_dir=cache_dir_for(root),
        features=m.features,
    )


__all__ = ["HFOptions", "hf_split", "is_hf_dataset", "is_hf_iterable", "load_hf", "materialize_hf"]
