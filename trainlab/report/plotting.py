"""The report's drawing kit: the Plot record and the report's set of them, palette and markers, figure set-up,
legends and PNG output, the per-variant reductions of the epoch rows that the figures draw, and the swept keys
with numbers to plot along.

Matplotlib's Agg canvas only (no display, no pyplot global state). Colours are the Okabe-Ito palette
(distinguishable with the common colour-vision deficiencies); beyond eight variants markers tell lines apart.
"""

from __future__ import annotations

import contextlib
import io
import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from trainlab.measure.format import is_number

if TYPE_CHECKING:  # annotations only: the study view is what the figures are drawn from
    from trainlab.report.study import StudyView, VariantView

# Okabe & Ito (2008), "Color Universal Design"; yellow last: it is faint as a line on white.
OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#56B4E9", "#CC79A7", "#000000", "#F0E442")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
DPI = 110  # ~1100 px wide figures: sharp on screen, small enough to inline as base64
LOG_SPAN = 20.0  # use a log axis when positive values span more than this ratio


@dataclass
class Plot:
    """One rendered figure."""

    id: str  # element id in report.html (anchors link here)
    name: str  # file stem under plots/
    title: str
    caption: str
    alt: str
    png: bytes


@dataclass
class ReportPlots:
    """Every figure of a report, by where the page shows it."""

    main: list[Plot]  # loss and accuracy curves, data vs compute time, quality vs cost: the Plots section
    factors: list[Plot]  # one per swept numeric factor, after the main ones
    confusion: list[Plot]  # the confusion matrices' grid; none without matrices (e.g. regression)
    tuning: list[Plot] = field(default_factory=list)  # a tuned study's: the Tuning section, before the Plots

    @property
    def every(self) -> list[Plot]:
        """All of them, in the order the page shows them."""
        return self.tuning + self.main + self.factors + self.confusion


def colour(i: int) -> str:
    return OKABE_ITO[i % len(OKABE_ITO)]


def colour_index(names: Iterable[str]) -> dict[str, int]:
    """Each name's colour (and marker) index, by its first place in ``names``: pass the study's variants first,
    so that a variant keeps its colour in every figure."""
    return {n: i for i, n in enumerate(dict.fromkeys(names))}


