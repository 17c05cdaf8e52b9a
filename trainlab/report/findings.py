"""Findings: plain sentences about a study, each with the figures behind it and a link to its evidence.

Per run: overfitting, underfitting, divergence or failure, data-bound training, low device utilisation.
Per study: the best variant per metric, the accuracy/cost trade-off (Pareto fronts), comparisons with the
baseline when there are repeats, and what the noise allows us to say. Every threshold is a named constant.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from trainlab.measure.stats import ALPHA, TEST_NAME, relative_change, welch_test
from trainlab.report import anchors
from trainlab.report.metrics import BY_KEY, Metric, fmt_delta, fmt_value
from trainlab.report.study import RunView, StudyView, is_number

# ---- thresholds -----------------------------------------------------------------------------------------------
# Overfitting: the test loss must have bottomed out before the last epoch and risen since by at least this
# fraction of its minimum (10%: well above the epoch-to-epoch jitter of test loss on small test sets).
OVERFIT_LOSS_RISE = 0.10
# ... and stayed up: at least this many epochs after the minimum, whose mean test loss is that much above it
# (one bad epoch at the end is noise, not overfitting).
OVERFIT_EPOCHS_AFTER = 2
# Fewer epochs than this tell no trend apart from noise.
MIN_EPOCHS_FOR_TREND = 4
# Underfitting: final train accuracy below this (classification) ...
UNDERFIT_TRAIN_ACC = 0.60
# ... or the train loss fell by less than this fraction from epoch 1 to the last epoch: training barely moved.
UNDERFIT_LOSS_DROP = 0.10
# Underfitting also when the final train loss (training mode: dropout active) exceeds this many times the test
# loss (eval mode): the regularisation costs more than generalising does (e.g. dropout 0.8 on an MLP).
UNDERFIT_TRAIN_OVER_TEST = 1.5
# A train loss ending above this multiple of epoch 1's is exploding even when the loop did not stop the run
# (the loop itself stops at 10^4 x, see train.EXPLODE_FACTOR).
EXPLODING_LOSS_FACTOR = 10.0
# Data-bound: the loop waits for batches during more than this share of training time.
DATA_BOUND_SHARE = 0.30
# Low utilisation: achieved training FLOP/s below this fraction of the device's measured peak (MFU). Well-fed
# large models reach 30-50% on GPUs; below 10% the device mostly waits (model or batch too small, overheads).
LOW_MFU = 0.10

Severity = Literal["problem", "warning", "info"]
SEVERITY_ORDER = {"problem": 0, "warning": 1, "info": 2}
# Order in which kinds are shown: the answer first, then what went wrong, then what limits the conclusions.
KIND_ORDER = (
    "progress",
    "best",
    "tradeoff",
    "diverged",
    "failed",
    "overfitting",
    "underfitting",
    "fit",
    "data_bound",
    "low_utilisation",
    "significance",
    "skipped",
    "noise",
)

# Metrics the "best variant" findings cover (those the study has).
BEST_METRICS = ("test_acc", "test_r2", "test_loss", "time_to_target_s", "train_time_s", "latency_p50_ms")


@dataclass
class Finding:
    """One plain-language finding: what kind, how serious, the sentence, its figures and where the evidence is."""

    kind: str
    severity: Severity
    text: str
    figures: dict[str, Any] = field(default_factory=dict)
    anchor: str = anchors.COMPARISON  # id of the table, plot or run block in report.html
    variant: str | None = None
    run_id: str | None = None


def _f(key: str, value: float | None) -> str:
    """A figure in its metric's display unit, with the unit (e.g. ``95.3%``, ``1.24 s``)."""
    m = BY_KEY.get(key)
    text = fmt_value(m, value)
    if m is None or not m.unit or value is None:
        return text
    return f"{text}{m.unit}" if m.unit == "%" else f"{text} {m.unit}"


def _label(key: str) -> str:
    m = BY_KEY.get(key)
    return m.label.lower() if m else key


def _pct2(x: float) -> str:
    """A fraction as a percentage with 2 significant digits (0.00008 -> '0.008%')."""
    return f"{float(f'{x * 100:.2g}'):g}%"


def _r(x: float, digits: int = 4) -> float:
    """Round a figure for the figures dict (the text shows fewer digits)."""
    return float(f"{x:.{digits}g}")


# ------------------------------------------------------------------------------------------------------
# Per run


