"""Findings: plain sentences about a study, each with the figures behind it and a link to its evidence.

Per run: overfitting, underfitting, divergence or failure, data-bound training, low device utilisation.
Per study: the best variant per metric, the accuracy/cost trade-off (Pareto fronts), comparisons with the
baseline when there are repeats, and what the noise allows us to say. Every threshold is a named constant.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from trainlab.measure.format import fmt_delta, fmt_few, fmt_value
from trainlab.measure.load import BUSY_EXCESS_SHARE
from trainlab.measure.metrics import BY_KEY, INFER, Metric
from trainlab.measure.stats import CI_MIN_N, relative_gap
from trainlab.records import OUTCOMES
from trainlab.report import anchors
from trainlab.report.comparison import compare_groups, family_of, seed_group
from trainlab.report.finding import (
    BEST_METRICS,
    DATA_BOUND_SHARE,
    KIND_ORDER,
    LAUNCH_BOUND_SHARE,
    LOW_MFU,
    OVERFIT_LOSS_RISE,
    UNDERFIT_LOSS_DROP,
    UNDERFIT_TRAIN_ACC,
    Finding,
    figure_text,
    metric_label,
    metric_title,
    rounded,
)
from trainlab.report.nondeterminism import nondeterminism, performance_only_study
from trainlab.report.run_findings import DATA_BOUND_ADVICE, UNDERFIT_ADVICE, run_findings
from trainlab.report.significance import noise_finding, significance
from trainlab.report.study import StudyView, VariantView
from trainlab.report.verdict import identical_inference, verdict

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
    base, family = study.baseline, family_of(study, m.key)
    if m.timing:
        busy = list({id(v): v for v in (best, second, base) if v is not None and v.busy_for(m)}.values())
        if busy:
            return _busy_best(study, m, best, bs.mean, base, busy)
    word = "Highest" if m.better == "higher" else "Lowest"
    text = f"{word} {metric_label(m.key)}: {best.name}, {figure_text(m.key, bs.mean)}"
    if bs.n >= CI_MIN_N and bs.half_width is not None:
        ci = f" ± {figure_text(m.key, bs.half_width)}" if bs.half_width > 0 else ""
        text += f"{ci} (mean{' ± 95% CI' if ci else ''} of {bs.n} seeds)"
    elif bs.n == 2:  # no interval from 2 seeds: their range
        text += f" (mean; {fmt_few(m, best.values(m.key))}{figure_text(m.key, 0)[len(fmt_value(m, 0)) :]})"
    figs: dict[str, Any] = {m.key: rounded(bs.mean)}
    if base is not None and base is not best:
        b = base.summary(m.key)
        if b is not None:
            figs[f"baseline_{m.key}"] = rounded(b.mean)
            text += f"; the baseline {base.name} has {figure_text(m.key, b.mean)} ({fmt_delta(m, bs.mean, b.mean)})"
            test = family.vs_baseline(best.name)
            if test is not None:
                figs["p_vs_baseline"] = rounded(test.p, 3)
                figs["p_adjusted_vs_baseline"] = rounded(test.p_adjusted, 3)
                verdict = "larger than the noise" if test.significant else "not larger than the noise"
                text += f", {test.p_text}: {verdict}"
    elif base is best:
        text += " (the baseline)"
    # Is the winner distinguishable from the runner-up? The same rule; outside the figure's family the p is
    # unadjusted, which can only say "not distinguishable" when an adjusted one would too.
    test2 = family.pair(best.name, second.name) or compare_groups(
        seed_group(best, m.key), seed_group(second, m.key), m.quantised
    )
    if test2 is not None and not test2.significant:
        figs["p_vs_runner_up"] = rounded(test2.p, 3)
        text += f"; {second.name} ({figure_text(m.key, ss.mean)}) is not distinguishable from it ({test2.p_text})"
    elif test2 is None and m.timing and study.within_timing_noise(m.key, ss.mean, bs.mean):
        gap = relative_gap(ss.mean, bs.mean) or 0.0
        noise = study.timing_noise_of(m.key) or 0.0
        figs["gap_to_runner_up"] = rounded(gap, 3)
        text += f"; the gap to {second.name} ({gap * 100:.1f}%) is within the timing noise (twice ±{noise * 100:.1f}%)"
    if m.key.endswith(("to_target", "to_target_s")):
        never = [v.name for v in study.variants if v.done and v.summary(m.key) is None]
        if never:
            figs["not_reached"] = never
            text += f"; {', '.join(never)} never reached the target"
    return Finding("best", "info", text + ".", figs, anchors.COMPARISON, variant=best.name)


def _busy_best(study: StudyView, m: Metric, best: VariantView, value: float, base: VariantView | None,
               busy: list[VariantView]) -> Finding:  # fmt: skip
    """A timing ranking whose evidence a busy machine spoiled: say who ranked where, and why it is no effect."""
    names = ", ".join(dict.fromkeys(v.name for v in busy))
    text = f"{metric_title(m.key)} cannot be compared: {names} "
    text += f"{'was' if len(busy) == 1 else 'were'} timed while other work competed for the CPUs"
    text += f" ({busy[0].busy_for(m)[0].busy_text})"
    text += f", so {best.name}'s {figure_text(m.key, value)}"
    if base is not None and base is not best and (b := base.mean(m.key)) is not None:
        text += f" against the baseline's {figure_text(m.key, b)} ({fmt_delta(m, value, b)})"
    text += " may be the machine's doing, not the variants'. Rerun them on a quiet machine."
    figs = {m.key: rounded(value), "machine_affected": [v.name for v in busy]}
    return Finding("best", "warning", text, figs, anchors.COMPARISON, variant=best.name)


def busy_machine(study: StudyView) -> Finding | None:
    """The runs timed on a busy machine, and which comparisons that spoils; runs whose few busy epochs could not
    move their times are named as unaffected."""
    busy = [r for v in study.variants for r in v.busy_runs]
    minor = [r for v in study.variants for r in v.done if r.busy_epochs and not r.machine_busy]
    if not busy and not minor:
        return None
    multi = study.repeats > 1

    def who(runs: list) -> str:
        return "; ".join(f"{r.variant}{f' (seed {r.seed})' if multi else ''}: {r.busy_text}" for r in runs)

    text = ""
    if busy:
        timed = [metric_label(m.key) for m in study.present() if any(r.busy_for(m) for r in busy)][:6]
        text = (
            f"The machine was busy while {len(busy)} {'run was' if len(busy) == 1 else 'runs were'} timed — "
            f"{who(busy)}. "
            f"Their timing figures ({', '.join(timed) or 'every time'}) are marked ‡ and no timing difference "
            "involving them is called an effect; accuracy and loss are not affected. Rerun them on a quiet machine "
            "to compare timings."
        )
    if minor:
        text += (" " if text else "") + (
            f"Other work also competed in a few epochs of {who(minor)}, adding at most "
            f"{BUSY_EXCESS_SHARE * 100:.0f}% to the training time: those timings stand."
        )
    figs = {
        "runs": [r.run_id for r in busy],
        "variants": sorted({r.variant for r in busy}),
        "minor_runs": [r.run_id for r in minor],
    }
    return Finding("busy_machine", "warning" if busy else "info", text, figs, anchors.RUNS)


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
        text = f"{metric_title(q)} vs {cost_label}: every variant is on the Pareto front — {items}."
    else:
        text = (
            f"{metric_title(q)} vs {cost_label}: the Pareto front is {items}; "
            f"{', '.join(dominated)} {'is' if len(dominated) == 1 else 'are'} dominated "
            f"(another variant is at least as good for no more {cost_label})."
        )
    figs: dict[str, Any] = {"front": front, "dominated": dominated}
    busy = [v.name for v in study.variants if v.busy_for(BY_KEY[cost_key])]
    if busy:
        text += f" The training times of {', '.join(busy)} were taken on a busy machine: this front is not evidence."
        figs["machine_affected"] = busy
    return Finding("tradeoff", "info", text, figs, anchor)


def _progress(study: StudyView) -> Finding | None:
    if study.finished:
        return None
    counts: dict[str, int] = {}
    for r in study.runs:
        counts[r.status] = counts.get(r.status, 0) + 1
    done = sum(n for s, n in counts.items() if s in OUTCOMES)  # ended, one way or another
    parts = ", ".join(f"{n} {s}" for s, n in counts.items() if s not in OUTCOMES)
    text = (
        f"The study is still running: {done} of {len(study.runs)} runs finished ({parts}). The report shows what "
        "is finished so far; rebuild it later with: trainlab report <output folder>."
    )
    return Finding("progress", "info", text, dict(counts), anchors.RUNS)


def _merge(per_run: list[Finding], study: StudyView) -> list[Finding]:
    """Per-run findings folded twice: one per (kind, variant) — the first seed's sentence, with how many of the
    variant's seeds show it — then one per kind across variants (:func:`_across_variants`)."""
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
    refuted = [f for f in out if _withdraw_workers_advice(f, study)]
    # Several data-bound variants merged: the general advice gives way to what this study measured.
    return _across_variants(out, {"data_bound": NO_WORKERS_CURE} if refuted else {})


