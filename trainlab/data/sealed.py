"""A sealed split: one a run may not read. A tuning trial's test split is sealed, so that no code path of the
engine (evaluation, figures, compilation's example batches) can read it: reading it raises, and the trial fails
with the reason instead of choosing anything on test. Its size stays known (``len``): a count is not data.
"""

from __future__ import annotations

import dataclasses

import torch

from trainlab.data.base import Dataset, Split
from trainlab.errors import TrainlabError


class SealedSplitRead(TrainlabError):
    """Something read a split sealed for the run: a bug in the engine, reported as the run's failure."""


class SealedSplit(Split):
    """A split of ``n`` samples whose inputs and targets cannot be read (``x``, ``y`` raise
    :class:`SealedSplitRead`)."""

    def __init__(self, n: int, why: str) -> None:  # not Split's: nothing of the data is kept
        self._n = n
        self._why = why

    @property
    def x(self) -> torch.Tensor:  # type: ignore[override]
        raise SealedSplitRead(self._why)

    @property
    def y(self) -> torch.Tensor:  # type: ignore[override]
        raise SealedSplitRead(self._why)

    def __len__(self) -> int:
        return self._n

    def __repr__(self) -> str:
        return f"SealedSplit({self._n} samples)"

    def head(self, n: int | None) -> Split:
        return SealedSplit(self._n if n is None else min(n, self._n), self._why)


def seal_test(ds: Dataset) -> Dataset:
    """A copy of ``ds`` whose test split is sealed (the loaded dataset itself, shared with other runs, is left as
    it is); it must have a validation split, which the run then evaluates alone."""
    if ds.val is None:
        raise TrainlabError(f"{ds.name}: a tuning trial needs a validation split (set data.val_fraction)")
    why = f"{ds.name}: a tuning trial read the test split, which is sealed: trials choose on the validation split only"
    return dataclasses.replace(ds, test=SealedSplit(len(ds.test), why))


def is_sealed(split: Split) -> bool:
    """Whether ``split`` is sealed (its loader must not be built)."""
    return isinstance(split, SealedSplit)


__all__ = ["SealedSplit", "SealedSplitRead", "is_sealed", "seal_test"]
