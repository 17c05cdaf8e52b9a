"""What every tracker shares: the sink interface with study-level calls, and how a run is described."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Protocol

from trainlab.data.config import OPTION_FIELDS
from trainlab.data.registry import DATASETS
from trainlab.engine.events import Event
from trainlab.measure.metrics import EPOCH_KEYS


class Tracker(Protocol):
    """A best-effort sink that also hears when the study starts and when its report is written."""

    name: str

    def study_started(self, study_config: dict[str, Any], swept_keys: list[str]) -> None: ...
    def event(self, spec: Any, event: Event) -> None: ...
    def study_finished(self, report_files: list[Path]) -> None: ...


def config_of(spec: Any) -> dict[str, Any]:
    """A run's resolved config as plain data (a live RunSpec's pydantic config, or a stored record's dict),
    without the options of dataset sources the run does not use (``data.delimiter`` of a digits study)."""
    cfg = spec.config
    out = cfg.model_dump(mode="json") if hasattr(cfg, "model_dump") else dict(cfg)
    data = dict(out.get("data") or {})
    source = DATASETS.get(str(data.get("name")))
    own = set(source.options.model_fields) if source is not None and source.options is not None else set()
    out["data"] = {k: v for k, v in data.items() if k not in OPTION_FIELDS or k in own}
    return out


def dotted(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"train": {"lr": 0.1}}`` -> ``{"train.lr": 0.1}``; lists and other values kept as they are."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out.update(dotted(v, key + "."))
        else:
            out[key] = v
    return out


def final_figures(results: dict[str, Any]) -> dict[str, float]:
    """A run's numeric per-run figures, without those an epoch already carries (their last value is the same)."""
    return {
        k: float(v)
        for k, v in results.items()
        if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) and k not in EPOCH_KEYS
    }


def epoch_figures(row: dict[str, Any]) -> dict[str, float]:
    """An epoch row's numeric figures (the epoch number itself is the step, not a figure)."""
    return {
        k: float(v)
        for k, v in row.items()
        if k != "epoch" and isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
    }


def run_label(spec: Any) -> str:
    """How a run is named in a tracker: ``variant (seed N)``."""
    return f"{spec.variant} (seed {spec.seed})"
