"""Sweep expansion and run identity: a study's variants x sweep grid x repeats, each with a stable id."""

from __future__ import annotations

import copy
import functools
import hashlib
import itertools
import json
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from trainlab.config import MAX_SEED, RUN_SECTIONS, RunConfig, StudyConfig
from trainlab.errors import ConfigError
from trainlab.measure.format import fmt_factor
from trainlab.models import registry
from trainlab.schema import STUDY_RELATIVE, marked_fields
from trainlab.study.messages import format_validation_error
from trainlab.study.overrides import set_dotted
from trainlab.study.spec import RunSpec


def count_runs(cfg: StudyConfig) -> int:
    """The number of runs ``cfg`` expands to: variants x product of the sweep lengths x (repeats + tuning
    trials) (nothing built)."""
    n = max(len(cfg.variant), 1) * (cfg.planned_repeats + (cfg.tune.trials if cfg.tune else 0))
    for values in cfg.sweep.values():
        n *= len(values)
    return n


def _check_size(cfg: StudyConfig) -> None:
    """Refuse a study larger than ``study.max_runs`` before a single run is built, with the count and its factors.

    Counted, not expanded: ``repeats = 1000000000`` would otherwise hold a billion configs in memory.
    """
    n = count_runs(cfg)
    if n <= cfg.study.max_runs:
        return
    factors = [f"{max(len(cfg.variant), 1)} variant(s)"]
    factors += [f"{len(v)} values of {k}" for k, v in cfg.sweep.items()]
    factors.append(f"{cfg.planned_repeats} repeat(s)" + (f" + {cfg.tune.trials} trial(s)" if cfg.tune else ""))
    raise ConfigError(
        f"study.max_runs: the study expands to {n:,} runs ({' x '.join(factors)}), more than study.max_runs ="
        f" {cfg.study.max_runs:,}; shrink the sweep, the variants or repeats, or raise study.max_runs"
    )


def _first_seed(value: Any, name: str, where: str) -> int:
    """A variant's or sweep point's ``train.seed``, checked before ``seed + repeat`` is computed from it."""
    # bool is an int to Python (true + 1 == 2): refused like any other non-integer.
    if not isinstance(value, int) or isinstance(value, bool):
        place = f" ({where})" if where else ""
        raise ConfigError(
            f"variant '{name}': train.seed must be a whole number from 0 to {MAX_SEED} (got {value!r}){place}"
        )
    return value


def relative_path_keys(resolved: dict[str, Any]) -> list[str]:
    """The dotted keys of a run's raw config that hold paths read from the study file's folder: the fields
    marked :func:`~trainlab.schema.study_relative` (``data.root``), and the run's model's own (``model.pretrained``)."""
    return [*_marked_paths(None), *_marked_paths(str((resolved.get("model") or {}).get("name", "logreg")))]


@functools.cache
def _marked_paths(model: str | None) -> tuple[str, ...]:
    """The study-relative keys of the run config (``model`` None) or of that model's own parameters: read from
    the schema once per process, not once per run of a large study."""
    if model is None:
        return tuple(marked_fields(RunConfig, STUDY_RELATIVE))
    entry = registry().get(model)
    return tuple(marked_fields(entry.params, STUDY_RELATIVE, "model.")) if entry is not None else ()


def _anchor_paths(resolved: dict[str, Any], over: dict[str, Any], folder: Path | None, cli: frozenset[str]) -> None:
    """Make the run's relative paths absolute, in place: a path the study file names (its tables, a variant, a
    sweep) from the study file's folder; one given with ``--set`` (and a dict study's) from the current folder,
    as any path typed in a shell is. ``~`` is the user's home; an absolute path stays as it is."""
    for key in relative_path_keys(resolved):
        section, _, name = key.partition(".")
        value = (resolved.get(section) or {}).get(name)
        if not isinstance(value, str) or not value or value.startswith("~") or Path(value).is_absolute():
            continue
        base = folder if folder is not None and (key in over or key not in cli) else Path.cwd()
        resolved[section][name] = str(base / value)


