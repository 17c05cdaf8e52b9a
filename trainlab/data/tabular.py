"""``csv``: a table with a target column, for classification or regression.

``data.root`` names the ``.csv`` file, or a folder holding ``train.csv`` and ``test.csv`` (the given split) or
exactly one ``.csv`` file. The first row is the header. Columns are typed from their values:

- numeric (every value parses as a number): used as they are, then scaled (``data.scaling``);
- yes/no (every value is one of yes/no, y/n, true/false, t/f, any case): 1/0;
- anything else is categorical: one 0/1 column per category seen in the training split, named
  ``column=value``; a category seen only in the test split encodes as all zeros.

``data.features`` picks feature columns by name (default: every column but the target). An empty cell (or NA,
N/A, NaN, null, None, ?) in a used column is an error naming its line, or drops the row with
``data.missing = "drop"``. Without train/test files the split is seeded (``data.split_seed``) and stratified
by class for classification. Scaling statistics (min-max or mean/std) are fitted on the training split only.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import torch
from pydantic import Field

from trainlab.data.base import Dataset, Split
from trainlab.data.options import HeldOutSplit, TaskOption
from trainlab.data.paths import cache_dir_for, files_fingerprint
from trainlab.data.split import random_split, stratified_split
from trainlab.errors import DataError, did_you_mean

if TYPE_CHECKING:
    from trainlab.data.config import DataConfig

MISSING = {"", "na", "n/a", "nan", "null", "none", "?"}
YES = {"yes", "y", "true", "t"}
NO = {"no", "n", "false", "f"}
MAX_CATEGORIES = 100  # more distinct values than this is an identifier or free text, not a category
# Largest magnitude the float32 tensors hold (3.4e38): a value beyond it, raw or after scaling, becomes inf.
FLOAT32_MAX = float(np.finfo(np.float32).max)


class CsvOptions(TaskOption, HeldOutSplit):
    """``csv``'s options: the target and feature columns, the task, scaling, missing cells and the split."""

    target: str | None = Field(None, description="csv: name of the target column (required for csv).")
    features: list[str] | None = Field(
        None, min_length=1, description="csv: feature columns by name (default: every column but the target)."
    )
    scaling: Literal["none", "minmax", "standard"] = Field(
        "standard", description="csv: scaling of numeric feature columns, fitted on the training split only."
    )
    target_scaling: Literal["none", "minmax", "standard"] = Field(
        "none",
        description="csv regression: scale the target, fitted on the training split (loss in scaled units; "
        "MAE reported in the target's units).",
    )
    missing: Literal["error", "drop"] = Field(
        "error", description="csv: an empty/NA cell in a used column is an error naming its row, or drops the row."
    )
    delimiter: str = Field(",", min_length=1, max_length=1, description="csv: field separator character.")

    def check(self, cfg: DataConfig) -> None:
        """``data.target`` and ``data.root`` are required; ``data.features`` must not list the target."""
        if not self.target:
            raise ValueError('data.target is required for the csv dataset: the target column\'s name, e.g. "label"')
        if not cfg.root:
            raise ValueError("data.root is required for the csv dataset: the .csv file (or a folder holding it)")
        if self.features is not None and self.target in self.features:
            raise ValueError(f"data.features lists the target column '{self.target}'; remove it")


@dataclass
class Table:
    """A CSV file's header and rows (cells stripped), with each row's line number in the file."""

    path: Path
    header: list[str]
    rows: list[list[str]]
    lines: list[int]


