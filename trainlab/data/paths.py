"""Where datasets live by default: ``$TRAINLAB_DATA/<name>``, else ``~/.cache/trainlab/data/<name>``."""

from __future__ import annotations

import os
from pathlib import Path


def data_home() -> Path:
    """The folder that holds every dataset's default root."""
    env = os.environ.get("TRAINLAB_DATA")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "trainlab" / "data"


def default_root(name: str) -> Path:
    """Default ``data.root`` of dataset ``name``."""
    return data_home() / name
