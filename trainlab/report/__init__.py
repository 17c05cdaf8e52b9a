"""Report placeholder (replaced by the report module)."""

from __future__ import annotations

from pathlib import Path


def build_report(out_dir: str | Path, **kwargs) -> dict[str, Path]:
    return {}
