"""A read-only view of a study's store for the report: runs, their epochs, variants and per-variant statistics.

Everything the report shows comes from here, and this reads only ``<out>/trainlab.db``. A study still running
is fine: pending and running runs have no results yet, and a running run's finished epochs are included.
"""

from __future__ import annotations

import math
from collections.abc import Hashable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any

from trainlab.errors import TrainlabError
from trainlab.measure.format import is_number  # re-exported: the report's modules import it from here
from trainlab.measure.hardware import HostEnv
from trainlab.measure.load import BUSY_EXCESS_SHARE, busy_excess, busy_rows, describe_busy
from trainlab.measure.metrics import BY_KEY, EPOCH_AGGREGATES, INFER, METRICS, Metric, derived
from trainlab.measure.stats import MeanCI, TimingNoise, bootstrap_ci, mean_ci, relative_gap, timing_noise
from trainlab.records import OUTCOMES, STATUSES, EpochRow, RunRecord, RunStatus
from trainlab.report import anchors
from trainlab.report.comparison import Comparison, compare_with_baseline
from trainlab.store import Store


def dotted_get(d: dict[str, Any] | None, key: str) -> Any:
    """``d["a"]["b"]`` for ``key = "a.b"``; None when any part is missing."""
    node: Any = d
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


@dataclass
class RunView:
    """One run record from the store (a :class:`~trainlab.records.RunRecord`) with its epochs."""

    record: RunRecord
    epochs: list[EpochRow]  # in epoch order; rows given as stored dicts are read into EpochRow

    def __post_init__(self) -> None:
        self.epochs = [e if isinstance(e, EpochRow) else EpochRow.from_record(e) for e in self.epochs]

    @property
    def run_id(self) -> str:
        return self.record.run_id

    @property
    def variant(self) -> str:
        return self.record.variant

    @property
    def seed(self) -> int:
        return self.record.seed

    @property
    def repeat(self) -> int:
        return self.record.repeat or 0

    @property
    def status(self) -> RunStatus:
        return self.record.status

    @property
    def error(self) -> str | None:
        return self.record.error

    @property
    def config(self) -> dict[str, Any]:
        return self.record.config or {}

    @property
    def env(self) -> dict[str, Any]:
        """The environment as stored (every key, for the raw listing); :attr:`host` reads it typed."""
        return self.record.env or {}

    @property
    def host(self) -> HostEnv:
        """The environment it ran in (every field None before the run started)."""
        return HostEnv.from_dict(self.record.env)

    @property
    def profile(self) -> dict[str, Any] | None:
        return self.record.profile

    @cached_property
    def results(self) -> dict[str, Any]:
        """Stored per-run figures plus the ones the report derives (e.g. data_share)."""
        res = dict(self.record.results or {})
        for k, v in derived(res).items():
            res.setdefault(k, v)
        return res

    @property
    def anchor(self) -> str:
        return anchors.run(self.run_id)

    @property
    def planned_epochs(self) -> int | None:
        return dotted_get(self.config, "train.epochs")

    def value(self, key: str) -> float | None:
        v = self.results.get(key)
        return float(v) if is_number(v) else None

    @cached_property
    def busy_epochs(self) -> list[EpochRow]:
        """The epochs timed while other work competed for the run's CPUs (``trainlab.measure.load``)."""
        return busy_rows(self.epochs)

    @cached_property
    def train_busy(self) -> bool:
        """Its training times are machine-affected: busy epochs added more than BUSY_EXCESS_SHARE to them."""
        return bool(self.busy_epochs) and busy_excess(self.epochs) > BUSY_EXCESS_SHARE

    @property
    def infer_busy(self) -> bool:
        """Other work competed for the CPUs while its inference figures were timed (the figure ``infer_busy``)."""
        return self.value("infer_busy") == 1

    @property
    def machine_busy(self) -> bool:
        """Some of this run's timing is machine-affected: its training times, or its inference figures."""
        return self.train_busy or self.infer_busy

    def busy_for(self, m: Metric) -> bool:
        """Whether figure ``m`` was timed on a busy machine (inference figures by their own accounting)."""
        if not m.timing:
            return False
        return self.infer_busy if m.group == INFER else self.train_busy

    @property
    def busy_text(self) -> str:
        """What competed with the run: its busy epochs, and its inference measurement."""
        parts = [describe_busy(self.epochs)] if self.busy_epochs else []
        if self.infer_busy:
            parts.append("other work competed for the CPUs while its inference figures were timed")
        return "; ".join(parts)


