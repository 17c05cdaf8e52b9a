"""Shared fixtures: tiny study dicts, the real MNIST when present, a clean working directory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from helpers import tiny_study

REPO = Path(__file__).resolve().parent.parent
MNIST_RAW = REPO.parent / "shared" / "data" / "mnist" / "raw"


@pytest.fixture
def mnist_root() -> Path:
    """The official MNIST files shipped beside the project (skipped where they are absent)."""
    if not (MNIST_RAW / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"real MNIST not found in {MNIST_RAW}")
    return MNIST_RAW


@pytest.fixture
def tiny() -> dict[str, Any]:
    return tiny_study()