# Kinds merged into one finding when several variants show them: (what they share, the advice).
MERGED: dict[str, tuple[str, str]] = {
    "underfitting": ("underfit", UNDERFIT_ADVICE),
    "overfitting": ("overfit: the test loss turns up after its lowest epoch while the train loss keeps falling",
                    "Stopping near the best epoch or more regularisation would help."),
    "not_converged": ("have not converged: the loss is still falling at the end of training",
                      "Training longer would lower it further."),
    "fit": ("show no overfitting within their epochs", ""),
    "worse_than_mean": ("are worse than predicting the mean (test R² below 0)", ""),
    "data_bound": (f"are data-bound (waiting for batches more than {DATA_BOUND_SHARE * 100:.0f}% of training "
                   "time)", DATA_BOUND_ADVICE),
    "launch_bound": (f"are launch-bound (the GPU runs kernels less than {LAUNCH_BOUND_SHARE * 100:.0f}% of a "
                     "step)", 'Capturing the step in a CUDA graph (train.compile = "cuda-graph") or a larger '
                     "batch would help."),
    "low_utilisation": (f"use less than {LOW_MFU * 100:.0f}% of the device's measured peak FLOP/s",
                        "The models or batches are too small for the device, or overheads dominate."),
}  # fmt: skip


def _across_variants(fs: list[Finding], advice_for: dict[str, str]) -> list[Finding]:
    """Findings of one kind and severity about two or more variants become one sentence naming them;
    ``advice_for`` replaces a kind's usual advice."""
    groups: dict[tuple[str, str], list[Finding]] = {}
    for f in fs:
        groups.setdefault((f.kind, f.severity), []).append(f)
    out: list[Finding] = []
    for (kind, severity), group in groups.items():
        variants = {f.variant for f in group}
        if kind not in MERGED or len(variants) < 2 or not all(f.detail for f in group):
            out.extend(group)
            continue
        what, advice = MERGED[kind]
        advice = advice_for.get(kind, advice)
        items = "; ".join(f"{f.variant} ({f.detail})" for f in group)
        text = f"{len(variants)} variants {what}: {items}." + (f" {advice}" if advice else "")
        figs: dict[str, Any] = {"variants": [f.variant for f in group]}
        for f in group:
            figs.update({f"{k}_{f.variant}": v for k, v in f.figures.items()})
        if kind == "low_utilisation" and "peak_flops" in group[0].figures:
            figs["peak_flops"] = group[0].figures["peak_flops"]
        out.append(Finding(kind, severity, text, figs, group[0].anchor))
    return out


