"""``trainlab data list`` and ``trainlab data get``: the library functions the CLI calls."""

from __future__ import annotations

from pathlib import Path

from trainlab.data.download import download_dataset
from trainlab.data.registry import DATASETS
from trainlab.errors import DataError, did_you_mean


def dataset_rows() -> list[dict[str, str]]:
    """One row per dataset: name, where it looks, whether it is there, how it is obtained, what it is."""
    rows = []
    for name, src in DATASETS.items():
        root = src.default_root
        if root is None:
            where = "(bundled)" if name == "digits" else ("(generated)" if name == "synthetic" else "data.root")
            status = "available" if name in ("digits", "synthetic") else "your files"
        else:
            where = str(root)
            status = "present" if src.present is not None and src.present(root) else "missing"
        how = "download" if src.downloadable else ("-" if root is None and name in ("digits", "synthetic") else "")
        rows.append({"name": name, "status": status, "where": where, "get": how, "description": src.description})
    return rows


def data_list() -> int:
    """Print each dataset, where it looks for its files, and whether they are present. Returns 0."""
    rows = dataset_rows()
    width = max(len(r["name"]) for r in rows)
    status_w = max(len(r["status"]) for r in rows)
    for r in rows:
        print(f"{r['name']:<{width}}  {r['status']:<{status_w}}  {r['where']}")
        print(f"{'':<{width}}  {'':<{status_w}}  {r['description']}")
    print(
        "\nmissing datasets are downloaded on first use (data.download = false to forbid it) or with "
        "`trainlab data get NAME [--root DIR]`; $TRAINLAB_DATA moves the default folder."
    )
    return 0


def data_get(name: str, root: str | None) -> int:
    """Download dataset ``name`` into ``root`` (default: its default folder). Returns 0; raises DataError."""
    if name not in DATASETS:
        raise DataError(f"unknown dataset '{name}'{did_you_mean(name, DATASETS)}; allowed: {', '.join(DATASETS)}")
    src = DATASETS[name]
    if not src.downloadable:
        if name in ("digits", "synthetic"):
            raise DataError(f"{name} needs no download: {src.description}")
        raise DataError(f"{name} reads your own files (set data.root): {src.layout}")
    target = Path(root).expanduser() if root else src.default_root
    assert target is not None  # downloadable sources have a default root
    if src.present is not None and src.present(target):
        print(f"{name}: already present in {target}")
        return 0
    download_dataset(src, target)
    if src.present is not None and not src.present(target):
        raise DataError(f"{name}: downloaded into {target}, but the expected files are not there: {src.layout}")
    print(f"{name}: ready in {target}")
    return 0