def marker(i: int) -> str:
    """Plain circles for the first eight variants; other markers once colours repeat."""
    return "o" if i < len(OKABE_ITO) else MARKERS[(i // len(OKABE_ITO)) % len(MARKERS)]


def new_figure(width: float, height: float) -> Figure:
    # No layout engine: constrained/tight layout re-draw the figure to measure it, which doubles the cost of every
    # plot. Margins are set in inches by _margins instead.
    fig = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def set_margins(
    fig: Figure,
    left: float = 0.75,
    right: float = 0.25,
    top: float = 0.45,
    bottom: float = 0.6,
    legend_rows: int = 0,
    wspace_in: float = 0.8,
) -> None:
    """Set subplot margins in inches (plus room for ``legend_rows`` rows of a legend under the axes)."""
    w, h = fig.get_size_inches()
    bottom += 0.27 * legend_rows
    ncols = max(len(fig.axes), 1)
    axes_w = (w - left - right - wspace_in * (ncols - 1)) / ncols
    fig.subplots_adjust(left=left / w, right=1 - right / w, top=1 - top / h, bottom=bottom / h,
                        wspace=wspace_in / max(axes_w, 0.1))  # fmt: skip


def legend_below(fig: Figure, handles: list[Any], labels: list[str] | None = None, ncol: int = 8) -> int:
    """A frameless legend centred under the axes, read row by row; returns the number of rows it takes.

    Uses the most columns (up to ``ncol``) whose widest entries fit side by side in the figure's width.
    """
    labels = labels if labels is not None else [h.get_label() for h in handles]
    width = [0.6 + 0.075 * len(lb) for lb in labels]  # inches: marker, gap and label at font size 9
    ncol = max(min(ncol, len(handles)), 1)

    def total_width(n: int) -> float:
        return sum(max(width[i] for i in col) for col in legend_columns(len(handles), n))

    while ncol > 1 and total_width(ncol) > fig.get_figwidth():
        ncol -= 1
    order = [i for col in legend_columns(len(handles), ncol) for i in col]
    fig.legend([handles[i] for i in order], [labels[i] for i in order], loc="lower center",
               bbox_to_anchor=(0.5, 0.0), ncol=ncol, frameon=False, fontsize=9)  # fmt: skip
    return math.ceil(len(handles) / ncol)


def legend_columns(n: int, ncol: int) -> list[list[int]]:
    """Item indices per legend column so that matplotlib's column-by-column legend reads row by row.

    matplotlib splits the entries into ``ncol`` columns of sizes ceil/floor(n / ncol), larger first
    (``np.array_split``); the entry in row r, column c should be item r * ncol + c.
    """
    nrows = math.ceil(n / ncol)
    full = n - ncol * (nrows - 1)  # columns holding nrows entries; the others hold nrows - 1
    return [[r * ncol + c for r in range(nrows if c < full else nrows - 1)] for c in range(ncol)]


def to_png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    return buf.getvalue()


def style_axes(ax: Any) -> None:
    ax.grid(True, color="#dddddd", linewidth=0.6)
    if ax.get_yscale() == "linear":
        with contextlib.suppress(AttributeError):  # categorical axes (bar labels) have no offset to turn off
            ax.ticklabel_format(axis="y", useOffset=False)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def log_if_wide(ax: Any, values: Sequence[float], axis: str = "y") -> None:
    pos = [v for v in values if v > 0]
    if pos and len(pos) == len(values) and max(pos) / min(pos) > LOG_SPAN:
        (ax.set_yscale if axis == "y" else ax.set_xscale)("log")


# ---- what the figures read of the study: per-variant reductions of the epoch rows, the numeric factors -------
# (kept here, apart from the figures themselves, so that plots.py stays a size one can read: under 450 lines)


def epoch_means(v: VariantView, key: str) -> tuple[list[int], list[float], list[float], list[float]]:
    """Per epoch over the variant's runs (running and diverged ones included): epochs, mean, min, max."""
    by_epoch: dict[int, list[float]] = {}
    for r in v.runs:
        for e in r.epochs:
            val = getattr(e, key)  # key: an EpochRow field (a per-epoch figure of the catalogue)
            if is_number(val):
                by_epoch.setdefault(e.epoch, []).append(float(val))
    xs = sorted(by_epoch)
    return (
        xs,
        [statistics.fmean(by_epoch[x]) for x in xs],
        [min(by_epoch[x]) for x in xs],
        [max(by_epoch[x]) for x in xs],
    )


def zoom_floor(points: list[tuple[int, float]], targets: list[float]) -> float | None:
    """Lower accuracy limit that leaves out a steep first epoch, or None when zooming would hide little.

    Accuracy often jumps from ~50% after epoch 1 to >90%; a full axis then squashes every later difference. The
    floor is the lowest value from epoch 2 on (and any target), rounded down to 5%, when epoch-1 values lie more
    than 10 points below it.
    """
    later = [y for e, y in points if e >= 2]
    if len(later) < 2 or not points:
        return None
    floor = math.floor((min(later + targets) - 1.0) / 5.0) * 5.0
    return floor if min(y for _e, y in points) < floor - 10.0 else None


def epoch_split(v: VariantView) -> tuple[float, float, float, str] | None:
    """Mean data, compute and other time per epoch over the variant's runs (epoch 1 excluded when possible)."""
    rows = [e for r in v.runs for e in r.epochs if is_number(e.epoch_time_s)]
    if not rows:
        return None
    later = [e for e in rows if e.epoch > 1]
    use, which = (later, "epochs 2+") if later else (rows, "epoch 1")
    data = statistics.fmean(float(e.data_time_s or 0.0) for e in use)
    comp = statistics.fmean(float(e.compute_time_s or 0.0) for e in use)
    total = statistics.fmean(float(e.epoch_time_s or 0.0) for e in use)
    return data, comp, max(total - data - comp, 0.0), which


def numeric_factors(study: StudyView) -> list[str]:
    """Swept keys whose values are numbers (not booleans) with at least two distinct values."""
    out = []
    for key in study.swept_keys:
        vals = [v.factors.get(key) for v in study.variants if v.done]  # variants with figures to plot
        nums = {float(x) for x in vals if is_number(x)}
        if len(nums) >= 2:
            out.append(key)
    return out