def expand(
    cfg: StudyConfig,
    raw: dict[str, Any],
    text: str | None = None,
    where: str = "",
    folder: Path | None = None,
    cli_keys: frozenset[str] = frozenset(),
) -> list[RunSpec]:
    """Expand a study into runs: (explicit variants or one base) x sweep grid x repeats.

    A sweep point is named after its values (``model.dropout=0.5``); combined with an explicit variant the
    name is ``variant/model.dropout=0.5``. Seeds are ``train.seed + repeat``. Relative paths are made absolute
    from ``folder``, the study file's (:func:`_anchor_paths`; ``cli_keys``: the keys given with ``--set``).
    A study of more than ``study.max_runs`` runs, or with two sweep points of one name, is a :class:`ConfigError`.
    """
    _check_size(cfg)
    base = {k: copy.deepcopy(raw.get(k, {})) for k in RUN_SECTIONS}
    variants: list[tuple[str, dict[str, Any]]] = [
        (v["name"], {k: val for k, val in v.items() if k != "name"}) for v in cfg.variant
    ] or [("base", {})]
    grid_keys = list(cfg.sweep)
    grid = list(itertools.product(*(cfg.sweep[k] for k in grid_keys))) if grid_keys else [()]

    runs: list[RunSpec] = []
    seen: dict[str, dict[str, Any]] = {}  # variant name -> its overrides, to refuse a name given twice
    for vname, vover in variants:
        for point in grid:
            over = dict(vover)
            over.update(zip(grid_keys, point))
            if grid_keys:
                label = ",".join(
                    f"{k.split('.')[-1]}={fmt_factor(v, missing='None')}" for k, v in zip(grid_keys, point)
                )
                name = label if vname == "base" else f"{vname}/{label}"
            else:
                name = vname
            if name in seen:
                # e.g. "train.lr" = [1, 1.0]: both points are named lr=1 and would be one run id twice.
                place = f" ({where})" if where else ""
                raise ConfigError(
                    f"sweep: two points are both named '{name}' ({_settings(seen[name])} and {_settings(over)});"
                    f" give each sweep value once{place}"
                )
            seen[name] = over
            first_seed = _first_seed(over.get("train.seed", cfg.train.seed), name, where)
            for rep in range(cfg.planned_repeats):
                resolved = copy.deepcopy(base)
                # A variant that switches to another model starts from that model's defaults: the base
                # [model] keys belong to the base model and would not fit (e.g. mlp.hidden on a CNN).
                if "model.name" in over and over["model.name"] != base["model"].get("name", "logreg"):
                    resolved["model"] = {}
                for key, value in over.items():
                    set_dotted(resolved, key, value)
                # Repeats differ only by seed: seed + repeat, counted from the variant's own seed if it sets one.
                resolved.setdefault("train", {})["seed"] = first_seed + rep
                _anchor_paths(resolved, over, folder, cli_keys)
                try:
                    rc = RunConfig.model_validate(resolved)
                except ValidationError as err:
                    raise ConfigError(f"variant '{name}': " + format_validation_error(err, None, where)) from None
                runs.append(
                    RunSpec(
                        study=cfg.study.name,
                        variant=name,
                        repeat=rep,
                        overrides=over,
                        config=rc,
                        run_id=run_hash(rc, name),
                    )
                )
    return runs


def _settings(over: dict[str, Any]) -> str:
    """``key = value, ...`` of a sweep point's overrides, as an error message quotes them."""
    return ", ".join(f"{k} = {v!r}" for k, v in over.items()) or "the base config"


def run_hash(config: RunConfig, variant: str) -> str:
    """Stable 16-hex-digit id of a resolved run: same config and variant name, same id (used to skip/resume).

    Keys left at their defaults are not part of the id, so a trainlab upgrade that adds a new option (with a
    default) does not orphan the runs of an existing study.
    """
    payload = json.dumps(
        {"variant": variant, "config": config.model_dump(mode="json", exclude_defaults=True)},
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:16]
