"""The shipped recipes: one TOML per classic study, runnable as ``trainlab run recipe:NAME``.

Recipes live in the repository's ``recipes/`` folder (installed to ``<prefix>/share/trainlab/recipes``).
``--smoke`` swaps a recipe's dataset for a tiny generated stand-in of the same shape and runs one short epoch
per variant, so every recipe can be exercised without its real data.
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path
from typing import Any

from trainlab.errors import ConfigError, did_you_mean


def recipe_dirs() -> list[Path]:
    """Folders searched for recipes: the source checkout's ``recipes/``, then the installed copy."""
    return [
        Path(__file__).resolve().parent.parent / "recipes",
        Path(sys.prefix) / "share" / "trainlab" / "recipes",
    ]


def _all() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for d in recipe_dirs():
        if d.is_dir():
            for p in sorted(d.glob("*.toml")):
                found.setdefault(p.stem, p)
    return found


def recipe_path(name: str) -> Path:
    """Path of recipe ``name``; an unknown name lists the recipes."""
    recipes = _all()
    if name not in recipes:
        raise ConfigError(f"unknown recipe '{name}'{did_you_mean(name, recipes)}; recipes: {', '.join(recipes)}")
    return recipes[name]


def list_recipes() -> list[tuple[str, str]]:
    """(name, one-line description) of every shipped recipe."""
    out = []
    for name, path in _all().items():
        try:
            desc = tomllib.loads(path.read_text()).get("study", {}).get("description", "")
        except (OSError, tomllib.TOMLDecodeError):
            desc = "(unreadable)"
        out.append((name, desc.strip().splitlines()[0] if desc.strip() else ""))
    return out


# Per-sample shape and class count of each dataset's stand-in for --smoke.
SMOKE_SHAPES: dict[str, tuple[list[int], int]] = {
    "digits": ([1, 8, 8], 10),
    "mnist": ([1, 28, 28], 10),
    "fashion_mnist": ([1, 28, 28], 10),
    "kmnist": ([1, 28, 28], 10),
    "cifar10": ([3, 32, 32], 10),
    "cifar100": ([3, 32, 32], 100),
}


def smoke_overrides(source: str, overrides: list[str]) -> list[str]:
    """Overrides that turn a study into a smoke test: generated data of the same shape, one short epoch."""
    from trainlab.config import resolve_study_path

    raw: dict[str, Any] = tomllib.loads(resolve_study_path(source).read_text())
    data = raw.get("data", {})
    name = data.get("name", "digits")
    shape, classes = SMOKE_SHAPES.get(name, (None, None))
    extra = [
        "train.epochs=1",
        "measure.infer_limit=8",
        "measure.latency_repeats=5",
        "measure.throughput_batch=8",
    ]
    if name != "synthetic":
        if shape is None:
            shape = data.get("smoke_shape", [3, 16, 16])
            classes = data.get("smoke_classes", 4)
        extra += [
            "data.name=synthetic",
            f"data.shape={shape}",
            f"data.num_classes={classes}",
            "data.train_size=64",
            "data.test_size=32",
        ]
    return overrides + extra
