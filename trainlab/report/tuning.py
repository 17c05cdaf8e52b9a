"""A tuned study (``[tune]``) as the report reads it: each variant's trials, its best trial, the settings its
runs used and whether a best value lies at the edge of its range; the ``tuned`` and ``edge`` findings; the rows
of the Tuning table.

Everything comes from the store through :class:`~trainlab.report.study.StudyView` (the trials apart from the
study's runs) and the stored ``[tune]`` config, validated again by :class:`~trainlab.tune.config.TuneConfig`.
The best trial is :func:`trainlab.tune.choice.best_trial`'s, the function the study itself chose with, so the
report names the trial whose settings the variant's runs ran.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal

from pydantic import ValidationError

from trainlab.measure.format import fmt_factor, fmt_value, is_number
from trainlab.measure.metrics import BY_KEY
from trainlab.records import FAILED, OUTCOMES, STATUSES, RunStatus
from trainlab.report import anchors
from trainlab.report.finding import Finding, metric_label
from trainlab.report.settle import auto_settings, best_and_worst, improvement_text, sides
from trainlab.report.study import RunView, StudyView
from trainlab.report.tables import Cell, build_table, md_escape
from trainlab.tune.choice import EDGE, Trial, at_edge, best_trial
from trainlab.tune.config import Range, TuneConfig

ANCHOR = "tuning"  # the Tuning section of report.html, which the findings link to
TUNING_CURVE_ANCHOR = "plot-tuning-curve"
SENSITIVITY_ANCHOR = "plot-sensitivity"
SAMPLER_TEXT = {"quasirandom": "quasirandom search", "tpe": "TPE search (Optuna)"}
EDGE_ADVICE = "Widen the range past that end and tune again."


def setting_text(value: Any) -> str:
    """A tuned value as the report prints it: 3 significant digits for a float (0.356), else as in a name."""
    return f"{value:.3g}" if isinstance(value, float) else fmt_factor(value)


def space_text(key: str, space: Range | list[Any]) -> str:
    """What ``key`` was tuned over: ``train.lr from 0.001 to 1, log scale`` or ``model.hidden among [64], [128]``."""
    if isinstance(space, Range):
        how = (", log scale" if space.log else "") + (", whole numbers" if space.integer else "")
        return f"{key} from {space.low:g} to {space.high:g}{how}"
    return f"{key} among {', '.join(fmt_factor(v) for v in space)}"


@dataclass(frozen=True)
class TrialRun:
    """One trial of a variant as stored: the choice's :class:`Trial` (its value None unless it is done), its
    status and run id."""

    trial: Trial
    status: RunStatus
    run_id: str
    error: str | None = None  # why it failed or diverged
    pruned_at: int | None = None  # the epoch a pruned trial ([tune] prune) stopped after: done, but not scored


@dataclass(frozen=True)
class Edge:
    """A best value at an end of its range (or the smallest or largest of numeric choices)."""

    key: str
    value: Any
    end: Literal["low", "high"]
    space: Range | list[Any]

    @property
    def clause(self) -> str:
        """``train.lr (0.95) lies at the high end of its range (0.001 to 1)``."""
        if isinstance(self.space, Range):
            span = f"{self.space.low:g} to {self.space.high:g}"
            return f"{self.key} ({setting_text(self.value)}) lies at the {self.end} end of its range ({span})"
        most = "smallest" if self.end == "low" else "largest"
        return f"{self.key} ({setting_text(self.value)}) is the {most} of its choices ({self._choices})"

    @property
    def detail(self) -> str:
        """The same in a few words, for a sentence naming several variants: ``train.lr = 0.95, high end of 0.001
        to 1``."""
        if isinstance(self.space, Range):
            where = f"{self.end} end of {self.space.low:g} to {self.space.high:g}"
        else:
            where = f"{'smallest' if self.end == 'low' else 'largest'} of {self._choices}"
        return f"{self.key} = {setting_text(self.value)}, {where}"

    @property
    def _choices(self) -> str:
        return ", ".join(fmt_factor(v) for v in self.space) if isinstance(self.space, list) else ""


@dataclass(frozen=True)
class VariantTuning:
    """One variant's tuning: its trials in trial order, the best of them, the settings its runs used (empty
    before they are planned) and the tuned keys whose best value lies at an edge (once every trial ended)."""

    name: str
    budget: int  # trials per variant ([tune] trials)
    trials: tuple[TrialRun, ...]
    best: Trial | None
    tuned: dict[str, Any] = field(default_factory=dict)
    edges: tuple[Edge, ...] = ()

    @property
    def counts(self) -> dict[RunStatus, int]:
        """Trials per status, in the report's status order."""
        got = [t.status for t in self.trials]
        return {s: got.count(s) for s in STATUSES if s in got}

    @property
    def done(self) -> int:
        return self.counts.get("done", 0)

    @property
    def failed(self) -> int:
        return self.counts.get("failed", 0)

    @property
    def diverged(self) -> int:
        return self.counts.get("diverged", 0)

    @property
    def finished(self) -> bool:
        """Every trial of the budget has ended (done, failed, diverged or skipped)."""
        return len(self.trials) >= self.budget and all(t.status in OUTCOMES for t in self.trials)

    @property
    def counts_text(self) -> str:
        """``4 done``, ``3 done, 1 diverged``, ``2 done, 2 pruned``; ``2 done, 2 pending (of 6)`` while later
        rounds are unplanned."""
        pruned = sum(t.pruned_at is not None for t in self.trials)
        counts = {**self.counts, **({"done": self.done - pruned, "pruned": pruned} if pruned else {})}
        text = ", ".join(f"{n} {s}" for s, n in counts.items() if n) or "none yet"
        return text + (f" (of {self.budget})" if len(self.trials) < self.budget else "")

    @property
    def scored(self) -> list[tuple[int, float]]:
        """(trial number, 1-based as the terminal shows it; validation figure) of the trials with a figure."""
        return [(r.trial.index + 1, r.trial.value) for r in self.trials if r.trial.value is not None]

    def running_best(self, higher_is_better: bool) -> list[float]:
        """The best figure so far at each of :attr:`scored`'s trials: the tuning curve."""
        out: list[float] = []
        for _n, value in self.scored:
            out.append(value if not out or (value > out[-1]) == higher_is_better else out[-1])
        return out

    def along(self, key: str) -> list[tuple[float, float]]:
        """(value of ``key``, validation figure) of the trials with a figure and a number for ``key``, by value."""
        return sorted((float(r.trial.settings[key]), r.trial.value) for r in self.trials
                      if r.trial.value is not None and is_number(r.trial.settings.get(key)))  # fmt: skip

    @property
    def chosen(self) -> dict[str, Any]:
        """The settings the variant is compared at: its runs' tuned settings, else its best trial's so far."""
        return self.tuned or (self.best.settings if self.best is not None else {})


