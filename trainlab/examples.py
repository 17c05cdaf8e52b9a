"""Example data functions shipped with trainlab, so that the documented studies of "your own data"
(docs/data.md) run as they are: ``data.name = "trainlab.examples:spirals"``. Yours is the same function in a
module beside your study (``data.name = "mydata:spirals"``)."""

from __future__ import annotations

from typing import Any

import numpy as np


def spirals(n: int = 600, noise: float = 0.2, seed: int = 0) -> dict[str, Any]:
    """Two interleaved spirals: ``x`` (N, 2) float, ``y`` (N,) int, the first 80% the training split; the same
    data for the same arguments."""
    rng = np.random.default_rng(seed)
    t = rng.uniform(0.5, 3 * np.pi, n)
    y = np.arange(n) % 2
    x = np.stack([t * np.cos(t + np.pi * y), t * np.sin(t + np.pi * y)], axis=1) + rng.normal(0, noise, (n, 2))
    cut = int(0.8 * n)
    return {"train": (x[:cut], y[:cut]), "test": (x[cut:], y[cut:]), "classes": ["left", "right"]}


__all__ = ["spirals"]
