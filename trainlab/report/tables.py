"""Comparison tables (one row per variant) and per-class tables, rendered to Markdown, LaTeX and rich.

A :class:`Table` is built once from a :class:`StudyView` and rendered by every format, so the HTML page,
``report.md``, ``report.tex`` and ``trainlab compare`` show the same numbers.

Cell conventions: the mean over a variant's finished seeds, ``± half-width`` of the 95% CI when it has 3+ seeds
(with 2, ``(n = 2: low–high)``, the two values' range);
Δ against the baseline variant (percentage points for percentages, the absolute difference for R², relative %
otherwise); ``*`` when the comparison with the baseline (paired t-test on shared seeds, else Welch's; p-values
Holm-adjusted over the variants) is larger than the noise (adjusted p < 0.05), ``≈`` for a single-seed timing
difference within twice the figure's timing noise (``StudyView.timing_noise_of``), ``‡`` for a timing figure
taken on a busy machine. Best and worst per column are marked knowing which direction is better — not for the
inference figures of variants with the same inference network (``verdict.identical_inference``). Marks read the
report's one comparison rule (``trainlab.report.comparison``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from trainlab.measure.format import fmt_ci, fmt_delta, fmt_factor, fmt_few, fmt_pct, fmt_value, loss_unit
from trainlab.measure.metrics import BY_KEY, GROUPS, HEADLINE, INFER, PEAK_SPREAD_SHOWN, Metric
from trainlab.measure.stats import CI_MIN_N
from trainlab.report import anchors
from trainlab.report.classes import ClassTable, class_metrics, class_tables
from trainlab.report.comparison import family_of
from trainlab.report.study import StudyView, VariantView, dotted_get
from trainlab.report.verdict import identical_inference

SIG_MARK = "*"  # Holm-adjusted p < alpha (paired or Welch t-test): larger than the noise
NOISE_MARK = "≈"  # single seed: a timing difference within twice the figure's timing noise
BUSY_MARK = "‡"  # a timing figure taken while other work competed for the CPUs: not evidence of an effect


@dataclass
class Cell:
    """One metric of one variant."""

    value: float | None  # the mean, in stored units (fractions as fractions)
    text: str  # display value ("95.3"), "—" when missing
    ci: str = ""  # "0.4" (half-width, display units) when there are 3+ seeds
    few: str = ""  # "n = 2: 11,900–13,300" instead of ± with 2 seeds
    delta: str = ""  # "+2.1 pp" / "-12.0%" against the baseline
    mark: str = ""  # SIG_MARK, NOISE_MARK or ""
    p: float | None = None  # Holm-adjusted p-value against the baseline
    p_text: str = ""  # the test and its p-values, for the tooltip
    rank: str | None = None  # "best" | "worst" | None
    n: int = 0  # seeds behind the value

    @property
    def title(self) -> str:
        """Tooltip: how the value was obtained."""
        parts = []
        if self.n > 1:
            parts.append(f"mean of {self.n} seeds" + (f", 95% CI ± {self.ci}" if self.ci else f" ({self.few})"))
        if self.p_text:
            parts.append(f"{self.p_text} vs baseline")
        if self.mark == NOISE_MARK:
            parts.append("difference within the timing noise (single seed)")
        if self.mark == BUSY_MARK:
            parts.append("timed while other work competed for the CPUs: not comparable")
        if self.rank:
            parts.append(self.rank)
        return "; ".join(parts)

    @property
    def shown(self) -> str:
        """The value with its interval (3+ seeds) or the seeds' range (2): ``95.3 ± 0.4``, ``95.3 (n = 2: …)``."""
        return self.text + (f" ± {self.ci}" if self.ci else f" ({self.few})" if self.few else "")


@dataclass
class Row:
    """One variant."""

    name: str
    anchor: str
    baseline: bool
    settings: str  # what this variant sets ("model.dropout=0.3, model.hidden=[128,64]"); "" when the name says it
    status: str  # "done", "running (epoch 3/12)", "2 done, 1 failed"
    status_class: str  # the variant's status word (CSS class)
    reasons: list[str]
    note: int | None = None  # number of the note under the table giving the reasons
    cells: list[Cell] = field(default_factory=list)


@dataclass
class Table:
    """A comparison table: one row per variant, one column per metric."""

    id: str
    title: str
    metrics: list[Metric]
    headers: list[str]  # metric headers with units
    rows: list[Row]
    baseline: str | None

    @property
    def notes(self) -> list[tuple[int, str, list[str]]]:
        """(number, variant, reasons) for the rows whose runs failed, diverged or were skipped."""
        return [(r.note, r.name, r.reasons) for r in self.rows if r.note is not None]


def settings_text(v: VariantView) -> str:
    """The keys a variant sets, unless its name already spells them (sweep points are named after their values)."""
    over = v.runs[0].record.overrides if v.runs else {}
    if not over or all(f"{k.split('.')[-1]}=" in v.name for k in over):
        return ""
    return ", ".join(f"{k}={fmt_factor(val)}" for k, val in over.items())