@dataclass(frozen=True)
class Tuning:
    """A tuned study's ``[tune]`` config, the validation figure its trials were judged by and each variant's
    tuning, in plan order."""

    config: TuneConfig
    metric: str
    higher_is_better: bool
    variants: tuple[VariantTuning, ...]

    def of(self, name: str) -> VariantTuning | None:
        return next((v for v in self.variants if v.name == name), None)

    @property
    def numeric_keys(self) -> list[str]:
        """The tuned keys with numbers to plot along: the ranges and the lists of numbers (not booleans)."""
        return [k for k, space in self.config.params.items() if _numeric(space)]

    @property
    def finished(self) -> bool:
        return all(v.finished for v in self.variants)


def edge_bands(space: Range) -> list[tuple[float, float]]:
    """The two stretches of ``space`` where a best value lies at its edge (:data:`trainlab.tune.choice.EDGE` of
    the range at each end, in log space for a log range), as (from, to) values."""
    plain = space.model_copy(update={"integer": False})  # the bands' bounds unrounded, for an integer range too
    return [(plain.value(0.0), plain.value(EDGE)), (plain.value(1.0 - EDGE), plain.value(1.0))]


def _numeric(space: Range | list[Any]) -> bool:
    return isinstance(space, Range) or all(isinstance(v, int | float) and not isinstance(v, bool) for v in space)


