"""What every tracker shares: the sink interface with study-level calls, and how a run is described."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar, Protocol, TypeVar

from trainlab.data.config import OPTION_FIELDS
from trainlab.data.registry import DATASETS
from trainlab.engine.events import Event
from trainlab.errors import TrackingError, TrainlabError
from trainlab.measure.format import is_number
from trainlab.measure.metrics import BY_KEY, EPOCH_KEYS, EPOCH_METRICS
from trainlab.records import RunIdentity

F = TypeVar("F", bound=Callable[..., Any])
MESSAGE_MAX = 300  # characters of a destination's error kept in the one-line message (MLflow's run to pages)


class Tracker(Protocol):
    """A best-effort sink that also hears when the study starts and when its report is written."""

    name: str
    # The trainlab run ids whose figures this tracker wrote or changed (an export of runs it held already,
    # unchanged, adds none): what `trainlab export` reports as exported.
    updated: set[str]

    def study_started(self, study_config: dict[str, Any], swept_keys: list[str]) -> None: ...
    def event(self, spec: RunIdentity, event: Event) -> None: ...
    def study_finished(self, report_files: list[Path]) -> None: ...


def one_line(exc: BaseException) -> str:
    """``Type: first line of the message``, at most :data:`MESSAGE_MAX` characters."""
    text = (str(exc).strip().splitlines() or [""])[0]
    text = text if len(text) <= MESSAGE_MAX else text[: MESSAGE_MAX - 3] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class Guarded:
    """What a tracker shares: once one of its calls fails it is ``disabled`` and every later call does nothing
    (a study's end must not wait on a dead server a second time), and a failure of its destination (an error in
    ``failures``) becomes one :class:`TrackingError` naming ``where``. Each guarded call runs inside
    :meth:`scope` (MLflow: bounded HTTP retries)."""

    name: ClassVar[str]
    failures: tuple[type[BaseException], ...] = (OSError,)  # what a failing destination raises
    disabled: bool = False
    where: str = ""

    @contextlib.contextmanager
    def scope(self) -> Iterator[None]:
        """The context every guarded call runs in (none by default)."""
        yield


def guarded(method: F) -> F:
    """Decorate a :class:`Guarded` tracker's method: a no-op once the tracker is disabled; a failure disables it
    and is raised (a destination's as a one-line :class:`TrackingError`; a bug's as it is)."""

    @functools.wraps(method)
    def call(self: Guarded, *args: Any, **kwargs: Any) -> Any:
        if self.disabled:
            return None
        try:
            with self.scope():
                return method(self, *args, **kwargs)
        except TrainlabError:
            self.disabled = True
            raise
        except self.failures as exc:
            self.disabled = True
            raise TrackingError(f"{self.name} at {self.where}: {one_line(exc)}") from exc
        except Exception:  # a bug: disabled all the same, and raised with its own traceback
            self.disabled = True
            raise

    return call  # type: ignore[return-value]


def config_of(spec: RunIdentity) -> dict[str, Any]:
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


_CATALOGUE = {**BY_KEY, **{m.key: m for m in EPOCH_METRICS}}
_SPLITS = ("train", "test", "val")
_MACHINE = frozenset({"cpu_cores", "other_cores", "cores"})
_TRAINING = frozenset({"lr", "steps", "samples"})


def tracker_name(key: str) -> tuple[str, float]:
    """The name a tracker shows figure ``key`` under, and the factor its value is multiplied by.

    Names are grouped by what they are about, so that a tracker's chart view has one section per group:
    ``time/…`` (every time, in its unit: ``time/epoch_time_s``, ``time/latency_p50_ms``), ``train/…``, ``test/…``,
    ``val/…`` (a split's figures: ``test/loss``, ``test/best_acc_pct``), ``machine/…`` (the load accounting) and
    ``run/…`` (the rest: params, MACs, memory). A fraction of the catalogue is shown in percent, as the report
    shows it, and its name says so (``test/acc_pct`` = 95.2 for 0.952)."""
    m = _CATALOGUE.get(key)
    scale, suffix = (100.0, "_pct") if m is not None and m.kind == "fraction" else (1.0, "")
    if key.endswith(("_s", "_ms")):
        return f"time/{key}", scale
    for split in _SPLITS:
        for prefix, best in ((f"{split}_", ""), (f"best_{split}_", "best_")):
            if key.startswith(prefix):
                return f"{split}/{best}{key[len(prefix) :]}{suffix}", scale
    if key in _MACHINE:
        return f"machine/{key}", scale
    if key in _TRAINING:
        return f"train/{key}", scale
    return f"run/{key}{suffix}", scale


# The tracker names of the per-epoch figures (an MLflow run's history is read back by these).
EPOCH_NAMES = frozenset(tracker_name(k)[0] for k in EPOCH_KEYS)


def named_figures(figures: dict[str, Any]) -> dict[str, float]:
    """Every finite number of ``figures`` (catalogue keys) by tracker name, scaled as the name says."""
    out = {}
    for k, v in figures.items():
        if is_number(v):
            name, scale = tracker_name(k)
            out[name] = float(v) * scale
    return out


def final_figures(results: dict[str, Any]) -> dict[str, float]:
    """A run's numeric per-run figures by tracker name (:func:`tracker_name`), without those an epoch already
    carries (their last value is the same)."""
    return named_figures({k: v for k, v in results.items() if k not in EPOCH_KEYS})


def epoch_figures(row: dict[str, Any]) -> dict[str, float]:
    """An epoch row's numeric figures by tracker name (the epoch number itself is the step, not a figure)."""
    return named_figures({k: v for k, v in row.items() if k != "epoch"})


def run_label(spec: RunIdentity) -> str:
    """How a run is named in a tracker: ``variant (seed N)``."""
    return f"{spec.variant} (seed {spec.seed})"
