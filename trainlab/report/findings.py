"""Findings: plain sentences about a study, each with the figures behind it and a link to its evidence.

Per run: overfitting, underfitting, divergence or failure, data-bound training, low device utilisation.
Per study: the best variant per metric, the accuracy/cost trade-off (Pareto fronts), comparisons with the
baseline when there are repeats, and what the noise allows us to say. Every threshold is a named constant.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from trainlab.measure.format import fmt_delta
from trainlab.measure.metrics import BY_KEY, Metric
from trainlab.measure.stats import ALPHA, TEST_NAME, relative_change, welch_test
from trainlab.report import anchors
from trainlab.report.finding import (
    BEST_METRICS,
    DATA_BOUND_SHARE,
    KIND_ORDER,
    LOW_MFU,
    OVERFIT_LOSS_RISE,
    UNDERFIT_LOSS_DROP,
    UNDERFIT_TRAIN_ACC,
    Finding,
    figure_text,
    metric_label,
    pct2,
    rounded,
)
from trainlab.report.run_findings import run_findings
from trainlab.report.study import StudyView

# ------------------------------------------------------------------------------------------------------
# Per study


def pareto_front(points: Sequence[tuple[str, float, float]]) -> list[str]:
    """Names of the points (name, cost, quality) no other point dominates (cost <= and quality >=, one strictly).

    Returned in order of increasing cost.
    """
    front = []
    for name, cost, qual in points:
        dominated = any((c2 <= cost and q2 >= qual) and (c2 < cost or q2 > qual) for n2, c2, q2 in points if n2 != name)
        if not dominated:
            front.append((cost, -qual, name))
    return [name for _c, _q, name in sorted(front)]


def _best(study: StudyView, m: Metric) -> Finding | None:
    cands = [(v, v.summary(m.key)) for v in study.variants]
    cands = [(v, s) for v, s in cands if s is not None]
    if len(cands) < 2 or m.better is None:
        return None
    rank = sorted(cands, key=lambda vs: vs[1].mean, reverse=m.better == "higher")
    (best, bs), (second, ss) = rank[0], rank[1]
    if bs.mean == ss.mean:
        return None
    base = study.baseline
    word = "Highest" if m.better == "higher" else "Lowest"
    text = f"{word} {metric_label(m.key)}: {best.name}, {figure_text(m.key, bs.mean)}"
    if bs.half_width is not None:
        ci = f" ± {figure_text(m.key, bs.half_width)}" if bs.half_width > 0 else ""
        text += f"{ci} (mean{' ± 95% CI' if ci else ''} of {bs.n} seeds)"
    figs: dict[str, Any] = {m.key: rounded(bs.mean)}
    if base is not None and base is not best:
        b = base.summary(m.key)
        if b is not None:
            figs[f"baseline_{m.key}"] = rounded(b.mean)
            text += f"; the baseline {base.name} has {figure_text(m.key, b.mean)} ({fmt_delta(m, bs.mean, b.mean)})"
            test = study.compare(best, m.key)
            if test is not None:
                figs["p_vs_baseline"] = rounded(test.p, 3)
                verdict = "larger than the noise" if test.significant else "not larger than the noise"
                text += f", Welch p = {test.p:.2g}: {verdict}"
    elif base is best:
        text += " (the baseline)"
    # Is the winner distinguishable from the runner-up?
    test2 = welch_test(best.values(m.key), second.values(m.key))
    if test2 is not None and not test2.significant:
        figs["p_vs_runner_up"] = rounded(test2.p, 3)
        text += f"; {second.name} ({figure_text(m.key, ss.mean)}) is not distinguishable from it (p = {test2.p:.2g})"
    elif test2 is None and m.timing and study.timing_noise is not None:
        gap = abs(relative_change(ss.mean, bs.mean) or 0.0)
        if gap < study.timing_noise.cv_median:
            figs["gap_to_runner_up"] = rounded(gap, 3)
            text += (
                f"; the gap to {second.name} ({gap * 100:.1f}%) is below the timing noise "
                f"({study.timing_noise.cv_median * 100:.1f}%)"
            )
    if m.key.endswith(("to_target", "to_target_s")):
        never = [v.name for v in study.variants if v.done and v.summary(m.key) is None]
        if never:
            figs["not_reached"] = never
            text += f"; {', '.join(never)} never reached the target"
    return Finding("best", "info", text + ".", figs, anchors.COMPARISON, variant=best.name)


def _tradeoff(study: StudyView, cost_key: str, anchor: str) -> Finding | None:
    q = study.quality_key
    pts = [(v.name, v.mean(cost_key), v.mean(q)) for v in study.variants]
    pts = [(n, c, a) for n, c, a in pts if c is not None and a is not None]
    if len(pts) < 2:
        return None
    front = pareto_front(pts)
    by_name = {n: (c, a) for n, c, a in pts}
    dominated = [n for n, _c, _a in pts if n not in front]
    cost_label = "MACs" if cost_key == "macs" else "training time"
    items = ", ".join(f"{n} ({figure_text(q, by_name[n][1])}, {figure_text(cost_key, by_name[n][0])})" for n in front)
    if not dominated:
        text = f"{metric_label(q).capitalize()} vs {cost_label}: every variant is on the Pareto front — {items}."
    else:
        text = (
            f"{metric_label(q).capitalize()} vs {cost_label}: the Pareto front is {items}; "
            f"{', '.join(dominated)} {'is' if len(dominated) == 1 else 'are'} dominated "
            f"(another variant is at least as good for no more {cost_label})."
        )
    figs = {"front": front, "dominated": dominated}
    return Finding("tradeoff", "info", text, figs, anchor)


def _significance(study: StudyView) -> list[Finding]:
    """With repeats: each variant against the baseline on the quality metric and training time."""
    out: list[Finding] = []
    base = study.baseline
    if base is None or study.repeats < 2:
        return out
    for v in study.variants:
        if v is base:
            continue
        parts, figs = [], {}
        for key in (study.quality_key, "train_time_s"):
            m = BY_KEY[key]
            test = study.compare(v, key)
            if test is None:
                continue
            verdict = "larger than the noise" if test.significant else "within the noise"
            parts.append(
                f"{metric_label(key)} {fmt_delta(m, v.mean(key), base.mean(key))} (p = {test.p:.2g}, {verdict})"
            )
            figs[f"p_{key}"] = rounded(test.p, 3)
            figs[f"diff_{key}"] = rounded(test.diff)
        if parts:
            text = f"{v.name} vs {base.name}: " + "; ".join(parts) + f" — {TEST_NAME}, α = {ALPHA:g}."
            out.append(Finding("significance", "info", text, figs, anchors.STATISTICS, variant=v.name))
    return out


def noise_finding(study: StudyView) -> Finding:
    """What the noise allows: the test used with repeats, or the within-run timing variation with one seed."""
    noise = study.timing_noise
    if study.repeats >= 2:
        text = (
            f"Each variant ran with up to {study.repeats} seeds: tables show mean ± 95% confidence interval "
            f"(t distribution), and each variant is compared with the baseline by {TEST_NAME}; p < {ALPHA:g} "
            "counts as larger than the noise."
        )
        figs: dict[str, Any] = {"repeats": study.repeats, "alpha": ALPHA}
    else:
        text = "Each variant ran with one seed, so run-to-run variation was not measured. "
        figs = {"repeats": 1}
        if noise is not None:
            text += (
                f"Epoch times vary by {noise.cv_median * 100:.1f}% within a run (median coefficient of variation, "
                f"epoch 1 excluded, over {noise.runs} run{'s' if noise.runs != 1 else ''}; max "
                f"{noise.cv_max * 100:.1f}%): timing differences smaller than that cannot be told apart from noise."
            )
            figs.update(
                timing_cv_median=rounded(noise.cv_median, 3), timing_cv_max=rounded(noise.cv_max, 3), runs=noise.runs
            )
        else:
            text += (
                "Runs have fewer than 3 epochs, so timing variation could not be measured; treat small timing "
                "differences as noise."
            )
        text += " Use repeats = N in the study for confidence intervals and significance tests."
    return Finding("noise", "info", text, figs, anchors.STATISTICS)


def _progress(study: StudyView) -> Finding | None:
    if study.finished:
        return None
    counts: dict[str, int] = {}
    for r in study.runs:
        counts[r.status] = counts.get(r.status, 0) + 1
    done = sum(n for s, n in counts.items() if s not in ("pending", "running"))
    parts = ", ".join(f"{n} {s}" for s, n in counts.items() if s in ("running", "pending"))
    text = (
        f"The study is still running: {done} of {len(study.runs)} runs finished ({parts}). The report shows what "
        "is finished so far; rebuild it later with: trainlab report <output folder>."
    )
    return Finding("progress", "info", text, dict(counts), anchors.RUNS)


def _merge(per_run: list[Finding], study: StudyView) -> list[Finding]:
    """One finding per (kind, variant): the first run's sentence, plus how many of the variant's seeds show it."""
    seeds = {v.name: len(v.runs) for v in study.variants}
    grouped: dict[tuple[str, str | None], list[Finding]] = {}
    for f in per_run:
        grouped.setdefault((f.kind, f.variant), []).append(f)
    out = []
    for (_kind, variant), fs in grouped.items():
        first = fs[0]
        n = seeds.get(variant or "", 1)
        if n > 1:
            first.text = (
                first.text.rstrip(".") + f" (seed {_seed_of(study, first.run_id)}; seen in {len(fs)} of {n} seeds)."
            )
            first.figures["runs_flagged"] = len(fs)
        out.append(first)
    return _combine_utilisation(out)


def _combine_utilisation(fs: list[Finding]) -> list[Finding]:
    """Low utilisation is about the device: one finding listing every variant it concerns."""
    low = [f for f in fs if f.kind == "low_utilisation"]
    if len(low) < 2:
        return fs
    rest = [f for f in fs if f.kind != "low_utilisation"]
    parts = ", ".join(f"{f.variant} {pct2(f.figures['mfu'])}" for f in low)
    text = (
        f"{len(low)} variants use less than {LOW_MFU * 100:.0f}% of the device's measured peak FLOP/s (MFU: "
        f"{parts}): the models or batches are too small for the device, or overheads dominate."
    )
    figs = {f"mfu_{f.variant}": f.figures["mfu"] for f in low}
    if "peak_flops" in low[0].figures:
        figs["peak_flops"] = low[0].figures["peak_flops"]
    rest.append(Finding("low_utilisation", "warning", text, figs, anchors.COMPARISON))
    return rest


def _seed_of(study: StudyView, run_id: str | None) -> Any:
    return next((r.seed for r in study.runs if r.run_id == run_id), "?")


def study_findings(study: StudyView) -> list[Finding]:
    """All findings of a study, most useful first."""
    out: list[Finding] = []
    prog = _progress(study)
    if prog:
        out.append(prog)
    for key in BEST_METRICS:
        m = BY_KEY[key]
        if key in ("test_acc", "test_r2") and key != study.quality_key:
            continue
        f = _best(study, m)
        if f:
            out.append(f)
    for cost, anchor in (("macs", anchors.PARETO), ("train_time_s", anchors.PARETO)):
        f = _tradeoff(study, cost, anchor)
        if f:
            out.append(f)
    per_run = [f for r in study.runs for f in run_findings(r, study.quality_key)]
    out.extend(_merge(per_run, study))
    out.extend(_significance(study))
    if study.runs:
        out.append(noise_finding(study))
    out.sort(key=lambda f: KIND_ORDER.index(f.kind) if f.kind in KIND_ORDER else len(KIND_ORDER))
    return out


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
