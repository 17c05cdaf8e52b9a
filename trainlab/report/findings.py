"""Findings: plain sentences about a study, each with the figures behind it and a link to its evidence.

The rules live in :mod:`~trainlab.report.study_rules`, :mod:`~trainlab.report.run_findings`,
:mod:`~trainlab.report.verdict`, :mod:`~trainlab.report.significance` and
:mod:`~trainlab.report.nondeterminism`; the registry (:mod:`~trainlab.report.registry`) lists them in report
order with what supersedes and merges what. This module is the runner: it applies the registry and nothing
else decides which findings a report has or in which order.
"""

from __future__ import annotations

from dataclasses import replace

from trainlab.report.finding import (
    DATA_BOUND_SHARE,
    LOW_MFU,
    OVERFIT_LOSS_RISE,
    UNDERFIT_LOSS_DROP,
    UNDERFIT_TRAIN_ACC,
    Finding,
    Kind,
)
from trainlab.report.registry import ADVISE, KIND_ORDER, MERGES, RULES, RUN_RULES
from trainlab.report.study import RunView, StudyView
from trainlab.report.study_rules import pareto_front


def run_findings(run: RunView, quality_key: str = "test_acc") -> list[Finding]:
    """Findings about one run (its report block), each sentence ending with its advice.

    ``quality_key`` is accepted for callers that pass the study's; the run rules read the run alone."""
    del quality_key
    return [_with_advice(f, None) for f in _run_rules(run)]


def study_findings(study: StudyView) -> list[Finding]:
    """All findings of a study in report order (the answer first), superseded ones left out, several variants'
    findings of one kind merged, each sentence ending with its advice."""
    found: list[Finding] = []
    for rule in RULES:
        if rule.scope == "study":
            for f in rule.find(study):
                if not any(_says_more(g, f) for g in found if g.kind in rule.superseded_by):
                    found.append(f)
    found += _fold_seeds([f for r in study.runs for f in _run_rules(r)], study)
    by_kind: dict[Kind, list[Finding]] = {}
    for f in found:
        by_kind.setdefault(f.kind, []).append(f)
    merged = [g for kind, fs in by_kind.items() for g in (MERGES[kind](fs, study) if kind in MERGES else fs)]
    merged = _fold(merged)
    merged.sort(key=lambda f: KIND_ORDER[f.kind])  # stable: within a kind, the order the rules found them
    return [_with_advice(f, study) for f in merged]


def _run_rules(run: RunView) -> list[Finding]:
    """The run rules that read this run's status, in registry order, each skipped when a finding that
    supersedes it was found; the findings carry the run's variant and id."""
    out: list[Finding] = []
    for rule in RUN_RULES:
        if run.status not in rule.when or any(f.kind in rule.superseded_by for f in out):
            continue
        if f := rule.find(run):
            out.append(replace(f, variant=run.variant, run_id=run.run_id))
    return out


def _says_more(g: Finding, f: Finding) -> bool:
    """``g`` already states what ``f`` states: f says no more than who is best by its metric (it has a merge
    clause) and g ranks that metric with the same winner."""
    return bool(f.detail) and f.metric is not None and f.variant in g.ranks.get(f.metric, ())


def _fold_seeds(per_run: list[Finding], study: StudyView) -> list[Finding]:
    """One finding per (kind, variant): the first seed's sentence, with how many of the variant's seeds show it."""
    seeds = {v.name: len(v.runs) for v in study.variants}
    seed_of = {r.run_id: r.seed for r in study.runs}
    grouped: dict[tuple[str, str | None], list[Finding]] = {}
    for f in per_run:
        grouped.setdefault((f.kind, f.variant), []).append(f)
    out = []
    for (_kind, variant), fs in grouped.items():
        first, n = fs[0], seeds.get(variant or "", 1)
        if n > 1:
            seen = f" (seed {seed_of.get(first.run_id or '', '?')}; seen in {len(fs)} of {n} seeds)."
            first = replace(
                first, text=first.text.rstrip(".") + seen, figures={**first.figures, "runs_flagged": len(fs)}
            )
        out.append(first)
    return out


def _fold(fs: list[Finding]) -> list[Finding]:
    """An info finding of a rule that folds into another kind is told at the end of that kind's first finding
    (e.g. a few busy epochs that moved no timing, in the noise finding); without one it stays on its own."""
    folds = {r.kind: r.fold_into for r in RULES if r.fold_into}
    out = list(fs)
    for f in fs:
        into = folds.get(f.kind)
        target = next((g for g in out if g.kind == into), None)
        if f.severity == "info" and target is not None:
            out[out.index(target)] = replace(
                target, text=f"{target.text} {f.text}", figures={**target.figures, **f.figures}
            )
            out.remove(f)
    return out


def _with_advice(f: Finding, study: StudyView | None) -> Finding:
    """The finding's sentence ended with its advice: the study's own (its rule's ``advise``), else the usual."""
    advise = ADVISE.get(f.kind)
    advice = (advise(f, study) if advise and study is not None else None) or f.advice
    return replace(f, text=f"{f.text} {advice}", advice=advice) if advice else f


__all__ = [
    "DATA_BOUND_SHARE",
    "LOW_MFU",
    "OVERFIT_LOSS_RISE",
    "UNDERFIT_LOSS_DROP",
    "UNDERFIT_TRAIN_ACC",
    "Finding",
    "pareto_front",
    "run_findings",
    "study_findings",
]
