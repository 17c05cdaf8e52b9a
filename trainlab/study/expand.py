"""Sweep expansion and run identity: a study's variants x sweep grid x repeats, each with a stable id."""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
from typing import Any

from pydantic import ValidationError

from trainlab.config import RUN_SECTIONS, RunConfig, StudyConfig
from trainlab.errors import ConfigError
from trainlab.measure.format import fmt_factor
from trainlab.study.messages import format_validation_error
from trainlab.study.overrides import set_dotted
from trainlab.study.spec import RunSpec


def expand(cfg: StudyConfig, raw: dict[str, Any], text: str | None = None, where: str = "") -> list[RunSpec]:
    """Expand a study into runs: (explicit variants or one base) x sweep grid x repeats.

    A sweep point is named after its values (``model.dropout=0.5``); combined with an explicit variant the
    name is ``variant/model.dropout=0.5``. Seeds are ``train.seed + repeat``.
    """
    base = {k: copy.deepcopy(raw.get(k, {})) for k in RUN_SECTIONS}
    variants: list[tuple[str, dict[str, Any]]] = [
        (v["name"], {k: val for k, val in v.items() if k != "name"}) for v in cfg.variant
    ] or [("base", {})]
    grid_keys = list(cfg.sweep)
    grid = list(itertools.product(*(cfg.sweep[k] for k in grid_keys))) if grid_keys else [()]

    runs: list[RunSpec] = []
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
            for rep in range(cfg.repeats):
                resolved = copy.deepcopy(base)
                # A variant that switches to another model starts from that model's defaults: the base
                # [model] keys belong to the base model and would not fit (e.g. mlp.hidden on a CNN).
                if "model.name" in over and over["model.name"] != base["model"].get("name", "logreg"):
                    resolved["model"] = {}
                for key, value in over.items():
                    if key.split(".")[0] not in RUN_SECTIONS:
                        raise ConfigError(
                            f"variant '{name}': key '{key}' must start with one of {', '.join(RUN_SECTIONS)}"
                        )
                    set_dotted(resolved, key, value)
                # Repeats differ only by seed: seed + repeat, counted from the variant's own seed if it sets one.
                first_seed = over.get("train.seed", cfg.train.seed)
                resolved.setdefault("train", {})["seed"] = first_seed + rep
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
