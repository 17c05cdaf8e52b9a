"""The shipped recipes: one TOML per classic study, runnable as ``trainlab run recipe:NAME``.

Recipes live in the repository's ``recipes/`` folder (installed to ``<prefix>/share/trainlab/recipes``).
``--smoke`` swaps a recipe's dataset for a tiny generated stand-in of the same shape and runs one short epoch
per variant, so every recipe can be exercised without its real data.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Any

from trainlab.config import smoke_settings
from trainlab.errors import ConfigError, did_you_mean
from trainlab.study.overrides import parse_override
from trainlab.study.source import read_study_file


def recipe_dirs() -> list[Path]:
    """Folders searched for recipes: the source checkout's ``recipes/``, then the installed copy."""
    return [
        Path(__file__).resolve().parents[2] / "recipes",
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


def resolve_study_path(source: str) -> Path:
    """Map ``recipe:NAME`` to a shipped recipe file; otherwise treat ``source`` as a path."""
    if source.startswith("recipe:"):
        return recipe_path(source[len("recipe:") :])
    path = Path(source)
    if not path.exists():
        raise ConfigError(f"study file not found: {path}")
    return path


def list_recipes() -> list[tuple[str, str]]:
    """(name, one-line description) of every shipped recipe."""
    out = []
    for name, path in _all().items():
        try:
            _, raw = read_study_file(path)
        except ConfigError:
            desc = "(unreadable)"
        else:
            desc = _table(raw, "study").get("description", "")
            desc = desc if isinstance(desc, str) else ""
        out.append((name, desc.strip().splitlines()[0] if desc.strip() else ""))
    return out


def _table(raw: dict[str, Any], name: str) -> dict[str, Any]:
    """``raw[name]`` when it is a table, else ``{}`` (a wrong type is reported when the study is validated)."""
    table = raw.get(name)
    return table if isinstance(table, dict) else {}


# Per-sample shape and class count of each dataset's stand-in for --smoke.
SMOKE_SHAPES: dict[str, tuple[list[int], int]] = {
    "digits": ([1, 8, 8], 10),
    "mnist": ([1, 28, 28], 10),
    "fashion_mnist": ([1, 28, 28], 10),
    "kmnist": ([1, 28, 28], 10),
    "cifar10": ([3, 32, 32], 10),
    "cifar100": ([3, 32, 32], 100),
}


def _stand_in(data: dict[str, Any]) -> dict[str, Any]:
    """The ``synthetic`` data settings that mimic ``data``'s sample shape, class count and task."""
    name = data.get("name", "digits")
    if name == "synthetic":
        return {}
    if isinstance(name, str) and (":" in name or name == "hf"):
        # The user's own data (a function, or Hugging Face files they hold): nothing to download and nothing a
        # generated stand-in could mimic (its keys are the function's arguments), so a few samples of it.
        return {"data.limit_train": 32, "data.limit_test": 16, "data.limit_val": 16}
    if isinstance(name, str) and name in SMOKE_SHAPES:
        shape, classes = SMOKE_SHAPES[name]
        task = "classification"
    elif name == "folder":
        size = data.get("image_size") or [32, 32]
        size = [size, size] if isinstance(size, int) else (size * 2 if len(size) == 1 else size)
        size = [min(int(d), 64) for d in size]  # a stand-in needs the channels, not the resolution
        shape, classes, task = [1 if data.get("grayscale") else 3, *size], 15, "classification"
    elif name == "csv":
        features = data.get("features")
        shape = [len(features) if isinstance(features, list) and features else 5]
        classes, task = 2, data.get("task", "classification")
    else:
        shape, classes, task = [3, 16, 16], 4, "classification"
    return {
        "data.name": "synthetic",
        "data.shape": shape,
        "data.num_classes": classes,
        "data.task": task,
        # Two steps of the smoke batch (8) and one test batch: a ResNet-18 step on a 2-core CPU takes ~0.3 s.
        "data.train_size": 16,
        "data.test_size": 8,
    }


# Trials per variant in a --smoke run of a tuned study.
SMOKE_TRIALS = 2


def smoke_overrides(source: str, overrides: list[str]) -> dict[str, Any]:
    """Overrides that turn a study into a smoke test: a generated stand-in of its data, one short epoch.

    The stand-in has the real dataset's sample shape, class count and task, so every model, loss and report
    path of the recipe is exercised; pretrained weights (a file the user provides) are not loaded. A key's own
    stand-in (``train.epochs`` at most 1, ``data.batch_size`` 8, the ``measure`` timings) is declared on its
    field (:func:`trainlab.config.smoke_settings`); what depends on the dataset (the synthetic stand-in), on a
    sweep or on a model's own keyword arguments (``model.resize``, ``model.pretrained``) is decided here.
    """
    _, raw = read_study_file(resolve_study_path(source))
    given: dict[str, Any] = dict(parse_override(o) for o in overrides)
    smoke: dict[str, Any] = dict(given)
    data = _table(raw, "data")
    # A malformed [data] (image_size = "big") gets no stand-in: validation then names the key.
    with contextlib.suppress(TypeError, ValueError):
        smoke.update(_stand_in(data))
    smoke.update(smoke_settings(raw))  # one short epoch, small batches, brief timings: declared on the fields
    tune = _table(raw, "tune")
    if tune:  # a tuned study's smoke run tunes too, with two trials per variant: every path, few runs
        trials = tune.get("trials")
        smoke["tune.trials"] = min(trials, SMOKE_TRIALS) if isinstance(trials, int) and trials > 0 else SMOKE_TRIALS
    if "data.num_workers" in _table(raw, "sweep"):  # keep the sweep's shape, at worker counts a test machine affords
        smoke["sweep.data.num_workers"] = [0, 1]
    model = _table(raw, "model")
    if "resize" in model:  # e.g. AlexNet's 224: 64 is the smallest it takes, and 12x cheaper
        smoke["model.resize"] = 64
    variants = raw.get("variant") if isinstance(raw.get("variant"), list) else []
    if "pretrained" in model or any(isinstance(v, dict) and "model.pretrained" in v for v in variants):
        smoke["model.pretrained"] = None
    smoke.update(given)  # what the user sets with --set wins over the stand-in's choices
    return smoke