def read_table(path: Path, delimiter: str) -> Table:
    """Parse ``path``; a row with the wrong number of cells is an error naming its line."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f, delimiter=delimiter)
            try:
                header = [h.strip() for h in next(reader)]
            except StopIteration:
                raise DataError(f"{path}: the file is empty; expected a header row then data rows") from None
            if len(set(header)) != len(header):
                dupes = sorted({h for h in header if header.count(h) > 1})
                raise DataError(f"{path}: the header repeats column names {dupes}")
            rows, lines = [], []
            for row in reader:
                if not row or all(not c.strip() for c in row):
                    continue  # blank line
                if len(row) != len(header):
                    raise DataError(
                        f"{path}, line {reader.line_num}: {len(row)} cells but the header has {len(header)} "
                        f"columns (delimiter {delimiter!r})"
                    )
                rows.append([c.strip() for c in row])
                lines.append(reader.line_num)
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except csv.Error as exc:
        raise DataError(f"{path}: not a valid CSV file ({exc})") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if not rows:
        raise DataError(f"{path}: the file has a header but no data rows")
    return Table(path, header, rows, lines)


def _is_missing(v: str) -> bool:
    return v.lower() in MISSING


def _to_float(v: str) -> float | None:
    try:
        f = float(v)
    except ValueError:
        return None
    return f if math.isfinite(f) else None


def _not_a_number(v: str) -> str:
    """Why ``v`` is not a usable number, for a message: ``inf`` and ``1e999`` parse but are not finite."""
    try:
        float(v)
    except ValueError:
        return "is not a number"
    return "is not a finite number"


def find_csv(root: Path) -> tuple[Path, Path | None]:
    """``(train or only file, test file or None)`` for ``data.root``."""
    if root.is_file():
        return root, None
    if not root.is_dir():
        raise DataError(f"csv: data.root {root} does not exist; give the .csv file or a folder holding it")
    if (root / "train.csv").is_file() and (root / "test.csv").is_file():
        return root / "train.csv", root / "test.csv"
    found = sorted(root.glob("*.csv"))
    if len(found) != 1:
        what = "no .csv file" if not found else f"{len(found)} .csv files ({', '.join(p.name for p in found)})"
        raise DataError(f"csv: {root} holds {what}; set data.root to the file, or provide train.csv and test.csv")
    return found[0], None


def _column(table: Table, name: str, what: str) -> int:
    if name not in table.header:
        raise DataError(
            f"{table.path}: no {what} column '{name}'{did_you_mean(name, table.header)}; "
            f"columns: {', '.join(table.header)}"
        )
    return table.header.index(name)


def load_csv(cfg: DataConfig) -> Dataset:
    """Load a CSV table as an ``(N, F) float32`` feature split with int64 classes or float32 targets.

    Options: :class:`CsvOptions`.
    """
    opts = cfg.options
    assert isinstance(opts, CsvOptions)  # the registry gives csv these options
    if not cfg.root or not opts.target:
        raise DataError("csv: data.root (the file) and data.target (the target column) are required")
    train_path, test_path = find_csv(Path(cfg.root).expanduser())
    tables = [read_table(train_path, opts.delimiter)]
    if test_path is not None:
        tables.append(read_table(test_path, opts.delimiter))
        if tables[1].header != tables[0].header:
            raise DataError(f"{test_path}: its header differs from {train_path}'s; both need the same columns")
    first = tables[0]
    target_col = _column(first, opts.target, "target")
    names = opts.features if opts.features is not None else [h for h in first.header if h != opts.target]
    if not names:
        raise DataError(f"{train_path}: no feature columns besides the target '{opts.target}'")
    feat_cols = [_column(first, n, "feature") for n in names]
    used = [target_col, *feat_cols]

    # Missing cells: an error naming the first one, or the rows are dropped.
    for t in tables:
        keep_rows, keep_lines = [], []
        for row, line in zip(t.rows, t.lines):
            bad = next((c for c in used if _is_missing(row[c])), None)
            if bad is None:
                keep_rows.append(row)
                keep_lines.append(line)
            elif opts.missing == "error":
                raise DataError(
                    f"{t.path}, line {line}: column '{t.header[bad]}' is empty or NA ({row[bad]!r}); fill it, "
                    'leave the column out of data.features, or set data.missing = "drop"'
                )
        t.rows, t.lines = keep_rows, keep_lines
        if not t.rows:
            raise DataError(f"{t.path}: no rows left after dropping rows with missing values")

    # Targets.
    all_rows = [(t, row, line) for t in tables for row, line in zip(t.rows, t.lines)]
    classes: list[str] = []
    if opts.task == "regression":
        values = []
        for t, row, line in all_rows:
            v = _to_float(row[target_col])
            if v is None:
                raise DataError(
                    f"{t.path}, line {line}: target '{opts.target}' = {row[target_col]!r} is not a number; "
                    'regression needs a numeric target (or set data.task = "classification")'
                )
            if abs(v) > FLOAT32_MAX:
                raise DataError(
                    f"{t.path}, line {line}: target '{opts.target}' = {row[target_col]!r} is beyond float32's "
                    f"range (±{FLOAT32_MAX:.3g}), which targets are stored in; rescale the target in the file"
                )
            values.append(v)
        y_all = np.asarray(values, dtype=np.float32)
    else:
        raw = [row[target_col] for _, row, _ in all_rows]
        nums = [_to_float(v) for v in raw]
        if all(n is not None for n in nums):  # numeric labels: ordered by value, named like 3 (not 3.0)
            keys = sorted(set(nums))
            classes = [format(k, "g") for k in keys]
            lookup = {k: i for i, k in enumerate(keys)}
            y_all = np.asarray([lookup[n] for n in nums], dtype=np.int64)
        else:
            classes = sorted(set(raw))
            lookup = {k: i for i, k in enumerate(classes)}
            y_all = np.asarray([lookup[v] for v in raw], dtype=np.int64)
        if len(classes) < 2:
            raise DataError(f"{train_path}: target '{opts.target}' has a single value {classes}; nothing to classify")

    # Split: the given files, or a fixed seeded split of the one table.
    n_first = len(first.rows)
    if test_path is not None:
        tr_idx, te_idx = np.arange(n_first), np.arange(n_first, len(all_rows))
    elif opts.task == "classification":
        tr_idx, te_idx = stratified_split(y_all, opts.test_fraction, opts.split_seed)
    else:
        tr_idx, te_idx = random_split(len(all_rows), opts.test_fraction, opts.split_seed)
    if len(tr_idx) == 0 or len(te_idx) == 0:
        raise DataError(f"{train_path}: {len(all_rows)} rows are too few to split into train and test")
    train_set = set(tr_idx.tolist())

    # Features, column by column.
    columns: list[np.ndarray] = []
    feature_names: list[str] = []
    numeric_mask: list[bool] = []
    for name, c in zip(names, feat_cols):
        cells = [row[c] for _, row, _ in all_rows]
        nums = [_to_float(v) for v in cells]
        lowered = [v.lower() for v in cells]
        if all(n is not None for n in nums):
            columns.append(np.asarray(nums, dtype=np.float64))
            feature_names.append(name)
            numeric_mask.append(True)
        elif all(v in YES or v in NO for v in lowered):
            columns.append(np.asarray([1.0 if v in YES else 0.0 for v in lowered]))
            feature_names.append(name)
            numeric_mask.append(False)
        else:
            cats = sorted({cells[i] for i in train_set})
            numeric = sum(n is not None for n in nums)
            if len(cats) > MAX_CATEGORIES and numeric > len(nums) // 2:
                # Mostly numbers, too many values to be categories: the other cells are mistakes; name the first.
                i = next(i for i, n in enumerate(nums) if n is None)
                t, _, line = all_rows[i]
                raise DataError(
                    f"{t.path}, line {line}: column '{name}' = {cells[i]!r} {_not_a_number(cells[i])}, but the "
                    f"column is otherwise numeric ({numeric} of {len(nums)} values are numbers); fix the cell, "
                    'make it empty (with data.missing = "drop"), or leave the column out of data.features'
                )
            if len(cats) > MAX_CATEGORIES:
                raise DataError(
                    f"{train_path}: column '{name}' has {len(cats)} distinct non-numeric values (more than "
                    f"{MAX_CATEGORIES}); it looks like an identifier or free text: leave it out of data.features"
                )
            for cat in cats:
                columns.append(np.asarray([1.0 if v == cat else 0.0 for v in cells]))
                feature_names.append(f"{name}={cat}")
                numeric_mask.append(False)
    x_all = np.stack(columns, axis=1)  # (N, F) float64

    # Scaling of numeric columns, fitted on the training rows only.
    num = np.asarray(numeric_mask)
    peak = np.abs(x_all).max(axis=0)  # each column's largest magnitude before scaling, for the message below
    overflow = np.zeros(len(feature_names), dtype=bool)
    # Values near float64's limit (±1e308) overflow the mean, the spread or the difference (inf, then nan):
    # silenced here and refused below, naming the column, instead of a run that diverges.
    with np.errstate(over="ignore", invalid="ignore"):
        if opts.scaling != "none" and num.any():
            fit = x_all[tr_idx][:, num]
            if opts.scaling == "standard":
                center, spread = fit.mean(axis=0), fit.std(axis=0)
            else:
                center, spread = fit.min(axis=0), fit.max(axis=0) - fit.min(axis=0)
            # An infinite spread would map the column to 0 without a nan: refused too, the column would be lost.
            overflow[num] = ~(np.isfinite(center) & np.isfinite(spread))
            spread = np.where(spread > 0, spread, 1.0)  # a constant column stays constant instead of dividing by 0
            x_all[:, num] = (x_all[:, num] - center) / spread
        overflow |= ~(np.abs(x_all) <= FLOAT32_MAX).all(axis=0)  # inf or nan, or inf once stored as float32
    if overflow.any():
        col = int(np.argmax(overflow))
        raise DataError(
            f"{train_path}: column '{feature_names[col]}' has values up to {peak[col]:.3g} in magnitude, too large "
            f"to scale (data.scaling = {opts.scaling!r}) or to hold in float32 (at most {FLOAT32_MAX:.3g}): rescale "
            "the column in the file, or leave it out of data.features"
        )

    # Regression target scaling (data.target_scaling), fitted on the training rows only: the model learns
    # y' = (y - offset) / scale; MAE is reported back in the target's own units (scale * MAE').
    target_scale, target_offset = 1.0, 0.0
    if opts.task == "regression" and opts.target_scaling != "none":
        fit_y = y_all[tr_idx].astype(np.float64)
        if opts.target_scaling == "standard":
            target_offset, target_scale = float(fit_y.mean()), float(fit_y.std())
        else:
            target_offset, target_scale = float(fit_y.min()), float(fit_y.max() - fit_y.min())
        target_scale = target_scale if target_scale > 0 else 1.0
        with np.errstate(over="ignore", invalid="ignore"):  # refused below, naming the target
            y_all = ((y_all - target_offset) / target_scale).astype(np.float32)
        if not (math.isfinite(target_scale) and np.isfinite(y_all).all()):
            raise DataError(
                f"{train_path}: target '{opts.target}' overflows float32 when scaled (data.target_scaling = "
                f"{opts.target_scaling!r}; values up to {float(np.abs(fit_y).max()):.3g} in magnitude): rescale the "
                "target in the file"
            )

    x = torch.from_numpy(x_all.astype(np.float32))
    y = torch.from_numpy(y_all)
    tr, te = torch.from_numpy(tr_idx), torch.from_numpy(te_idx)
    files = [train_path] + ([test_path] if test_path is not None else [])
    options = [
        opts.target,
        names,
        opts.task,
        opts.scaling,
        opts.target_scaling,
        opts.missing,
        opts.delimiter,
        opts.test_fraction,
        opts.split_seed,
    ]
    return Dataset(
        name="csv",
        train=Split(x[tr], y[tr]),
        test=Split(x[te], y[te]),
        classes=classes,
        task=opts.task,
        source=", ".join(str(p) for p in files),
        fingerprint=files_fingerprint(files, extra=options),
        cache_dir=cache_dir_for(train_path),
        features=feature_names,
        target_scale=target_scale,
        target_offset=target_offset,
    )