def header(m: Metric, study: StudyView | None = None) -> str:
    """Column header with unit; loss columns name their loss (cross-entropy in nats, or MSE)."""
    if m.kind == "loss" and m.key in ("test_loss", "train_loss") and study is not None:
        unit = loss_unit(study.loss_name)
        short = {"cross_entropy": "nats", "mse": "MSE"}.get(study.loss_name or "", unit)
        return f"{m.label} ({short})" if short else m.label
    return m.header


def mfu_range(m: Metric, v: VariantView, mfu: float | None) -> str:
    """The MFU cell's range: `` (9.50–15.0)``, the MFU against the fastest and the slowest round of the peak probe
    (means of the seeds' ``mfu_low`` and ``mfu_high``), when it is wider than ``PEAK_SPREAD_SHOWN`` of the MFU;
    empty for any other column and for a narrow or unknown range."""
    if m.key != "mfu" or mfu is None or mfu <= 0:
        return ""
    low, high = v.mean("mfu_low"), v.mean("mfu_high")
    if low is None or high is None or (high - low) / mfu <= PEAK_SPREAD_SHOWN:
        return ""
    return f" ({fmt_value(m, low)}–{fmt_value(m, high)})"


def build_table(study: StudyView, metrics: Sequence[Metric], table_id: str, title: str) -> Table:
    """Means (± CI), Δ vs baseline, significance marks and best/worst for ``metrics`` over the study's variants."""
    base = study.baseline
    rows = [
        Row(
            name=v.name,
            anchor=v.anchor,
            baseline=v is base,
            settings=settings_text(v),
            status=v.status_text,
            status_class=v.status,
            reasons=v.reasons,
        )
        for v in study.variants
    ]
    note = 0
    for row in rows:
        if row.reasons:
            note += 1
            row.note = note
    same_network = identical_inference(study)
    for m in metrics:
        summaries = [v.summary(m.key) for v in study.variants]
        family = family_of(study, m.key)
        base_mean = base.mean(m.key) if base is not None else None
        for v, s, row in zip(study.variants, summaries, rows):
            if s is None:
                # A finished run that never reached its accuracy target says so, rather than showing a blank.
                reached = m.key.endswith("to_target") or m.key.endswith("to_target_s")
                row.cells.append(Cell(None, "not reached" if reached and v.done else "—"))
                continue
            cell = Cell(s.mean, fmt_value(m, s.mean) + mfu_range(m, v, s.mean), n=s.n)
            if s.n >= CI_MIN_N:
                cell.ci = fmt_ci(m, s.half_width)
            elif s.n == 2:
                cell.few = fmt_few(m, v.values(m.key))
            if v is not base and base_mean is not None:
                cell.delta = fmt_delta(m, s.mean, base_mean)
                test = None if m.deterministic else family.vs_baseline(v.name)
                if test is not None:
                    cell.p, cell.p_text = test.p_adjusted, test.p_text
                    cell.mark = SIG_MARK if test.significant else ""
                elif m.timing and study.repeats < 2 and study.within_timing_noise(m.key, s.mean, base_mean):
                    cell.mark = NOISE_MARK
            if v.busy_for(m):
                cell.mark = BUSY_MARK  # whatever the test says, the machine, not the variant, may explain it
            row.cells.append(cell)
        if not (same_network and m.group == INFER):  # the same network: its inference figures cannot differ
            _rank(m, [row.cells[-1] for row in rows])
    return Table(
        id=table_id,
        title=title,
        metrics=list(metrics),
        headers=[header(m, study) for m in metrics],
        rows=rows,
        baseline=base.name if base else None,
    )


def _rank(m: Metric, cells: list[Cell]) -> None:
    """Mark the best and worst cells of a column, by their displayed values (a difference that does not show
    is no ranking), only with a known better-direction and at least two different displayed values."""
    shown = [c for c in cells if c.value is not None]
    if m.better is None or len({c.text for c in shown}) < 2:
        return
    ordered = sorted(shown, key=lambda c: c.value, reverse=m.better == "higher")
    best, worst = ordered[0].text, ordered[-1].text
    for c in shown:
        if c.text == best:
            c.rank = "best"
        elif c.text == worst:
            c.rank = "worst"


def comparison_table(study: StudyView) -> Table:
    """The headline table: the study's judging metric, loss, time, latency, size and memory."""
    present = {m.key for m in study.present()}
    # A study may name its own columns ([study] columns = [...]): the table its question asks for.
    chosen = dotted_get(study.meta_study, "study.columns") or HEADLINE
    metrics = [BY_KEY[k] for k in chosen if k in present and k in BY_KEY]
    return build_table(study, metrics, anchors.COMPARISON, "Comparison")


def group_tables(study: StudyView) -> list[Table]:
    """Every curated metric the study has, one table per group."""
    present = study.present()
    out = []
    for group in GROUPS:
        metrics = [m for m in present if m.group == group]
        if metrics:
            out.append(build_table(study, metrics, f"{anchors.TABLES}-{anchors.slug(group)}", group))
    return out


# ------------------------------------------------------------------------------------------------------
# Markdown