def run_findings(run: RunView, quality_key: str = "test_acc") -> list[Finding]:
    """Findings about one run from its status, its epochs and its figures."""
    out: list[Finding] = []
    where = anchors.run(run.run_id)
    base = {"variant": run.variant, "run_id": run.run_id}
    if run.status == "diverged":
        figs: dict[str, Any] = {"epochs_completed": sum(1 for e in run.epochs if is_number(e.get("test_loss")))}
        losses = [e.get("train_loss") for e in run.epochs]
        if losses:
            figs["last_train_loss"] = losses[-1]  # None when it was NaN/inf (JSON has no NaN)
        lr = run.config.get("train", {}).get("lr")
        if lr is not None:
            figs["lr"] = lr
        reason = run.error or "the loss became NaN or exploded"
        text = f"{run.variant} diverged: {reason}."
        if lr is not None:
            text += f" Learning rate {lr:g}: a smaller one usually stabilises training."
        out.append(Finding("diverged", "problem", text, figs, where, **base))
        return out
    if run.status == "failed":
        out.append(
            Finding(
                "failed", "problem", f"{run.variant} failed: {run.error or 'no reason recorded'}.", {}, where, **base
            )
        )
        return out
    if run.status == "skipped":
        out.append(Finding("skipped", "info", f"{run.variant} was skipped: {run.error or 'no reason recorded'}.",
                           {}, where, **base))  # fmt: skip
        return out

    epochs = [e for e in run.epochs if e.get("epoch") is not None]
    explode = _exploding(run.variant, epochs)
    if explode:
        out.append(Finding(**{**explode.__dict__, "anchor": anchors.CURVES, **base}))
    over = _overfitting(run.variant, epochs)
    if over:
        out.append(Finding(**{**over.__dict__, **base}))
    if run.status == "done":
        under = _underfitting(run, epochs)
        if under:
            out.append(Finding(**{**under.__dict__, **base}))
        if not over and not under:
            fit = _good_fit(run.variant, epochs)
            if fit:
                out.append(Finding(**{**fit.__dict__, **base}))
        data = _data_bound(run)
        if data:
            out.append(Finding(**{**data.__dict__, **base}))
        util = _low_utilisation(run)
        if util:
            out.append(Finding(**{**util.__dict__, **base}))
    return out


def _exploding(variant: str, epochs: list[dict[str, Any]]) -> Finding | None:
    losses = [e.get("train_loss") for e in epochs]
    if len(losses) < 2:
        return None
    bad = next((e["epoch"] for e, v in zip(epochs, losses) if not is_number(v)), None)
    first = losses[0]
    if bad is not None:
        return Finding("diverged", "problem", f"{variant}: the training loss is not finite from epoch {bad} on.",
                       {"epoch": bad}, anchors.CURVES)  # fmt: skip
    if is_number(first) and first > 0 and losses[-1] > EXPLODING_LOSS_FACTOR * first:
        return Finding(
            "diverged",
            "problem",
            f"{variant}: the training loss grew from {first:.3g} (epoch 1) to {losses[-1]:.3g} (epoch "
            f"{epochs[-1]['epoch']}), more than {EXPLODING_LOSS_FACTOR:g}× — training is exploding.",
            {"first_train_loss": _r(first), "last_train_loss": _r(losses[-1])},
            anchors.CURVES,
        )
    return None


def _overfitting(variant: str, epochs: list[dict[str, Any]]) -> Finding | None:
    """Test loss lowest before the end and up since (while train loss kept falling); the train/test gap after."""
    rows = [e for e in epochs if is_number(e.get("test_loss"))]
    if len(rows) < MIN_EPOCHS_FOR_TREND:
        return None
    best_i = min(range(len(rows)), key=lambda i: rows[i]["test_loss"])
    best, last = rows[best_i], rows[-1]
    after = rows[best_i + 1 :]
    if len(after) < OVERFIT_EPOCHS_AFTER or best["test_loss"] <= 0:
        return None
    rise_mean = sum(e["test_loss"] for e in after) / len(after) / best["test_loss"] - 1
    rise = last["test_loss"] / best["test_loss"] - 1
    if rise_mean < OVERFIT_LOSS_RISE or rise < OVERFIT_LOSS_RISE:
        return None
    tl_best, tl_last = best.get("train_loss"), last.get("train_loss")
    if is_number(tl_best) and is_number(tl_last) and tl_last > tl_best:
        return None  # train loss rose too: instability, not overfitting
    figs: dict[str, Any] = {
        "best_epoch": best["epoch"],
        "min_test_loss": _r(best["test_loss"]),
        "last_epoch": last["epoch"],
        "last_test_loss": _r(last["test_loss"]),
        "test_loss_rise": _r(rise, 3),
    }
    text = (
        f"{variant} overfits: its test loss is lowest at epoch {best['epoch']} ({best['test_loss']:.3g}) and "
        f"{rise * 100:.0f}% higher by epoch {last['epoch']} ({last['test_loss']:.3g})"
    )
    if is_number(tl_best) and is_number(tl_last):
        text += f", while the train loss kept falling ({tl_best:.3g} → {tl_last:.3g})"
        figs["last_train_loss"] = _r(tl_last)
    gaps = [
        e["train_acc"] - e["test_acc"]
        for e in rows[best_i:]
        if is_number(e.get("train_acc")) and is_number(e.get("test_acc"))
    ]
    if gaps and (gap := sum(gaps) / len(gaps)) > 0:
        figs["acc_gap_after_best_pp"] = _r(gap * 100, 3)
        text += (
            f"; from epoch {best['epoch']} on, train accuracy exceeds test accuracy by {gap * 100:.1f} pp on average"
        )
    text += f". Stopping near epoch {best['epoch']} or more regularisation would help."
    return Finding("overfitting", "warning", text, figs, anchors.CURVES)


