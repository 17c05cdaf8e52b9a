"""The confusion matrices drawn: one heatmap panel per variant in one figure, and the sentence that says what a
matrix shows (the figure's alt text, the HTML page's per-variant summaries).

The matrices and their per-class figures come from :mod:`trainlab.report.classes`; this module only draws and
describes them, with the drawing kit of :mod:`trainlab.report.plotting`.
"""

from __future__ import annotations

import math

from trainlab.report import anchors
from trainlab.report.classes import ClassTable
from trainlab.report.plotting import Plot, new_figure, to_png


def confusion_summary(ct: ClassTable) -> str:
    """One sentence on a confusion matrix: accuracy and the most frequent confusions (alt text, captions)."""
    k = len(ct.confusion)
    worst = sorted(
        ((ct.confusion[i][j], ct.classes[i], ct.classes[j]) for i in range(k) for j in range(k) if i != j),
        reverse=True,
    )[:3]
    confused = "; ".join(f"{n} of class {a} predicted as {b}" for n, a, b in worst if n)
    acc = f"{ct.accuracy * 100:.1f}%" if ct.accuracy is not None else "unknown"
    return f"{ct.variant.name}: {k} classes, accuracy {acc}. " + (
        f"Most frequent confusions: {confused}." if confused else "No confusions."
    )


def confusion_grid(tables: list[ClassTable]) -> Plot | None:
    """One heatmap panel per variant (colour = share of the true class), in a single figure.

    Counts are not written into the cells (hundreds of text objects make the figure slow to draw); the HTML page
    shows each matrix with its counts as a coloured table, and report.md lists per-class precision/recall/F1.
    """
    if not tables:
        return None
    k = max(len(ct.confusion) for ct in tables)
    panel = min(2.4 + 0.1 * k, 5.0)  # inches per panel
    ncols = min(len(tables), max(int(11.0 // (panel + 0.6)), 1))
    nrows = math.ceil(len(tables) / ncols)
    fig = new_figure(ncols * (panel + 0.6) + 1.0, nrows * (panel + 0.75) + 0.3)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    im = None
    for ax, ct in zip(axes.flat, tables):
        kk = len(ct.confusion)
        norm = [[c / s if (s := sum(row)) else 0.0 for c in row] for row in ct.confusion]
        im = ax.imshow(norm, cmap="viridis", vmin=0.0, vmax=1.0, interpolation="nearest")
        ticks = list(range(kk)) if kk <= 20 else list(range(0, kk, math.ceil(kk / 20)))
        ax.set_xticks(ticks, [ct.classes[t] for t in ticks], fontsize=6, rotation=90 if kk > 10 else 0)
        ax.set_yticks(ticks, [ct.classes[t] for t in ticks], fontsize=6)
        ax.set_xlabel("predicted", fontsize=7)
        ax.set_ylabel("true", fontsize=7)
        seeds = f" ({ct.seeds} seeds)" if ct.seeds > 1 else ""
        ax.set_title(f"{ct.variant.name}{seeds}", fontsize=8)
    for ax in list(axes.flat)[len(tables) :]:
        ax.set_visible(False)
    fig.subplots_adjust(left=0.6 / fig.get_figwidth(), right=1 - 1.0 / fig.get_figwidth(), bottom=0.08, top=0.93,
                        wspace=0.45, hspace=0.5)  # fmt: skip
    cax = fig.add_axes((1 - 0.8 / fig.get_figwidth(), 0.15, 0.15 / fig.get_figwidth(), 0.7))
    cb = fig.colorbar(im, cax=cax)
    cb.set_label("share of true class", fontsize=7)
    cb.ax.tick_params(labelsize=6)
    alt = "Confusion-matrix heatmaps, one per variant. " + " ".join(confusion_summary(ct) for ct in tables)
    caption = "Rows: true class; columns: predicted class; colour: share of the true class (recall on the diagonal)."
    return Plot(anchors.CONFUSION + "-grid", "confusion", "Confusion matrices", caption, alt, to_png(fig))


__all__ = ["confusion_grid", "confusion_summary"]