@dataclass
class VariantView:
    """All runs (seeds) of one variant, in plan order."""

    name: str
    runs: list[RunView] = field(default_factory=list)
    factors: dict[str, Any] = field(default_factory=dict)  # swept key -> this variant's resolved value

    @property
    def anchor(self) -> str:
        return "variant-" + anchors.slug(self.name)

    @property
    def done(self) -> list[RunView]:
        return [r for r in self.runs if r.status == "done"]

    def per_seed(self, key: str) -> dict[Hashable, float | None]:
        """The metric per seed over this variant's finished runs (None where a run did not record it)."""
        return {r.seed: r.value(key) for r in self.done}

    def values(self, key: str) -> list[float]:
        """The metric over this variant's finished runs (one value per seed)."""
        return [v for r in self.done if (v := r.value(key)) is not None]

    def summary(self, key: str) -> MeanCI | None:
        """Mean ± 95% CI over the finished seeds (memoised: tables, findings and plots all ask)."""
        cache = self.__dict__.setdefault("_summaries", {})
        if key not in cache:
            cache[key] = mean_ci(self.values(key))
        return cache[key]

    def mean(self, key: str) -> float | None:
        s = self.summary(key)
        return s.mean if s else None

    def bootstrap(self, key: str) -> tuple[float, float] | None:
        """Bootstrap 95% CI of the mean over the finished seeds (None with fewer than 3; memoised)."""
        cache = self.__dict__.setdefault("_bootstraps", {})
        if key not in cache:
            cache[key] = bootstrap_ci(self.values(key))
        return cache[key]

    @property
    def busy_runs(self) -> list[RunView]:
        """Finished runs whose timing was taken on a busy machine: their timing figures are not evidence."""
        return [r for r in self.done if r.machine_busy]

    def busy_for(self, m: Metric) -> list[RunView]:
        """Finished runs whose figure ``m`` was timed on a busy machine."""
        return [r for r in self.done if r.busy_for(m)]

    @property
    def status_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for r in self.runs:
            counts[r.status] = counts.get(r.status, 0) + 1
        return counts

    @property
    def status(self) -> str:
        """One word for the variant: its runs' status when they agree, else 'mixed'."""
        counts = self.status_counts
        return next(iter(counts)) if len(counts) == 1 else "mixed"

    @property
    def status_text(self) -> str:
        """E.g. ``done``, ``running (epoch 3/12)``, ``2 done, 1 failed``."""
        counts = self.status_counts
        if len(self.runs) == 1:
            r = self.runs[0]
            if r.status == "running":
                return f"running (epoch {len(r.epochs)}/{r.planned_epochs or '?'})"
            return r.status
        return ", ".join(f"{n} {s}" for s, n in sorted(counts.items(), key=lambda kv: STATUSES.index(kv[0])))

    @property
    def reasons(self) -> list[str]:
        """Distinct errors of the variant's failed, diverged or skipped runs, with their seeds."""
        seeds: dict[str, list[int]] = {}
        for r in self.runs:
            if r.error and r.status in OUTCOMES and r.status != "done":
                seeds.setdefault(f"{r.status}: {r.error}", []).append(r.seed)
        if len(self.runs) == 1:
            return list(seeds)
        out = []
        for text, ss in seeds.items():
            which = f"all {len(ss)} seeds" if len(ss) == len(self.runs) else "seed" + "s" * (len(ss) > 1)
            out.append(f"{text} ({which}{'' if which.startswith('all') else ' ' + ', '.join(map(str, ss))})")
        return out