def _good_fit(variant: str, epochs: list[dict[str, Any]]) -> Finding | None:
    """Neither over- nor underfitting: say so, with where the test loss is lowest and the final accuracy gap,
    so a study about regularisation has a verdict for every variant, not only for the problem cases."""
    rows = [e for e in epochs if is_number(e.get("test_loss"))]
    if len(rows) < MIN_EPOCHS_FOR_TREND:
        return None
    best_i = min(range(len(rows)), key=lambda i: rows[i]["test_loss"])
    best, last = rows[best_i], rows[-1]
    figs: dict[str, Any] = {"best_epoch": best["epoch"], "min_test_loss": _r(best["test_loss"]),
                            "last_epoch": last["epoch"], "last_test_loss": _r(last["test_loss"])}  # fmt: skip
    if best is last:
        where = f"its test loss is still lowest at the last epoch ({last['epoch']}, {last['test_loss']:.3g})"
    else:
        rise = last["test_loss"] / best["test_loss"] - 1 if best["test_loss"] > 0 else 0.0
        figs["test_loss_rise"] = _r(rise, 3)
        where = (
            f"its test loss is lowest at epoch {best['epoch']} ({best['test_loss']:.3g}) and only {rise * 100:.0f}% "
            f"above that at epoch {last['epoch']}"
        )
    text = f"{variant} shows no overfitting within {last['epoch']} epochs: {where}"
    if is_number(last.get("train_acc")) and is_number(last.get("test_acc")):
        gap = (last["train_acc"] - last["test_acc"]) * 100
        figs["final_acc_gap_pp"] = _r(gap, 3)
        text += f"; final train − test accuracy {gap:+.2f} pp"
    return Finding("fit", "info", text + ".", figs, anchors.CURVES)


def _underfitting(run: RunView, epochs: list[dict[str, Any]]) -> Finding | None:
    """Low final train accuracy, or a train loss that barely fell."""
    acc = run.results.get("train_acc")
    losses = [e["train_loss"] for e in epochs if is_number(e.get("train_loss"))]
    figs: dict[str, Any] = {}
    reasons = []
    if is_number(acc) and acc < UNDERFIT_TRAIN_ACC:
        figs["train_acc"] = _r(acc)
        reasons.append(f"its final train accuracy is {acc * 100:.1f}% (below {UNDERFIT_TRAIN_ACC * 100:.0f}%)")
    if len(losses) >= 2 and losses[0] > 0:
        drop = (losses[0] - losses[-1]) / losses[0]
        if drop < UNDERFIT_LOSS_DROP:
            figs.update(first_train_loss=_r(losses[0]), last_train_loss=_r(losses[-1]), loss_drop=_r(drop, 3))
            reasons.append(
                f"its train loss fell only {drop * 100:.0f}% ({losses[0]:.3g} → {losses[-1]:.3g}) over "
                f"{len(losses)} epochs"
            )
    last = epochs[-1] if epochs else {}
    tr, te = last.get("train_loss"), last.get("test_loss")
    if is_number(tr) and is_number(te) and te > 0 and tr > UNDERFIT_TRAIN_OVER_TEST * te:
        # Training-mode loss well above the eval-mode test loss: regularisation (dropout, noise) holds the model
        # back more than unseen data does — the classic sign of too much of it.
        figs.update(final_train_loss=_r(tr), final_test_loss=_r(te), train_over_test=_r(tr / te, 3))
        reasons.append(f"its final train loss ({tr:.3g}, training mode) is {tr / te:.1f}x its test loss ({te:.3g})")
    if not reasons:
        return None
    text = (
        f"{run.variant} underfits: " + " and ".join(reasons) + ". More capacity, more epochs, less "
        "regularisation or a better learning rate would help."
    )
    return Finding("underfitting", "warning", text, figs, anchors.CURVES)


