"""Where datasets live by default (``$TRAINLAB_DATA/<name>``, else ``~/.cache/trainlab/data/<name>``), where
files derived from them are cached, and the fingerprint that keys those caches."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

CACHE_DIRNAME = ".trainlab-cache"


def data_home() -> Path:
    """The folder that holds every dataset's default root."""
    env = os.environ.get("TRAINLAB_DATA")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "trainlab" / "data"


def default_root(name: str) -> Path:
    """Default ``data.root`` of dataset ``name``."""
    return data_home() / name


def cache_dir_for(root: Path) -> Path:
    """The cache folder beside the data: ``<root>/.trainlab-cache`` (``root``'s folder when it is a file)."""
    base = root.parent if root.is_file() else root
    return base / CACHE_DIRNAME


def fallback_cache_dir(preferred: Path) -> Path:
    """Where a cache goes when ``preferred`` is not writable (a read-only dataset folder): under the data home,
    in a folder named after ``preferred``'s absolute path so two datasets never share one."""
    tag = hashlib.sha256(str(preferred.resolve()).encode()).hexdigest()[:16]
    return data_home() / "cache" / tag


def cache_read_paths(preferred: Path, filename: str) -> list[Path]:
    """Candidate locations of a cached ``filename``, beside the data first."""
    return [preferred / filename, fallback_cache_dir(preferred) / filename]


def _may_write(folder: Path) -> bool:
    """Whether ``folder`` (or its nearest existing ancestor, where it would be created) may be written.

    Besides the OS's answer, a folder without any write permission bit counts as read-only even for root,
    who could write it anyway: such a dataset folder was made read-only on purpose.
    """
    probe = folder
    while not probe.exists():
        if probe.parent == probe:
            return False
        probe = probe.parent
    return probe.is_dir() and os.access(probe, os.W_OK) and bool(probe.stat().st_mode & 0o222)


def write_cache_file(preferred: Path, filename: str, write: Any) -> Path | None:
    """Write a cache file atomically beside the data, else in the fallback folder; None if neither works.

    ``write(path)`` writes the content to ``path`` (a temporary name renamed into place, so a reader never
    sees half a file). A cache that cannot be written is not an error: it is recomputed next time.
    """
    for folder in (preferred, fallback_cache_dir(preferred)):
        if not _may_write(folder):
            continue
        try:
            folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{filename}.", suffix=".tmp")
            os.close(fd)
            try:
                write(Path(tmp))
                os.chmod(tmp, 0o644)  # mkstemp makes it private; a cache is as readable as the data
                os.replace(tmp, folder / filename)
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
            return folder / filename
        except OSError:
            continue
    return None


def files_fingerprint(paths: Iterable[Path], extra: Any = None, base: Path | None = None) -> str:
    """SHA-256 of each file's name, size and modification time (ns), plus ``extra`` (options as JSON).

    Cheap (no file is read) and changes whenever a file is replaced, grown, touched, added or removed.
    Names are relative to ``base`` when given, so a moved tree keeps its fingerprint.
    """
    h = hashlib.sha256()
    for p in sorted(paths):
        st = p.stat()
        name = str(p.relative_to(base)) if base is not None else str(p.resolve())
        h.update(f"{name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    h.update(json.dumps(extra, sort_keys=True, default=str).encode())
    return h.hexdigest()