@dataclass
class StudyView:
    """The whole study as the report sees it."""

    out_dir: Path
    meta_study: dict[str, Any]
    baseline_name: str | None
    swept_keys: list[str]
    study_path: str | None
    runs: list[RunView]  # the study's runs: a tuned study's trials are apart, in ``trials``
    generated_at: str
    trials: list[RunView] = field(default_factory=list)  # [tune] trials, in plan order (validation only)

    @classmethod
    def load(cls, out_dir: str | Path) -> StudyView:
        """Read ``<out_dir>/trainlab.db``; :class:`TrainlabError` when there is none."""
        out_dir = Path(out_dir)
        db = out_dir / "trainlab.db"
        if not db.is_file():
            raise TrainlabError(f"{out_dir} holds no trainlab.db: give the output folder of a study")
        store = Store(db, readonly=True)  # a report never needs write access to the study's folder
        views = [RunView(rec, store.epochs(rec.run_id)) for rec in store.runs()]
        runs = [v for v in views if v.record.trial is None]
        return cls(
            trials=[v for v in views if v.record.trial is not None],
            out_dir=out_dir,
            meta_study=store.meta("study") or {},
            baseline_name=store.meta("baseline"),
            swept_keys=list(store.meta("swept_keys") or []),
            study_path=store.meta("study_path"),
            runs=runs,
            generated_at=datetime.now(UTC).isoformat(timespec="seconds"),
        )

    # ---- identity ----------------------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return dotted_get(self.meta_study, "study.name") or (self.runs[0].record.study if self.runs else "study")

    @property
    def description(self) -> str:
        return dotted_get(self.meta_study, "study.description") or ""

    @cached_property
    def variants(self) -> list[VariantView]:
        """Variants in plan order, each with its runs and the resolved value of every swept key."""
        by_name: dict[str, VariantView] = {}
        for r in self.runs:
            v = by_name.get(r.variant)
            if v is None:
                factors = {}
                for key in self.swept_keys:
                    val = dotted_get(r.config, key)
                    factors[key] = val if val is not None else r.record.overrides.get(key)
                v = by_name[r.variant] = VariantView(r.variant, factors=factors)
            v.runs.append(r)
        return list(by_name.values())

    @property
    def baseline(self) -> VariantView | None:
        for v in self.variants:
            if v.name == self.baseline_name:
                return v
        return self.variants[0] if self.variants else None

    @property
    def repeats(self) -> int:
        """Most seeds any variant has (1 = single-seed study)."""
        return max((len(v.runs) for v in self.variants), default=0)

    @property
    def finished(self) -> bool:
        return all(r.status in OUTCOMES for r in self.runs)

    @property
    def task(self) -> str:
        """'regression' when finished runs report R² but no accuracy, else 'classification'."""
        for r in self.runs:
            acc, r2 = r.value("test_acc"), r.value("test_r2")
            if acc is None and r2 is not None:
                return "regression"
            if acc is not None:
                return "classification"
        for r in self.runs:
            for e in r.epochs:
                if e.test_r2 is not None:
                    return "regression"
        return "classification"

    @property
    def quality_key(self) -> str:
        """The metric the study is judged by: test accuracy, or R² for regression."""
        return "test_r2" if self.task == "regression" else "test_acc"

    @cached_property
    def choice_split(self) -> str:
        """The split the study's choices read (best variant, best epoch, Pareto front, verdict): ``val`` when
        its runs were evaluated on a validation split, else ``test`` (then the choices flatter the test
        figures, and the report says so)."""
        key = "val_r2" if self.task == "regression" else "val_acc"
        return "val" if any(r.value(key) is not None for r in self.runs) else "test"

    def choice_key(self, key: str) -> str:
        """The figure a choice by ``key`` reads: a test quality figure (``test_acc``, ``test_loss``, ...) read on
        validation when the study has a validation split, any other figure as it is."""
        if self.choice_split == "val" and key.startswith("test_") and f"val_{key[5:]}" in BY_KEY:
            return f"val_{key[5:]}"
        return key

    @property
    def loss_name(self) -> str | None:
        return dotted_get(self.runs[0].config, "train.loss") if self.runs else None

    # ---- statistics --------------------------------------------------------------------------------------------
    def present(self, metrics: tuple[Metric, ...] | list[Metric] = METRICS) -> list[Metric]:
        """The metrics that at least one finished run reports."""
        return [m for m in metrics if any(v.values(m.key) for v in self.variants)]

    def compare(self, variant: VariantView, key: str) -> Comparison | None:
        """``variant`` against the baseline on ``key`` over seeds (None without 2+ seeds on both): a paired t-test
        when the two ran the same seeds, else Welch's; p Holm-adjusted over every variant compared with the
        baseline on ``key``."""
        return self._comparisons(key).get(variant.name)

    def _comparisons(self, key: str) -> dict[str, Comparison]:
        cache = self.__dict__.setdefault("_comparison_cache", {})
        if key not in cache:
            cache[key] = compare_with_baseline(self.variants, self.baseline, key)
        return cache[key]

    @cached_property
    def timing_noise(self) -> TimingNoise | None:
        """Within-run variation of epoch times (epoch 1 excluded) over the runs with epochs."""
        return timing_noise(
            # busy epochs left out (None keeps epoch 1 first, which timing_noise skips as warm-up)
            [[None if e in r.busy_epochs else e.epoch_time_s for e in r.epochs] for r in self.runs if r.epochs]
        )

    def timing_noise_of(self, key: str) -> float | None:
        """The single-seed noise of timing figure ``key`` as a fraction: the within-run coefficient of variation
        of epoch times, divided by sqrt(epochs - 1) for totals and means over epochs; None when unmeasured."""
        noise = self.timing_noise
        if noise is None:
            return None
        epochs = min((len(r.epochs) for r in self.runs if r.status == "done" and r.epochs), default=0)
        return noise.cv_median / math.sqrt(epochs - 1) if key in EPOCH_AGGREGATES and epochs > 1 else noise.cv_median

    def within_timing_noise(self, key: str, a: float, b: float) -> bool | None:
        """A single-seed timing difference no larger than twice the figure's noise (None when unmeasured)."""
        noise, gap = self.timing_noise_of(key), relative_gap(a, b)
        if noise is None or gap is None:
            return None
        return gap <= 2 * noise

    @property
    def environment(self) -> HostEnv | None:
        """The environment of the first run that recorded one (all runs of a study usually share it); None
        before any run started."""
        return next((r.host for r in self.runs if r.env), None)

    @property
    def hosts(self) -> list[str]:
        """The machines the runs executed on, by host name."""
        return sorted({name for r in self.runs if (name := r.host.hostname)})

    def first_value(self, key: str) -> Any:
        """The first run's stored value of ``key`` (e.g. peak_flops, a per-machine figure)."""
        for r in self.runs:
            v = r.results.get(key)
            if v is not None:
                return v
        return None


def metric(key: str) -> Metric | None:
    return BY_KEY.get(key)


def scored_key(key: str) -> str | None:
    """The test figure that scores a choice read on validation (``val_acc`` -> ``test_acc``); None for a
    figure that is not a validation figure (the inverse of :meth:`StudyView.choice_key`)."""
    if key.startswith("val_") and f"test_{key[4:]}" in BY_KEY:
        return f"test_{key[4:]}"
    return None
