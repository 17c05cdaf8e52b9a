"""Shared fixtures: tiny study dicts, the real MNIST when present, a clean working directory."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
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


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port on 127.0.0.1 that accepts every connection and never answers (a hung server)."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                held.append(listener.accept()[0])
            except OSError:  # closed: the test is over
                return

    threading.Thread(target=accept, daemon=True).start()
    yield listener.getsockname()[1]
    listener.close()
    for conn in held:
        conn.close()