def tuning(study: StudyView) -> Tuning | None:
    """The study's tuning; None for a study without ``[tune]`` (or whose stored section no longer validates).
    Memoised on the study: the findings, the Tuning table and both plots ask."""
    if "_tuning" not in study.__dict__:
        study.__dict__["_tuning"] = _tuning(study)
    return study.__dict__["_tuning"]


def _tuning(study: StudyView) -> Tuning | None:
    raw = (study.meta_study or {}).get("tune")
    if not raw:
        return None
    try:
        config = TuneConfig.model_validate(raw)
    except ValidationError:  # a store written by another trainlab: no tuning to read rather than no report
        return None
    metric = config.metric_for(_task(study))
    higher = BY_KEY[metric].better != "lower"
    by_variant: dict[str, list[RunView]] = {v.name: [] for v in study.variants}
    for r in study.trials:
        by_variant.setdefault(r.variant, []).append(r)
    ran = {v.name: v.runs[0].record.tuned for v in study.variants if v.runs}
    variants = []
    for name, trial_runs in by_variant.items():
        if not trial_runs:
            continue
        trials = tuple(
            TrialRun(Trial(r.record.trial or 0, dict(r.record.tuned), _value(r, metric)), r.status, r.run_id,
                     r.error, r.record.pruned_epoch)
            for r in sorted(trial_runs, key=lambda r: r.record.trial or 0)
        )  # fmt: skip
        best = best_trial([t.trial for t in trials], higher)
        v = VariantTuning(name, config.trials, trials, best, dict(ran.get(name) or {}))
        # An edge is news once the variant's search is over: a later trial may still land inside the range.
        variants.append(replace(v, edges=_edges(config, best)) if v.finished else v)
    return Tuning(config, metric, higher, tuple(variants))


def _value(run: RunView, metric: str) -> float | None:
    """A trial's validation figure; None unless it is done and ran every epoch (a failed, diverged or pruned
    trial scores nothing: a pruned one's figure is a shorter run's)."""
    done = run.status == "done" and run.record.pruned_epoch is None
    return run.record.figure(metric) if done else None


def _task(study: StudyView) -> str:
    """The dataset's task: as the study's runs say, else as the trials say (their test split is sealed, so
    they show R² on validation only)."""
    if any(r.status == "done" for r in study.runs):
        return study.task
    for r in study.trials:
        if r.status == "done" and r.record.figure("val_acc") is None and r.record.figure("val_r2") is not None:
            return "regression"
    return "classification"


def _edges(config: TuneConfig, best: Trial | None) -> tuple[Edge, ...]:
    if best is None:
        return ()
    out = []
    for key, space in config.params.items():
        value = best.settings.get(key)
        if value is not None and (end := at_edge(space, value)) is not None:
            out.append(Edge(key, value, end, space))
    return tuple(out)


# ---- findings -------------------------------------------------------------------------------------------------


def _chosen_text(variants: list[VariantTuning]) -> str:
    """``sgd at train.lr = 0.356, adam at 0.0178`` (one key: named once); with several keys each variant names
    them all: ``sgd at train.lr = 0.356, train.momentum = 0.9; adam at ...``."""
    keys = list(dict.fromkeys(k for v in variants for k in v.tuned))
    if len(keys) == 1:
        (key,) = keys
        return ", ".join(
            f"{v.name} at {key + ' = ' if i == 0 else ''}{setting_text(v.tuned[key])}" for i, v in enumerate(variants)
        )
    return "; ".join(
        f"{v.name} at " + ", ".join(f"{k} = {setting_text(val)}" for k, val in v.tuned.items()) for v in variants
    )


