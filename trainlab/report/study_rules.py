"""The rules that read the whole study: the best variant per figure, the accuracy/cost trade-off (Pareto
fronts), the busy machine, the study's progress. Each is a function of the study returning its findings; the
registry (trainlab.report.registry) wires them, beside the verdict, significance and noise rules."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from trainlab.measure.format import fmt_delta, fmt_few, fmt_value
from trainlab.measure.load import BUSY_EXCESS_SHARE, busy_excess
from trainlab.measure.metrics import BY_KEY, INFER, Metric
from trainlab.measure.stats import CI_MIN_N, relative_gap
from trainlab.records import OUTCOMES
from trainlab.report import anchors
from trainlab.report.comparison import compare_groups, family_of, seed_group
from trainlab.report.finding import BEST_METRICS, Finding, figure_text, metric_label, metric_title, rounded
from trainlab.report.nondeterminism import performance_only_study
from trainlab.report.study import RunView, StudyView, VariantView, scored_key
from trainlab.report.verdict import identical_inference


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


def best(study: StudyView) -> list[Finding]:
    """The best variant by each figure of BEST_METRICS the study has, and whether the noise allows it; the
    quality figures are read on validation when the study has a validation split (a choice), and the winner's
    test figure is then given as its score."""
    out = []
    perf_only = performance_only_study(study)
    for key in BEST_METRICS:
        if key in ("test_acc", "test_r2") and key != study.quality_key:
            continue
        m = BY_KEY[study.choice_key(key)]
        if perf_only and not m.timing:
            continue  # accuracy and loss cannot differ by design: the nondeterminism finding says so
        if m.group == INFER and identical_inference(study):
            continue  # the same inference network in every variant: no variant can be faster at inference
        if f := _best(study, m):
            out.append(f)
    return out


def merge_bests(fs: list[Finding], study: StudyView) -> list[Finding]:
    """Fewer best findings: the plain ones (a winner and its margin over the baseline, nothing tested) in one
    sentence that names each winner once, and the rankings a busy machine spoiled in one warning; those that
    carry a test stay as they are."""
    return _merge_spoiled(_merge_plain(fs, study), study)


def _listed(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _merge_plain(fs: list[Finding], study: StudyView) -> list[Finding]:
    plain = [f for f in fs if f.detail]
    if len(plain) < 2:
        return fs
    by_winner: dict[str, list[Finding]] = {}
    for f in plain:
        by_winner.setdefault(f.variant or "", []).append(f)
    parts = []
    for winner, wins in by_winner.items():
        base = " (the baseline)" if study.baseline is not None and winner == study.baseline.name else ""
        parts.append(f"{winner}{base} has {_listed([f.detail for f in wins])}")
    figs: dict[str, Any] = {}
    for f in plain:
        figs.update(f.figures)
    merged = Finding("best", "info", "Best by figure: " + "; ".join(parts) + ".", figs, anchors.COMPARISON,
                     variant=plain[0].variant if len(by_winner) == 1 else None)  # fmt: skip
    return _in_place_of(fs, plain, merged)


def _in_place_of(fs: list[Finding], group: list[Finding], merged: Finding) -> list[Finding]:
    """``fs`` with the findings of ``group`` replaced by ``merged``, where the first of them stood."""
    gone = {id(f) for f in group}
    at = fs.index(group[0])
    return [*(f for f in fs[:at] if id(f) not in gone), merged, *(f for f in fs[at:] if id(f) not in gone)]


def _merge_spoiled(fs: list[Finding], study: StudyView) -> list[Finding]:
    """Two or more timing rankings spoiled by a busy machine (the best findings that are warnings): one warning
    naming the figures and the variants; the busy-machine finding says what competed."""
    spoiled = [f for f in fs if f.severity == "warning" and f.metric is not None]
    if len(spoiled) < 2:
        return fs
    keys = [f.metric for f in spoiled if f.metric is not None]
    names = list(dict.fromkeys(v.name for k in keys for v in study.variants if v.busy_for(BY_KEY[k])))
    titles = _listed([metric_title(keys[0]), *(metric_label(k) for k in keys[1:])])
    text = (
        f"{titles} cannot be compared: {', '.join(names)} "
        f"{'was' if len(names) == 1 else 'were'} timed while other work competed for the CPUs (see the "
        "busy-machine finding), so who ranks first by them may be the machine's doing, not the variants'. "
        "Rerun them on a quiet machine."
    )
    figs: dict[str, Any] = {k: f.figures.get(k) for f, k in zip(spoiled, keys, strict=True)}
    figs.update(machine_affected=names)
    return _in_place_of(fs, spoiled, Finding("best", "warning", text, figs, anchors.COMPARISON))


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
    # The finding in a clause, for merging with the other plain ones (see merge_bests): kept only when the
    # sentence says no more than who is best and by how much against the baseline.
    clause = f"the {word.lower()} {metric_label(m.key)} ({figure_text(m.key, bs.mean)}"
    plain = bs.n < 2
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
            clause += f"; the baseline {base.name} has {figure_text(m.key, b.mean)}, {fmt_delta(m, bs.mean, b.mean)}"
            test = family.vs_baseline(best.name)
            if test is not None:
                plain = False
                figs.update(p_vs_baseline=rounded(test.p, 3))
                figs.update(p_adjusted_vs_baseline=rounded(test.p_adjusted, 3))
                verdict = "larger than the noise" if test.significant else "not larger than the noise"
                text += f", {test.p_text}: {verdict}"
    elif base is best:
        text += " (the baseline)"
    # Is the winner distinguishable from the runner-up? The same rule; outside the figure's family the p is
    # unadjusted, which can only say "not distinguishable" when an adjusted one would too.
    test2 = family.pair(best.name, second.name) or compare_groups(
        seed_group(best, m.key), seed_group(second, m.key), m.quantised
    )
    plain = plain and test2 is None
    if test2 is not None and not test2.significant:
        figs.update(p_vs_runner_up=rounded(test2.p, 3))
        text += f"; {second.name} ({figure_text(m.key, ss.mean)}) is not distinguishable from it ({test2.p_text})"
    elif test2 is None and m.timing and study.within_timing_noise(m.key, ss.mean, bs.mean):
        gap = relative_gap(ss.mean, bs.mean) or 0.0
        noise = study.timing_noise_of(m.key) or 0.0
        figs.update(gap_to_runner_up=rounded(gap, 3))
        within = f"the gap to {second.name} ({gap * 100:.1f}%) is within the timing noise (twice ±{noise * 100:.1f}%)"
        text += f"; {within}"
        clause += f"; {within}"  # still one sentence with the other plain winners, its caveat attached
    if m.key.endswith(("to_target", "to_target_s")):
        never = [v.name for v in study.variants if v.done and v.summary(m.key) is None]
        if never:
            plain = False
            figs.update(not_reached=never)
            text += f"; {', '.join(never)} never reached the target"
    if (scored := scored_on_test(m.key, best)) is not None:
        text += f"; {scored[0]}"
        clause += f", {scored[0]}"
        figs[scored[1]] = scored[2]
    detail = clause + ")" if plain else ""
    return Finding("best", "info", text + ".", figs, anchors.COMPARISON, variant=best.name, metric=m.key,
                   detail=detail)  # fmt: skip


def scored_on_test(key: str, variant: VariantView) -> tuple[str, str, float | None] | None:
    """For a choice read on validation (``key`` = ``val_*``): the chosen variant's test figure, as the clause
    that states it, its key and its (rounded) value; None for any other figure or without a test figure."""
    test_key = scored_key(key)
    value = variant.mean(test_key) if test_key is not None else None
    if test_key is None or value is None:
        return None
    return f"scored on test: {metric_label(test_key)} {figure_text(test_key, value)}", test_key, rounded(value)


def selection(study: StudyView) -> list[Finding]:
    """Without a validation split, a study that ranks variants chose them on the test split: say so once, with
    the remedy (told at the end of the verdict)."""
    if study.choice_split != "test" or sum(1 for v in study.variants if v.done) < 2:
        return []
    text = (
        "These choices were made on the test split (the study has no validation split), so the winners' test"
        " figures are optimistic: the choice fits the test split's noise as well as the variants' differences."
        " Set data.val_fraction (e.g. 0.1) to choose on validation and score on test."
    )
    return [Finding("selection", "info", text, {"choice_split": "test"}, anchors.COMPARISON)]


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
    return Finding("best", "warning", text, figs, anchors.COMPARISON, variant=best.name, metric=m.key)


def busy_machine(study: StudyView) -> list[Finding]:
    """The runs timed on a busy machine, and which comparisons that spoils; runs whose few busy epochs could not
    move their times are named as unaffected."""
    busy = [r for v in study.variants for r in v.busy_runs]
    minor = [r for v in study.variants for r in v.done if r.busy_epochs and not r.machine_busy]
    if not busy and not minor:
        return []
    multi = study.repeats > 1

    def who(runs: list[RunView]) -> str:
        """Each variant once: its busy seeds, and what competed in the worst of them."""
        by_variant: dict[str, list[RunView]] = {}
        for r in runs:
            by_variant.setdefault(r.variant, []).append(r)
        parts = []
        for name, rs in by_variant.items():
            seeds = f" (seed{'s' if len(rs) > 1 else ''} {', '.join(str(r.seed) for r in rs)})" if multi else ""
            worst = max(rs, key=lambda r: busy_excess(r.epochs))
            parts.append(f"{name}{seeds}: {worst.busy_text}{' at worst' if len(rs) > 1 else ''}")
        return "; ".join(parts)

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
            f"Other work {'also ' if text else ''}competed in a few epochs of {who(minor)}, adding at most "
            f"{BUSY_EXCESS_SHARE * 100:.0f}% to the training time: those timings stand."
        )
    figs = {
        "runs": [r.run_id for r in busy],
        "variants": sorted({r.variant for r in busy}),
        "minor_runs": [r.run_id for r in minor],
    }
    return [Finding("busy_machine", "warning" if busy else "info", text, figs, anchors.RUNS)]


def tradeoffs(study: StudyView) -> list[Finding]:
    """The quality/cost Pareto fronts (by MACs, by training time) where some variant is dominated; none along a
    factor that cannot change accuracy."""
    if performance_only_study(study):
        return []
    found = (_tradeoff(study, "macs", anchors.PARETO), _tradeoff(study, "train_time_s", anchors.PARETO))
    return [f for f in found if f]


def _tradeoff(study: StudyView, cost_key: str, anchor: str) -> Finding | None:
    q = study.choice_key(study.quality_key)  # the front is a choice: on validation when there is one
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
        return None  # every variant is on the front: a pure trade-off, which the table and the plot show
    text = (
        f"{metric_title(q)} vs {cost_label}: the Pareto front is {items}; "
        f"{', '.join(dominated)} {'is' if len(dominated) == 1 else 'are'} dominated "
        f"(another variant is at least as good for no more {cost_label})."
    )
    if any(v.busy_for(BY_KEY[cost_key]) for v in study.variants):
        return None  # a front drawn from timings a busy machine spoiled is no evidence (the busy finding says so)
    return Finding("tradeoff", "info", text, {"front": front, "dominated": dominated}, anchor)


def progress(study: StudyView) -> list[Finding]:
    """While the study runs: how many runs finished, and that the report shows only those."""
    f = _progress(study)
    return [f] if f else []


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


__all__ = [
    "best",
    "busy_machine",
    "merge_bests",
    "pareto_front",
    "progress",
    "scored_on_test",
    "selection",
    "tradeoffs",
]
