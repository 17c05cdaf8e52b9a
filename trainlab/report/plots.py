"""The report's figures, drawn with matplotlib's Agg canvas (no display, no pyplot global state).

Each plot is returned as a :class:`Plot` holding PNG bytes, an id the page links to, a caption and alt text
that says what the figure shows in words (for screen readers and for readers of the Markdown file). Colours
are the Okabe-Ito palette (distinguishable with the common colour-vision deficiencies); beyond eight variants
markers tell lines apart as well. Every variant keeps its colour in every figure. A tuned study (``[tune]``) adds
two, shown in its Tuning section: the tuning curve and the sensitivity to each numeric tuned key.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial

from matplotlib.lines import Line2D

from trainlab.measure.format import fmt_value
from trainlab.measure.metrics import BY_KEY
from trainlab.measure.stats import spread_bounds
from trainlab.report import anchors
from trainlab.report.confusion_plot import confusion_grid
from trainlab.report.finding import DATA_BOUND_SHARE, metric_label
from trainlab.report.findings import pareto_front
from trainlab.report.lanes import side_by_side
from trainlab.report.plotting import (
    LOG_SPAN,
    Plot,
    ReportPlots,
    colour,
    colour_index,
    epoch_means,
    epoch_split,
    legend_below,
    log_if_wide,
    marker,
    new_figure,
    numeric_factors,
    set_margins,
    style_axes,
    to_png,
    zoom_floor,
)
from trainlab.report.study import StudyView, VariantView, dotted_get, is_number
from trainlab.report.tables import ClassTable
from trainlab.report.tuning import SENSITIVITY_ANCHOR, TUNING_CURVE_ANCHOR, edge_bands, tuning
from trainlab.tune.config import Range

# ------------------------------------------------------------------------------------------------------
# Loss and accuracy per epoch


def curves(study: StudyView) -> Plot | None:
    """Loss (left) and accuracy or R² (right) per epoch; train dashed, test solid, validation dash-dotted;
    target epochs starred."""
    variants = [v for v in study.variants if any(r.epochs for r in v.runs)]
    if not variants:
        return None
    regression = study.task == "regression"
    qual, qual_label = ("r2", "R²") if regression else ("acc", "accuracy (%)")
    scale = 1.0 if regression else 100.0
    fig = new_figure(10.5, 4.4 + 0.27 * (math.ceil((len(variants) + 3) / 6) - 1))
    ax_loss, ax_acc = fig.subplots(1, 2)
    losses: list[float] = []
    qual_points: list[tuple[int, float]] = []  # (epoch, lowest value over seeds) of every quality curve
    targets_drawn: set[float] = set()
    starred = []
    idx = {v.name: i for i, v in enumerate(study.variants)}
    with_val = any(is_number(e.val_loss) for v in variants for r in v.runs for e in r.epochs)
    splits = (("train", "--"), ("test", "-"), *((("val", "-."),) if with_val else ()))
    for v in variants:
        i = idx[v.name]
        c, mk = colour(i), marker(i)
        many = len(v.runs) > 1
        for split, style in splits:
            xs, ys, lo, hi = epoch_means(v, f"{split}_loss")
            if xs:
                ax_loss.plot(xs, ys, style, color=c, marker=mk, markersize=3, linewidth=1.6)
                losses += ys
                if many and split == "test":
                    ax_loss.fill_between(xs, lo, hi, color=c, alpha=0.15, linewidth=0)
            qkey = f"{split}_{qual}"
            if regression and split == "train":
                continue  # no R² of the training batches
            xs, ys, lo, hi = epoch_means(v, qkey)
            qual_points += [(x, y * scale) for x, y in zip(xs, lo)]
            if xs:
                ax_acc.plot(xs, [y * scale for y in ys], style, color=c, marker=mk, markersize=3, linewidth=1.6)
                if many and split == "test":
                    ax_acc.fill_between(xs, [y * scale for y in lo], [y * scale for y in hi], color=c, alpha=0.15)
        if regression:
            continue
        # Target markers: the epoch each run first reached its train (and test) accuracy target.
        for r in v.runs:
            for ekey, tkey, akey in (
                ("epochs_to_target", "train.target_accuracy", f"{r.results.get('target_split', 'train')}_acc"),
                ("test_epochs_to_target", "train.target_test_accuracy", "test_acc"),
            ):
                ep, target = r.results.get(ekey), dotted_get(r.config, tkey)
                if not is_number(target):
                    continue
                if target not in targets_drawn:
                    ax_acc.axhline(target * 100, color="#777777", linestyle=":", linewidth=1)
                    targets_drawn.add(target)
                row = next((e for e in r.epochs if e.epoch == ep), None)
                if row is not None and is_number(acc := getattr(row, akey)):
                    ax_acc.plot([ep], [acc * 100], marker="*", markersize=14, color=c, markeredgecolor="black",
                                markeredgewidth=0.8, linestyle="none", zorder=5)  # fmt: skip
                    starred.append(f"{v.name} at epoch {ep}")
    ax_loss.set_title("Loss per epoch")
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel(f"loss ({'MSE' if study.loss_name == 'mse' else 'cross-entropy, nats'})")
    log_if_wide(ax_loss, losses)
    zoom = zoom_floor(qual_points, [t * 100 for t in targets_drawn]) if not regression else None
    if zoom is not None:
        ax_acc.set_ylim(bottom=zoom, top=min(ax_acc.get_ylim()[1], 101.0))
    ax_acc.set_title("Test R² per epoch" if regression else "Accuracy per epoch")
    ax_acc.set_xlabel("epoch")
    ax_acc.set_ylabel(qual_label)
    for ax in (ax_loss, ax_acc):
        style_axes(ax)
        ax.xaxis.get_major_locator().set_params(integer=True)
    handles = [Line2D([], [], color=colour(idx[v.name]), marker=marker(idx[v.name]), label=v.name) for v in variants]
    handles += [
        Line2D([], [], color="#444444", linestyle="--", label="train"),
        Line2D([], [], color="#444444", linestyle="-", label="test"),
    ]
    if with_val:
        handles.append(Line2D([], [], color="#444444", linestyle="-.", label="validation"))
    if targets_drawn:
        handles.append(
            Line2D([], [], color="#777777", marker="*", markersize=10, linestyle=":", label="target / epoch reached")
        )
    rows = legend_below(fig, handles, ncol=10)
    set_margins(fig, legend_rows=rows)
    finals = []
    for v in variants:
        xs, ys, _lo, _hi = epoch_means(v, f"test_{qual}")
        if ys:
            finals.append(f"{v.name} {ys[-1] * scale:.1f}{'' if regression else '%'} at epoch {xs[-1]}")
    alt = (
        f"Two line charts per epoch for {len(variants)} variants ({', '.join(v.name for v in variants)}): "
        f"left the train (dashed), test (solid){' and validation (dash-dotted)' if with_val else ''} loss, right"
        f" the same splits' "
        f"{'R²' if regression else 'accuracy'}. Last test {'R²' if regression else 'accuracy'}: "
        + ("; ".join(finals) or "none yet")
        + "."
        + (f" Stars mark the epoch each run reached its accuracy target: {'; '.join(starred)}." if starred else "")
    )
    caption = "Train loss/accuracy are running means over each epoch's batches (training mode); test figures are "
    caption += "computed after each epoch in eval mode"
    caption += (
        ", as are the validation figures (dash-dotted), which choose the best epoch and variant. " if with_val else ". "
    )
    if any(len(v.runs) > 1 for v in variants):
        caption += "Lines are means over seeds; the shaded band spans the seeds' test values. "
    if targets_drawn:
        caption += "Dotted lines: accuracy targets; stars: the first epoch a run reached its target. "
    if zoom is not None:
        caption += (
            f"The accuracy axis starts at {zoom:g}% to show the later epochs; lower early values (epoch 1) lie "
            "below it — see the per-epoch tables."
        )
    return Plot(anchors.CURVES, "curves", "Loss and accuracy per epoch", caption.strip(), alt, to_png(fig))


# ------------------------------------------------------------------------------------------------------
# Data vs compute time per epoch


def time_split(study: StudyView) -> Plot | None:
    """Horizontal stacked bars: data, compute and other (loop overhead) seconds per epoch, per variant."""
    items = [(v, s) for v in study.variants if (s := epoch_split(v)) is not None]
    if not items:
        return None
    fig = new_figure(9.0, 1.6 + 0.38 * len(items))
    ax = fig.subplots()
    names = [v.name for v, _s in items][::-1]
    data = [s[0] for _v, s in items][::-1]
    comp = [s[1] for _v, s in items][::-1]
    other = [s[2] for _v, s in items][::-1]
    ax.barh(names, data, color="#D55E00", label="data (waiting for the batch)")
    ax.barh(names, comp, left=data, color="#0072B2", label="compute (forward, backward, step)")
    ax.barh(names, other, left=[a + b for a, b in zip(data, comp)], color="#BBBBBB", hatch="//", label="other")
    ax.set_xlabel("seconds per epoch (training phase)")
    ax.set_title("Time per epoch: data vs compute")
    style_axes(ax)
    handles, labels = ax.get_legend_handles_labels()
    rows = legend_below(fig, handles, labels, ncol=3)
    longest = max(len(n) for n in names)
    set_margins(fig, left=min(0.3 + 0.075 * longest, 3.5), legend_rows=rows, bottom=0.65)
    which = {s[3] for _v, s in items}
    parts = [f"{v.name}: data {s[0]:.3g} s, compute {s[1]:.3g} s" for v, s in items]
    alt = "Stacked horizontal bars of seconds per epoch for each variant. " + "; ".join(parts) + "."
    caption = (
        f"Mean over {' and '.join(sorted(which))} of every run of the variant (epoch 1 includes warm-up and is left "
        "out when there are more). Data: waiting for the next batch; compute: batch in hand to optimizer step done; "
        "other: the rest of the epoch's wall time (loop overhead)."
    )
    return Plot(anchors.TIME_SPLIT, "time_split", "Data vs compute time per epoch", caption, alt, to_png(fig))


# ------------------------------------------------------------------------------------------------------
# Swept numeric factor -> metric


def factor_plot(study: StudyView, key: str) -> Plot | None:
    """Metric against the swept value of ``key`` (lines grouped by the other swept keys); error bars = 95% CI."""
    metrics = [study.quality_key, "test_loss", "epoch_time_mean_s"]
    if any((v.mean("data_share") or 0) > DATA_BOUND_SHARE / 2 for v in study.variants):
        metrics.append("data_share")  # only where data loading is a real part of the time
    metrics = [m for m in metrics if any(v.values(m) for v in study.variants)]
    if not metrics:
        return None
    others = [k for k in study.swept_keys if k != key]
    groups: dict[str, list[VariantView]] = {}
    for v in study.variants:
        if not is_number(v.factors.get(key)) or not v.done:
            continue
        if "/" in v.name:  # an explicit variant crossed with the sweep: "bn/lr=0.1" -> line "bn"
            label = v.name.split("/")[0]
        else:
            label = ", ".join(f"{k.split('.')[-1]}={v.factors.get(k)}" for k in others) or "all"
        groups.setdefault(label, []).append(v)
    if not any(len({float(v.factors[key]) for v in vs}) >= 2 for vs in groups.values()):
        return None  # no line: every value of the factor comes with different other settings
    fig = new_figure(3.4 * len(metrics), 3.6 + 0.27 * math.ceil(len(groups) / 4) * (len(groups) > 1))
    axes = fig.subplots(1, len(metrics), squeeze=False)[0]
    xs_all: list[float] = []
    alt_parts = []
    for ax, mkey in zip(axes, metrics):
        m = BY_KEY[mkey]
        for gi, (label, vs) in enumerate(groups.items()):
            pts = sorted(((float(v.factors[key]), s, spread_bounds(v.values(mkey)) or (s.mean, s.mean)) for v in vs
                          if (s := v.summary(mkey)) is not None), key=lambda p: p[0])  # fmt: skip
            if not pts:
                continue
            xs, ys = [p[0] for p in pts], [p[1].mean * m.scale for p in pts]
            err = [[(p[1].mean - p[2][0]) * m.scale for p in pts], [(p[2][1] - p[1].mean) * m.scale for p in pts]]
            ax.errorbar(xs, ys, yerr=err if any(map(any, err)) else None, color=colour(gi),  # CI from 3, range at 2
                        marker=marker(gi) if gi < 8 else "s", capsize=3, linewidth=1.6, label=label)  # fmt: skip
            xs_all += xs
            if gi == 0:
                alt_parts.append(f"{m.label}: " + ", ".join(f"{x:g} → {fmt_value(m, c.mean)}{m.unit}"
                                                            for x, c, _ in pts))  # fmt: skip
        ax.set_title(m.label)
        ax.set_xlabel(key)
        ax.set_ylabel(m.header)
        style_axes(ax)
        log_if_wide(ax, xs_all, axis="x")
    rows = 0
    if len(groups) > 1:
        rows = legend_below(fig, *axes[0].get_legend_handles_labels(), ncol=4)
    set_margins(fig, left=0.8, legend_rows=rows, wspace_in=0.9)
    alt = f"Line charts of {', '.join(BY_KEY[m].label for m in metrics)} against {key}. " + "; ".join(alt_parts) + "."
    caption = "Each point is a variant's mean over its seeds (error bars: 95% CI from 3 seeds, the range with 2)."
    if len(groups) > 1:
        caption += " One line per combination of the other swept keys."
    pid = f"{anchors.FACTORS}-{anchors.slug(key)}"
    return Plot(pid, f"factor_{anchors.slug(key)}", f"{key} → metrics", caption, alt, to_png(fig))


# ------------------------------------------------------------------------------------------------------
# Accuracy vs cost with the Pareto front


def pareto(study: StudyView) -> Plot | None:
    """Quality vs MACs and vs training time; the Pareto front joined and its points filled. Quality is read on
    validation when the study has a validation split: the front is a choice (as the trade-off finding's)."""
    q = study.choice_key(study.quality_key)
    qm = BY_KEY[q]
    panels = []
    for cost in ("macs", "train_time_s"):
        pts = [(v, v.mean(cost), v.mean(q)) for v in study.variants]
        pts = [(v, c, a) for v, c, a in pts if c is not None and a is not None]
        if len(pts) >= 2:
            panels.append((cost, pts))
    if not panels:
        return None
    idx = {v.name: i for i, v in enumerate(study.variants)}
    fig = new_figure(5.2 * len(panels), 4.4)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    alt_parts = []
    for ax, (cost, pts) in zip(axes, panels):
        cm = BY_KEY[cost]
        front = pareto_front([(v.name, c, a) for v, c, a in pts])
        costs = [c for _v, c, _a in pts]
        log_x = min(costs) > 0 and max(costs) / min(costs) > LOG_SPAN
        pos = [math.log(c) if log_x else c for c in costs]
        right = min(pos) + 0.7 * (max(pos) - min(pos))  # labels of points beyond this go to the left of the point
        for (v, c, a), x in zip(pts, pos):
            on = v.name in front
            i = idx[v.name]
            ax.scatter([c], [a * qm.scale], s=70, marker=marker(i) if i >= 8 else "o", zorder=3,
                       facecolors=colour(i) if on else "white", edgecolors=colour(i), linewidths=1.8)  # fmt: skip
            left = x > right and max(pos) > min(pos)
            ax.annotate(v.name, (c, a * qm.scale), textcoords="offset points", xytext=(-6 if left else 6, 5),
                        ha="right" if left else "left", fontsize=8)  # fmt: skip
        fpts = sorted((c, a * qm.scale) for v, c, a in pts if v.name in front)
        if len(fpts) > 1:
            ax.step([p[0] for p in fpts], [p[1] for p in fpts], where="post", color="#555555", linewidth=1,
                    linestyle="--", zorder=2)  # fmt: skip
        log_if_wide(ax, [c for _v, c, _a in pts], axis="x")
        ax.set_xlabel(cm.header if cm.unit else f"{cm.label} (forward, batch 1)")
        ax.set_ylabel(qm.header)
        ax.set_title(f"{qm.label} vs {cm.label}")
        style_axes(ax)
        ax.margins(x=0.15, y=0.12)
        alt_parts.append(f"{qm.label} vs {cm.label}: Pareto front {', '.join(front)}")
    handles = [
        Line2D([], [], marker="o", color="#555555", markerfacecolor="#555555", linestyle="--", label="Pareto front"),
        Line2D([], [], marker="o", color="#555555", markerfacecolor="white", linestyle="none", label="dominated"),
    ]
    rows = legend_below(fig, handles, ncol=2)
    set_margins(fig, left=0.8, legend_rows=rows, wspace_in=0.9)
    alt = "Scatter plots, one point per variant. " + "; ".join(alt_parts) + "."
    caption = (
        "Filled points are on the Pareto front (no other variant is at least as accurate for no more cost); "
        "hollow points are dominated. Means over seeds."
    )
    return Plot(anchors.PARETO, "pareto", f"{qm.label} vs cost", caption, alt, to_png(fig))


# ------------------------------------------------------------------------------------------------------
# A tuned study: the tuning curve and the sensitivity to each tuned value


def tuning_curve(study: StudyView) -> Plot | None:
    """The best validation figure so far against the trial number, one line per variant; each trial's own
    figure a faint point (only for a tuned study)."""
    t = tuning(study)
    lines = [v for v in t.variants if v.scored] if t is not None else []
    if t is None or not lines:
        return None
    # The study's variants first (their colours in every figure), then any with trials only (no runs).
    m, idx = BY_KEY[t.metric], colour_index([v.name for v in (*study.variants, *t.variants)])
    label = metric_label(t.metric)
    fig = new_figure(7.5, 4.0 + 0.27 * (math.ceil(len(lines) / 6) - 1))
    ax = fig.subplots()
    alt_parts = []
    for v in lines:
        c, (xs, ys), best = colour(idx[v.name]), zip(*v.scored), v.running_best(t.higher_is_better)
        ax.step(xs, [b * m.scale for b in best], where="post", color=c, linewidth=1.8, label=v.name)
        ax.scatter(xs, [y * m.scale for y in ys], s=22, color=c, alpha=0.45, zorder=3)
        at = xs[best.index(best[-1])]
        alt_parts.append(f"{v.name} reached {fmt_value(m, best[-1])}{m.unit} at trial {at} of {v.budget}")
    ax.set(xlabel="trial", ylabel=m.header, title=f"Best {label} so far, by trial",
           xlim=(0.5, t.config.trials + 0.5))  # fmt: skip
    ax.xaxis.get_major_locator().set_params(integer=True)
    style_axes(ax)
    set_margins(fig, left=0.8, legend_rows=legend_below(fig, *ax.get_legend_handles_labels(), ncol=6))
    alt = f"Step lines of the best {label} so far against the trial number: " + "; ".join(alt_parts) + "."
    caption = (
        f"Each line is the best {label} (validation split) over a variant's trials so far, in trial order; the"
        " points are the trials' own figures (a failed, diverged or pruned trial has none). A line still rising at"
        " the last trial suggests that a larger budget would find a better setting."
    )
    return Plot(TUNING_CURVE_ANCHOR, "tuning_curve", "Tuning curve", caption, alt, to_png(fig))


def sensitivity(study: StudyView) -> Plot | None:
    """Each trial's validation figure against its value of each numeric tuned key (one panel per key, log axis
    for a log range), one series per variant, its best trial starred (only for a tuned study)."""
    t = tuning(study)
    keys = t.numeric_keys if t is not None else []
    if t is None or not keys or not any(v.scored for v in t.variants):
        return None
    m, idx = BY_KEY[t.metric], colour_index([v.name for v in (*study.variants, *t.variants)])
    label = metric_label(t.metric)
    fig = new_figure(max(4.4 * len(keys), 7.5), 4.0 + 0.27 * (math.ceil(len(t.variants) / 6) - 1))
    axes = fig.subplots(1, len(keys), squeeze=False)[0]
    alt_parts = []
    for ax, key in zip(axes, keys):
        space = t.config.params[key]
        for v in t.variants:
            if not (pts := v.along(key)):
                continue
            c = colour(idx[v.name])
            # Joined by a line only along the one tuned key: with several, the other keys vary between points.
            ax.plot([x for x, _y in pts], [y * m.scale for _x, y in pts], marker="o", markersize=4, color=c,
                    linewidth=1.2 if len(keys) == 1 else 0, alpha=0.85)  # fmt: skip
            if v.best is not None and is_number(bx := v.best.settings.get(key)):
                ax.plot([bx], [v.best.value * m.scale], marker="*", markersize=13, color=c, markeredgecolor="black",
                        markeredgewidth=0.7, linestyle="none", zorder=5)  # fmt: skip
                alt_parts.append(f"{v.name} best {fmt_value(m, v.best.value)}{m.unit} at {key} = {bx:.3g}")
        if isinstance(space, Range):
            if space.log:
                ax.set_xscale("log")
            for a, b in edge_bands(space):  # where a best value lies at an edge (the warning's zones)
                ax.axvspan(a, b, color="#999999", alpha=0.15, linewidth=0)
            ax.set_xlim(space.low, space.high)
        else:
            log_if_wide(ax, [float(x) for x in space], axis="x")
        ax.set(xlabel=key, ylabel=m.header, title=f"{m.label} vs {key}")
        style_axes(ax)
    handles = [Line2D([], [], color=colour(idx[v.name]), marker="o", label=v.name) for v in t.variants]
    handles.append(Line2D([], [], color="#444444", marker="*", markersize=10, linestyle="none", label="best trial"))
    set_margins(fig, left=0.8, legend_rows=legend_below(fig, handles, ncol=8), wspace_in=0.9)
    alt = f"{m.label} of every trial against {', '.join(keys)}: " + "; ".join(alt_parts) + "."
    caption = (
        f"Each point is one trial's {label} on the validation split (a failed, diverged or pruned trial has none); the"
        " star is the variant's best trial, whose settings its runs used. The shaded bands are the outer tenth of"
        " each range (in log space for a log range): a best value there may be cut off by the range."
    )
    if len(keys) > 1:
        caption += " One panel per numeric tuned key; the other tuned keys vary between the points too."
    return Plot(SENSITIVITY_ANCHOR, "sensitivity", "Sensitivity to the tuned settings", caption, alt, to_png(fig))


def all_plots(study: StudyView, class_tables: list[ClassTable], lanes: int | None = None) -> ReportPlots:
    """Every figure the study supports, drawn side by side in ``lanes`` processes (default: one per usable CPU;
    1 draws them one after another here)."""
    keys = numeric_factors(study)
    # Heaviest first (lane i % lanes): the confusion grid draws a panel per variant, the Pareto plot two panels.
    tasks: list[Callable[[], Plot | None]] = [
        partial(confusion_grid, class_tables),
        partial(pareto, study),
        partial(sensitivity, study),  # a panel per numeric tuned key; None for an untuned study
        *(partial(factor_plot, study, key) for key in keys),
        partial(curves, study),
        partial(time_split, study),
        partial(tuning_curve, study),
    ]
    conf, par, sens, *rest = side_by_side(tasks, lanes)
    factors, (cur, split, tcurve) = rest[: len(keys)], rest[len(keys) :]
    main = [p for p in (cur, split, par) if p is not None]
    tuned = [p for p in (tcurve, sens) if p is not None]
    return ReportPlots(main, [p for p in factors if p is not None], [conf] if conf else [], tuned)


__all__ = [
    "Plot",
    "ReportPlots",
    "all_plots",
    "curves",
    "factor_plot",
    "pareto",
    "sensitivity",
    "time_split",
    "tuning_curve",
]