def tuned(study: StudyView) -> list[Finding]:
    """The ``tuned`` rule, told at the end of the verdict: how every variant was tuned, and the settings the
    comparison is of; with the trials that failed or diverged, and the variants left out for want of any."""
    t = tuning(study)
    if t is None or not t.variants:
        return []
    cfg = t.config
    how = f"{SAMPLER_TEXT.get(cfg.sampler, cfg.sampler)} over " + " and ".join(
        space_text(k, s) for k, s in cfg.params.items()
    )
    how += f", judged by {metric_label(t.metric)}"
    figures: dict[str, Any] = {"tune_trials": cfg.trials, "tune_sampler": cfg.sampler, "tune_metric": t.metric}
    if not t.finished:
        ended = sum(1 for v in t.variants for r in v.trials if r.status in OUTCOMES)
        total = cfg.trials * len(t.variants)
        text = (f"Each variant is being tuned with {cfg.trials} trials on the validation split ({how}): {ended} of"
                f" {total} trials have ended.")  # fmt: skip
        return [Finding("tuned", "info", text, figures, ANCHOR)]
    compared = [v for v in t.variants if v.tuned]
    text = f"Each variant was tuned with {cfg.trials} trials on the validation split ({how})"
    if compared:
        text += f"; the comparison is of the variants at their best settings ({_chosen_text(compared)})"
    text += "."
    pair = best_and_worst(study)
    if pair is not None and auto_settings(study) is None:  # repeats = "auto" says it in its own sentence
        key, best, worst = pair
        said, poi = improvement_text(best.name, worst.name, key, *sides(best, worst, key))
        text += said
        figures["p_improvement"] = poi[0] if poi else None
    bad = [v for v in t.variants if v.failed or v.diverged]
    if bad:
        parts = [f"{v.name} " + ", ".join(f"{n} {s}" for s, n in v.counts.items() if s in FAILED)
                 for v in bad]  # fmt: skip
        text += f" Trials that failed or diverged count against the budget: {'; '.join(parts)}."
    for v in t.variants:
        if v.best is None:
            text += f" Every trial of {v.name} failed or diverged: it has no runs to compare."
    figures["tuned"] = [f"{v.name}: " + ", ".join(f"{k}={setting_text(x)}" for k, x in v.tuned.items())
                        for v in compared]  # fmt: skip
    return [Finding("tuned", "info", text, figures, ANCHOR)]


def edges(study: StudyView) -> list[Finding]:
    """The ``edge`` rule: a variant whose best value of a tuned key lies at an end of its range (the outer
    :data:`trainlab.tune.choice.EDGE` of it), or is the smallest or largest of its choices: the best setting may
    lie beyond what was tried."""
    t = tuning(study)
    if t is None:
        return []
    out = []
    for v in t.variants:
        if not v.edges:
            continue
        them = "it" if len(v.edges) == 1 else "them"
        text = f"{v.name}'s best " + " and its best ".join(e.clause for e in v.edges)
        text += f": the best setting may lie beyond {them}."
        figures = {f"edge_{e.key}": f"{setting_text(e.value)} ({e.end})" for e in v.edges}
        detail = "; ".join(e.detail for e in v.edges)
        out.append(Finding("edge", "warning", text, figures, ANCHOR, variant=v.name, detail=detail, advice=EDGE_ADVICE))
    return out


# ---- the Tuning table -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TuningRow:
    """One variant: its tuned values (one per tuned key, the edge it lies at), trials, best trial and the test
    figure of its runs (a :class:`~trainlab.report.tables.Cell`: the mean with its interval)."""

    name: str
    anchor: str
    values: tuple[tuple[str, str | None], ...]  # per tuned key: (value text, "low"/"high" edge or None)
    trials: str
    best_trial: str  # 1-based, as the terminal numbers trials
    best_value: str
    test: Cell