def _data_bound(run: RunView) -> Finding | None:
    share = run.value("data_share")
    data, total = run.value("data_time_s"), run.value("train_time_s")
    if share is None or share <= DATA_BOUND_SHARE or data is None or total is None:
        return None
    text = (
        f"{run.variant} is data-bound: it waits for batches {share * 100:.0f}% of its training time "
        f"({data:.3g} s of {total:.3g} s; threshold {DATA_BOUND_SHARE * 100:.0f}%). A resident dataset or more "
        "DataLoader workers would shorten its epochs."
    )
    figs = {"data_share": _r(share, 3), "data_time_s": _r(data), "train_time_s": _r(total)}
    return Finding("data_bound", "warning", text, figs, anchors.TIME_SPLIT)


def _low_utilisation(run: RunView) -> Finding | None:
    mfu = run.value("mfu")
    if mfu is None or mfu >= LOW_MFU:
        return None
    figs: dict[str, Any] = {"mfu": _r(mfu, 3)}
    achieved, peak = run.value("train_flops_per_s"), run.value("peak_flops")
    detail = ""
    if achieved is not None and peak is not None:
        figs.update(train_flops_per_s=_r(achieved), peak_flops=_r(peak))
        detail = f" ({achieved / 1e9:.3g} of {peak / 1e9:.3g} GFLOP/s)"
    device = run.results.get("device") or "the device"
    text = (
        f"{run.variant} uses {_pct2(mfu)} of {device}'s measured peak FLOP/s{detail}; below "
        f"{LOW_MFU * 100:.0f}% the device mostly waits: the model or batch is too small for it, or overheads dominate."
    )
    return Finding("low_utilisation", "warning", text, figs, anchors.COMPARISON)


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
    text = f"{word} {_label(m.key)}: {best.name}, {_f(m.key, bs.mean)}"
    if bs.half_width is not None:
        ci = f" ± {_f(m.key, bs.half_width)}" if bs.half_width > 0 else ""
        text += f"{ci} (mean{' ± 95% CI' if ci else ''} of {bs.n} seeds)"
    figs: dict[str, Any] = {m.key: _r(bs.mean)}
    if base is not None and base is not best:
        b = base.summary(m.key)
        if b is not None:
            figs[f"baseline_{m.key}"] = _r(b.mean)
            text += f"; the baseline {base.name} has {_f(m.key, b.mean)} ({fmt_delta(m, bs.mean, b.mean)})"
            test = study.compare(best, m.key)
            if test is not None:
                figs["p_vs_baseline"] = _r(test.p, 3)
                verdict = "larger than the noise" if test.significant else "not larger than the noise"
                text += f", Welch p = {test.p:.2g}: {verdict}"
    elif base is best:
        text += " (the baseline)"
    # Is the winner distinguishable from the runner-up?
    test2 = welch_test(best.values(m.key), second.values(m.key))
    if test2 is not None and not test2.significant:
        figs["p_vs_runner_up"] = _r(test2.p, 3)
        text += f"; {second.name} ({_f(m.key, ss.mean)}) is not distinguishable from it (p = {test2.p:.2g})"
    elif test2 is None and m.timing and study.timing_noise is not None:
        gap = abs(relative_change(ss.mean, bs.mean) or 0.0)
        if gap < study.timing_noise.cv_median:
            figs["gap_to_runner_up"] = _r(gap, 3)
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
    items = ", ".join(f"{n} ({_f(q, by_name[n][1])}, {_f(cost_key, by_name[n][0])})" for n in front)
    if not dominated:
        text = f"{_label(q).capitalize()} vs {cost_label}: every variant is on the Pareto front — {items}."
    else:
        text = (
            f"{_label(q).capitalize()} vs {cost_label}: the Pareto front is {items}; "
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
            parts.append(f"{_label(key)} {fmt_delta(m, v.mean(key), base.mean(key))} (p = {test.p:.2g}, {verdict})")
            figs[f"p_{key}"] = _r(test.p, 3)
            figs[f"diff_{key}"] = _r(test.diff)
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
            figs.update(timing_cv_median=_r(noise.cv_median, 3), timing_cv_max=_r(noise.cv_max, 3), runs=noise.runs)
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
    parts = ", ".join(f"{f.variant} {_pct2(f.figures['mfu'])}" for f in low)
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
