"""The finding registry: every rule the report applies, in the order the report shows what they find.

A rule is one function (of the study, or of one run) plus what the runner needs to know about it: its kind,
which run statuses it reads, which findings supersede it, how several variants' findings of its kind merge
into one sentence, study-specific advice that replaces its usual one, and whether its news is told inside
another finding. The runner (:func:`trainlab.report.findings.study_findings`) iterates this list and nothing
else, so **adding a finding is one function in one file plus its entry here and its test**;
``tests/test_findings.py`` checks the registry against :data:`~trainlab.report.finding.KINDS` (every kind
has a rule, every rule a known kind, one merge per kind, superseding rules listed before the rules they
supersede).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from trainlab.records import TRAINING, RunStatus
from trainlab.report import fairness, settle, study_rules, tuning
from trainlab.report import run_findings as run
from trainlab.report.finding import DATA_BOUND_SHARE, LAUNCH_BOUND_SHARE, LOW_MFU, Finding, Kind
from trainlab.report.nondeterminism import nondeterminism
from trainlab.report.significance import noise, significance
from trainlab.report.study import StudyView
from trainlab.report.verdict import verdict

# A merge takes the findings of one kind, in report order, and the study, and returns fewer (or the same).
Merge = Callable[[list[Finding], StudyView], list[Finding]]
# Advice for a finding in this study, replacing the rule's usual advice; None keeps the usual one.
Advise = Callable[[Finding, StudyView], str | None]

DONE: tuple[RunStatus, ...] = ("done",)  # the rules that read a finished run's figures


@dataclass(frozen=True)
class Rule:
    """One finding rule and how the runner treats what it finds."""

    kind: Kind
    scope: Literal["study", "run"]
    # study: StudyView -> list[Finding]; run: RunView -> Finding | None
    find: Callable[[Any], Any]
    when: tuple[RunStatus, ...] = DONE  # run rules: the run statuses the rule reads
    # Kinds whose finding makes this one redundant: for a run rule, such a finding about the same run; for a
    # study rule, a finding that ranks this finding's metric and winner (Finding.ranks) when this one says no
    # more than that (it has a merge clause, Finding.detail).
    superseded_by: tuple[Kind, ...] = ()
    merge: Merge | None = None
    advise: Advise | None = None
    fold_into: Kind | None = None  # an info finding of this rule is told at the end of that kind's finding


def across_variants(what: str, advice: str = "") -> Merge:
    """Findings of one kind and severity about two or more variants become one sentence naming each variant
    once: ``N variants {what}: a (detail); b (detail).`` followed by ``advice`` (the merged form of the rule's
    advice); findings without a ``detail`` are left as they are."""

    def merge(fs: list[Finding], study: StudyView) -> list[Finding]:
        del study  # the findings' details say everything the sentence names
        groups: dict[str, list[Finding]] = {}
        for f in fs:
            groups.setdefault(f.severity, []).append(f)
        out: list[Finding] = []
        for severity, group in groups.items():
            variants = tuple(dict.fromkeys(f.variant or "" for f in group))
            if len(variants) < 2 or not all(f.detail for f in group):
                out.extend(group)
                continue
            items = "; ".join(f"{f.variant} ({f.detail})" for f in group)
            figs: dict[str, Any] = {"variants": list(variants)}
            for f in group:
                figs.update({f"{k}_{f.variant}": v for k, v in f.figures.items()})
            text = f"{len(variants)} variants {what}: {items}."
            out.append(Finding(group[0].kind, severity, text, figs, group[0].anchor, advice=advice, about=variants))
        return out

    return merge


_OVERFIT = across_variants(
    "overfit: the held-out loss turns up after its lowest epoch while the train loss keeps falling",
    "Stopping near the best epoch or more regularisation would help.",
)
_LOW_MFU = across_variants(
    f"use less than {LOW_MFU * 100:.0f}% of the device's measured peak FLOP/s",
    "The models or batches are too small for the device, or overheads dominate.",
)

_EDGE = across_variants(
    "have their best setting at the edge of the tuned range, so the best setting may lie beyond it",
    tuning.EDGE_ADVICE,
)

RULES: tuple[Rule, ...] = (
    Rule("progress", "study", study_rules.progress),
    Rule("verdict", "study", verdict),
    Rule("tuned", "study", tuning.tuned, fold_into="verdict"),
    Rule("settled", "study", settle.settled, fold_into="verdict"),
    Rule("untuned", "study", fairness.untuned, fold_into="verdict"),
    Rule("selection", "study", study_rules.selection, fold_into="verdict"),
    Rule("edge", "study", tuning.edges, merge=_EDGE),
    Rule("nondeterminism", "study", nondeterminism),
    Rule("busy_machine", "study", study_rules.busy_machine, fold_into="noise"),
    Rule("best", "study", study_rules.best, superseded_by=("verdict",), merge=study_rules.merge_bests),
    Rule("tradeoff", "study", study_rules.tradeoffs),
    Rule("diverged", "run", run.diverged, when=("diverged",)),
    Rule("failed", "run", run.failed, when=("failed",)),
    Rule("diverged", "run", run.exploding, when=TRAINING),
    Rule("overfitting", "run", run.overfitting, when=TRAINING, merge=_OVERFIT),
    Rule("underfitting", "run", run.underfitting, merge=across_variants("underfit", run.UNDERFIT_ADVICE)),
    Rule("worse_than_mean", "run", run.worse_than_mean,
         merge=across_variants("are worse than predicting the mean (test R² below 0)")),
    Rule("not_converged", "run", run.not_converged, superseded_by=("overfitting",),
         merge=across_variants("have not converged: the loss is still falling at the end of training",
                               run.NOT_CONVERGED_ADVICE)),
    Rule("fit", "run", run.good_fit, superseded_by=("overfitting", "underfitting", "not_converged", "worse_than_mean"),
         merge=across_variants("show no overfitting within their epochs")),
    Rule("data_bound", "run", run.data_bound, advise=run.data_bound_advice,
         merge=across_variants(f"are data-bound (waiting for batches more than {DATA_BOUND_SHARE * 100:.0f}% of "
                               "training time)", run.DATA_BOUND_ADVICE)),
    Rule("low_utilisation", "run", run.low_utilisation, merge=_LOW_MFU),
    Rule("low_utilisation", "run", run.mfu_unstated, merge=_LOW_MFU),
    Rule("launch_bound", "run", run.launch_bound,
         merge=across_variants(f"are launch-bound (the GPU runs kernels less than {LAUNCH_BOUND_SHARE * 100:.0f}% of "
                               'a step)', 'Capturing the step in a CUDA graph (train.compile = "cuda-graph") or a '
                               "larger batch would help.")),
    Rule("significance", "study", significance),
    Rule("skipped", "run", run.skipped, when=("skipped",)),
    Rule("noise", "study", noise),
)  # fmt: skip

# Where each kind's findings appear in the report: the position of its first rule.
KIND_ORDER: dict[Kind, int] = {}
for _i, _rule in enumerate(RULES):
    KIND_ORDER.setdefault(_rule.kind, _i)
RUN_RULES = tuple(r for r in RULES if r.scope == "run")
# One merge, advice and fold per kind (a test checks that rules sharing a kind agree on them).
MERGES: dict[Kind, Merge] = {r.kind: r.merge for r in RULES if r.merge}
ADVISE: dict[Kind, Advise] = {r.kind: r.advise for r in RULES if r.advise}

__all__ = ["ADVISE", "KIND_ORDER", "MERGES", "RULES", "RUN_RULES", "Rule", "across_variants"]
