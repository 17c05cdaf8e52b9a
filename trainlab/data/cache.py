"""Datasets loaded once per study process, keyed by their ``[data]`` config.

The runner's preflight loads each distinct dataset; inline runs and deployment reuse it from the same cache, so
the key that identifies "the same data" is computed here and nowhere else.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from trainlab.data.base import Dataset
    from trainlab.data.config import DataConfig


def dataset_key(cfg: DataConfig) -> str:
    """Identity of the data a config produces: its full JSON dump (defaults included) with sorted keys."""
    return json.dumps(cfg.model_dump(mode="json"), sort_keys=True)


class DatasetCache:
    """``get(cfg)`` loads a dataset on first use and returns the same object for an equal config after that."""

    def __init__(self, load: Callable[[DataConfig], Dataset]) -> None:
        self._load = load
        self._by_key: dict[str, Any] = {}

    def get(self, cfg: DataConfig) -> Dataset:
        key = dataset_key(cfg)
        if key not in self._by_key:
            self._by_key[key] = self._load(cfg)
        return self._by_key[key]

    def peek(self, cfg: DataConfig) -> Dataset | None:
        """The cached dataset for ``cfg``, or None (nothing is loaded)."""
        return self._by_key.get(dataset_key(cfg))

    def __len__(self) -> int:
        return len(self._by_key)