NO_WORKERS_CURE = (
    "More DataLoader workers are no cure here: this study measured more workers waiting no less for batches."
)


def _withdraw_workers_advice(f: Finding, study: StudyView) -> bool:
    """Never advise what the study itself measured to be worse: in a data-bound finding, "more DataLoader
    workers" gives way to the measurement when a variant with more workers waited no less for its batches.
    True when the advice was withdrawn."""
    if f.kind != "data_bound" or "data.num_workers" not in study.swept_keys or f.variant is None:
        return False
    me = next((v for v in study.variants if v.name == f.variant), None)
    if me is None:
        return False
    key = "data_steady_s" if me.mean("data_steady_s") is not None else "data_time_s"
    mine, workers = me.mean(key), me.factors.get("data.num_workers")
    if mine is None or not isinstance(workers, int):
        return False
    more = [(v.factors.get("data.num_workers"), v.mean(key)) for v in study.variants if v is not me]
    worse = [(w, t) for w, t in more if isinstance(w, int) and w > workers and t is not None and t >= mine]
    if not worse:
        return False
    w, t = min(worse)
    f.text = f.text.replace(
        DATA_BOUND_ADVICE,
        f"More DataLoader workers are no cure here: this study measured num_workers={w} waiting {t:.3g} s for "
        f"batches ({metric_label(key)}) against {mine:.3g} s at num_workers={workers}.",
    )
    return True


def _seed_of(study: StudyView, run_id: str | None) -> Any:
    return next((r.seed for r in study.runs if r.run_id == run_id), "?")


def study_findings(study: StudyView) -> list[Finding]:
    """All findings of a study, most useful first."""
    out: list[Finding] = []
    prog = _progress(study)
    if prog:
        out.append(prog)
    out.extend(verdict(study))
    out.extend(nondeterminism(study))
    perf_only = performance_only_study(study)
    for key in BEST_METRICS:
        m = BY_KEY[key]
        if key in ("test_acc", "test_r2") and key != study.quality_key:
            continue
        if perf_only and not m.timing:
            continue  # accuracy and loss cannot differ by design: the nondeterminism finding says so
        if m.group == INFER and identical_inference(study):
            continue  # the same inference network in every variant: no variant can be faster at inference
        f = _best(study, m)
        if f:
            out.append(f)
    for cost, anchor in (("macs", anchors.PARETO), ("train_time_s", anchors.PARETO)):
        if perf_only:
            break  # no accuracy trade-off along a factor that cannot change accuracy
        f = _tradeoff(study, cost, anchor)
        if f:
            out.append(f)
    busy = busy_machine(study)
    if busy:
        out.append(busy)
    per_run = [f for r in study.runs for f in run_findings(r, study.quality_key)]
    out.extend(_merge(per_run, study))
    out.extend(significance(study, perf_only))
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