@dataclass(frozen=True)
class TuningTable:
    """The Tuning section's table and what its legend says."""

    keys: tuple[str, ...]
    metric: str  # the validation figure the trials were judged by
    test_metric: str  # the figure the runs are scored by
    rows: tuple[TuningRow, ...]
    legend: str

    @property
    def metric_header(self) -> str:
        """The trials' figure with its unit: ``Val acc (%)``."""
        return BY_KEY[self.metric].header

    @property
    def headers(self) -> list[str]:
        def whose(owner: str, key: str) -> str:  # "Best trial's val acc (%)"; R² has no unit to name
            unit = BY_KEY[key].unit
            return f"{owner} {metric_label(key)}" + (f" ({unit})" if unit else "")

        return ["Variant", *self.keys, "Trials", "Best trial", whose("Best trial's", self.metric),
                whose("Runs'", self.test_metric)]  # fmt: skip


def tuning_table(study: StudyView) -> TuningTable | None:
    """Per variant: the values it is compared at, its trials, its best trial's validation figure and its runs'
    test figure (mean ± 95% CI from 3 seeds, as in the comparison table); None for an untuned study."""
    t = tuning(study)
    if t is None or not t.variants:
        return None
    test_key = study.quality_key
    scored = build_table(study, [BY_KEY[test_key]], ANCHOR, "Tuning")  # the comparison table's cells
    cells = {row.name: row.cells[0] for row in scored.rows}
    keys = tuple(t.config.params)
    m = BY_KEY[t.metric]
    rows = []
    for v in t.variants:
        edge_of = {e.key: e.end for e in v.edges}
        chosen = v.chosen
        values = tuple((setting_text(chosen[k]) if k in chosen else "—", edge_of.get(k)) for k in keys)
        best = v.best
        rows.append(TuningRow(
            name=v.name,
            anchor=f"{ANCHOR}-{anchors.slug(v.name)}",
            values=values,
            trials=v.counts_text,
            best_trial=str(best.index + 1) if best is not None else "—",
            best_value=fmt_value(m, best.value) if best is not None else "—",
            test=cells.get(v.name, Cell(None, "—")),
        ))  # fmt: skip
    seeds = f"{study.repeats} seed{'s' if study.repeats != 1 else ''} each"
    legend = (
        f"Each variant had {t.config.trials} trials, each scored on the validation split by"
        f" {metric_label(t.metric)} (its test split sealed); the variant's runs ({seeds}) use its best trial's"
        " settings and are scored on test. A value marked low end / high end lies in the outer tenth of its range"
        " (or is the smallest / largest of its choices): the best setting may lie beyond it."
    ) + (" A pruned trial stopped early, worse than the median of earlier trials at an epoch: it counts against"
         " the budget and is never the best." if t.config.prune != "none" else "")  # fmt: skip
    return TuningTable(keys, t.metric, test_key, tuple(rows), legend)


def tuning_markdown(table: TuningTable) -> str:
    """The Tuning table as GitHub-flavoured Markdown, with its legend."""
    lines = ["| " + " | ".join(md_escape(h) for h in table.headers) + " |", "|" + "---|" * len(table.headers)]
    for r in table.rows:
        values = [md_escape(text) + (f" ({end} end)" if end else "") for text, end in r.values]
        cells = [md_escape(r.name), *values, md_escape(r.trials), r.best_trial, r.best_value, r.test.shown]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n\n" + md_escape(table.legend) + "\n"


__all__ = [
    "ANCHOR",
    "Edge",
    "TrialRun",
    "Tuning",
    "TuningRow",
    "TuningTable",
    "VariantTuning",
    "edge_bands",
    "edges",
    "setting_text",
    "space_text",
    "tuned",
    "tuning",
    "tuning_markdown",
    "tuning_table",
]