def md_escape(text: str) -> str:
    """Escape characters that would break a GitHub table cell or start Markdown/HTML markup."""
    out = str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")
    for ch in "*_`[]<>#":
        out = out.replace(ch, "\\" + ch)
    return out


def _md_cell(c: Cell) -> str:
    if c.value is None:
        return "—"
    text = c.shown
    if c.rank == "best":
        text = f"**{text}**"
    elif c.rank == "worst":
        text = f"_{text}_"
    if c.delta:
        text += f" ({c.delta}{c.mark})"
    elif c.mark:
        text += f" {c.mark}"
    return text


def table_markdown(t: Table) -> str:
    """A GitHub-flavoured Markdown table with a legend line."""
    head = ["Variant", "Status", *t.headers]
    lines = ["| " + " | ".join(md_escape(h) for h in head) + " |", "|" + "|".join(["---"] * len(head)) + "|"]
    for r in t.rows:
        name = md_escape(r.name) + (" (baseline)" if r.baseline else "")
        status = md_escape(r.status) + (f" [{r.note}]" if r.note else "")
        cells = [_md_cell(c) for c in r.cells]
        lines.append("| " + " | ".join([name, status, *cells]) + " |")
    text = "\n".join(lines) + "\n"
    if t.notes:
        text += "\n" + "\n".join(f"[{n}] {md_escape(name)}: {md_escape('; '.join(rs))}  " for n, name, rs in t.notes)
        text += "\n"
    return text


MD_LEGEND = (
    "**bold** = best, _italic_ = worst per column; (Δ) against the baseline: pp = percentage points, % = relative "
    f"change; {SIG_MARK} = larger than the noise (paired t-test on shared seeds, else Welch's; Holm-adjusted "
    f"over the figure's comparisons, p < 0.05; not for whole numbers that vary over no seed); {NOISE_MARK} = within "
    f"the timing noise (single seed); {BUSY_MARK} = timed while other work competed for the CPUs (not evidence); "
    "± = 95% confidence half-width (t distribution) over 3+ seeds; (n = 2: a–b) = the two seeds' range; MFU (a–b) "
    "= its range against the fastest and the slowest round of the peak FLOP/s probe, shown when the rounds differed."
)


def class_table_markdown(ct: ClassTable) -> str:
    lines = ["| Class | Support | Precision (%) | Recall (%) | F1 (%) |", "|---|---|---|---|---|"]
    for r in ct.rows:
        lines.append(
            f"| {md_escape(r['class'])} | {r['support']} | {fmt_pct(r['precision'])} | {fmt_pct(r['recall'])} |"
            f" {fmt_pct(r['f1'])} |"
        )
    m = ct.macro
    p, r, f1 = (fmt_pct(m[k]) for k in ("precision", "recall", "f1"))
    lines.append(f"| macro avg | {sum(row['support'] for row in ct.rows)} | {p} | {r} | {f1} |")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------------------
# LaTeX


_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "±": r"$\pm$",
    "Δ": r"$\Delta$",
    "≈": r"$\approx$",
    "—": "---",
    "–": "--",
    "²": r"\textsuperscript{2}",
    "×": r"$\times$",
    "<": r"\textless{}",
    ">": r"\textgreater{}",
    "|": r"\textbar{}",
    "\n": " ",
    "\r": " ",
}


def latex_escape(text: str) -> str:
    """Escape LaTeX's special characters (and map the few Unicode symbols tables use)."""
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in str(text))


def table_latex(t: Table, caption: str) -> str:
    """A booktabs ``table`` environment (needs ``\\usepackage{booktabs}``)."""
    head = ["Variant", "Status", *t.headers]
    cols = "ll" + "r" * len(t.metrics)
    lines = [
        r"\begin{table}[htbp]",
        r"\centering\small",
        rf"\caption{{{latex_escape(caption)}}}",
        rf"\label{{tab:{t.id}}}",
        rf"\begin{{tabular}}{{{cols}}}",
        r"\toprule",
        " & ".join(latex_escape(h) for h in head) + r" \\",
        r"\midrule",
    ]
    for r in t.rows:
        cells = []
        for c in r.cells:
            if c.value is None:
                cells.append("---")
                continue
            text = latex_escape(c.shown)
            if c.rank == "best":
                text = rf"\textbf{{{text}}}"
            elif c.rank == "worst":
                text = rf"\textit{{{text}}}"
            if c.delta:
                text += " " + latex_escape(f"({c.delta}{c.mark})")
            cells.append(text)
        name = latex_escape(r.name + (" (baseline)" if r.baseline else ""))
        status = latex_escape(r.status) + (f"\\textsuperscript{{{r.note}}}" if r.note else "")
        lines.append(" & ".join([name, status, *cells]) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    for n, name, reasons in t.notes:
        lines.append(
            rf"\par\footnotesize\textsuperscript{{{n}}} {latex_escape(name)}: {latex_escape('; '.join(reasons))}"
        )
    lines += [r"\end{table}", ""]
    return "\n".join(lines)


__all__ = [
    "Cell",
    "ClassTable",
    "Row",
    "Table",
    "build_table",
    "class_metrics",
    "class_table_markdown",
    "class_tables",
    "comparison_table",
    "group_tables",
]
