"""``trainlab compare DIR_A DIR_B``: the comparison table across two studies' matching variants.

Variants are matched by name. For each matched variant and each headline metric either study reports, the
table gives A's and B's value (mean ± 95% CI from 3 seeds; with 2, the two values' range), the change from A to B
(percentage points for percentages, relative % otherwise), and — when both have 2+ seeds — the report's one
comparison rule (:mod:`trainlab.report.comparison`): a paired t-test when both ran the same seeds, else Welch's,
Holm-adjusted over the matched variants on that metric. Typical use: the same study on two machines (cpu vs
cuda), or before/after a code change.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from trainlab.errors import TrainlabError
from trainlab.measure.format import fmt_ci, fmt_delta, fmt_few, fmt_value
from trainlab.measure.metrics import BY_KEY, HEADLINE, Metric
from trainlab.measure.stats import ALPHA, CI_MIN_N, relative_change
from trainlab.report.comparison import Comparison, judge, seed_group
from trainlab.report.export import flatten
from trainlab.report.machine import machine_info
from trainlab.report.study import StudyView, VariantView
from trainlab.report.tables import BUSY_MARK, NOISE_MARK, SIG_MARK, header, md_escape

RULE = "paired t-test on shared seeds, else Welch's; Holm-adjusted over the matched variants"


@dataclass
class CompareRow:
    """One metric of one matched variant in both studies."""

    variant: str
    metric: Metric
    label: str  # header with unit
    a: str
    b: str
    delta: str
    p: float | None  # Holm-adjusted over the matched variants on this metric
    mark: str  # SIG_MARK, NOISE_MARK, BUSY_MARK or ""


def _cell(v: VariantView, m: Metric) -> str:
    s = v.summary(m.key)
    if s is None:
        return v.status_text if v.status != "done" else "—"
    text = fmt_value(m, s.mean)
    if s.n < CI_MIN_N:  # no t interval from 2 seeds: their range
        few = fmt_few(m, v.values(m.key)) if s.n == 2 else ""
        return f"{text} ({few})" if few else text
    ci = fmt_ci(m, s.half_width)
    return f"{text} ± {ci}" if ci else text


@dataclass(frozen=True)
class ConfigDifference:
    """A resolved config key whose value differs between the two studies, and the matched variants it differs in."""

    key: str  # dotted, e.g. data.limit_train
    a: Any
    b: Any
    variants: tuple[str, ...]


def config_differences(a: StudyView, b: StudyView) -> list[ConfigDifference]:
    """The keys of the matched variants' resolved configs (each variant's first run) that differ: what the two
    studies changed besides the machine, e.g. ``data.limit_train`` in two studies of one name."""
    names_b = {v.name: v for v in b.variants}
    found: dict[tuple[str, str, str], tuple[Any, Any, list[str]]] = {}
    for va in a.variants:
        vb = names_b.get(va.name)
        if vb is None or not va.runs or not vb.runs:
            continue
        fa, fb = flatten(va.runs[0].config, max_list=None), flatten(vb.runs[0].config, max_list=None)
        for key in sorted(set(fa) | set(fb)):
            if key != "train.seed" and fa.get(key) != fb.get(key):  # seeds: the table's seed counts say it
                slot = found.setdefault((key, repr(fa.get(key)), repr(fb.get(key))), (fa.get(key), fb.get(key), []))
                slot[2].append(va.name)
    return [ConfigDifference(key, va, vb, tuple(names)) for (key, _ra, _rb), (va, vb, names) in found.items()]


def _difference_text(d: ConfigDifference, matched: int) -> str:
    where = "every variant" if len(d.variants) == matched else ", ".join(d.variants)
    return f"{d.key}: {d.a!r} (A) → {d.b!r} (B), in {where}"


def compare_rows(a: StudyView, b: StudyView) -> list[CompareRow]:
    """Rows for every variant name both studies have, and every headline metric either reports."""
    names_b = {v.name: v for v in b.variants}
    matched = [(va, names_b[va.name]) for va in a.variants if va.name in names_b]
    if not matched:
        raise TrainlabError(
            f"the two studies have no variant names in common: {a.out_dir} has "
            f"{', '.join(v.name for v in a.variants) or 'none'}; {b.out_dir} has "
            f"{', '.join(v.name for v in b.variants) or 'none'}"
        )
    present = {m.key for m in a.present()} | {m.key for m in b.present()}
    metrics = [BY_KEY[k] for k in HEADLINE if k in present]
    noise = max((s.timing_noise.cv_median for s in (a, b) if s.timing_noise is not None), default=None)
    tests: dict[str, dict[str, Comparison]] = {
        m.key: {} if m.deterministic else judge(
            {va.name: (seed_group(vb, m.key), seed_group(va, m.key)) for va, vb in matched
             if not (va.busy_for(m) or vb.busy_for(m))}, quantised=m.quantised)
        for m in metrics
    }  # fmt: skip
    rows = []
    for va, vb in matched:
        for m in metrics:
            ma, mb = va.mean(m.key), vb.mean(m.key)
            delta = fmt_delta(m, mb, ma) if ma is not None and mb is not None else ""
            test = tests[m.key].get(va.name)
            mark = ""
            if va.busy_for(m) or vb.busy_for(m):
                mark = BUSY_MARK  # one side was timed on a busy machine: no test or noise judgement applies
            elif test is not None:
                mark = SIG_MARK if test.significant else ""
            elif m.timing and noise is not None and ma is not None and mb is not None:
                rel = relative_change(mb, ma)
                if rel is not None and abs(rel) < noise:
                    mark = NOISE_MARK
            rows.append(
                CompareRow(
                    va.name, m, header(m, a), _cell(va, m), _cell(vb, m), delta, test.p_adjusted if test else None, mark
                )
            )
    return rows


def compare_markdown(a: StudyView, b: StudyView, rows: list[CompareRow]) -> str:
    """The comparison as GitHub-flavoured Markdown."""
    out = [f"# Comparison: {md_escape(a.name)} (A) vs {md_escape(b.name)} (B)\n"]
    for tag, s in (("A", a), ("B", b)):
        machine = "; ".join(f"{label}: {text}" for label, text in machine_info(s)[:3])
        out.append(f"- **{tag}:** `{md_escape(str(s.out_dir))}` — {md_escape(machine)}")
    diffs, matched = config_differences(a, b), len({r.variant for r in rows})
    if diffs:
        out.append("\n**Config differences** (besides the machine):\n")
        out += [f"- {md_escape(_difference_text(d, matched))}" for d in diffs]
    else:
        out.append(
            "\nThe matched variants' configs are the same (seeds aside): any difference is the machine's or the "
            "noise's."
        )
    out.append("")
    out.append("| Variant | Metric | A | B | Δ (B vs A) | p (Holm) |")
    out.append("|---|---|---|---|---|---|")
    for r in rows:
        p = f"{r.p:.3g}" if r.p is not None else ""
        out.append(
            f"| {md_escape(r.variant)} | {md_escape(r.label)} | {md_escape(r.a)} | {md_escape(r.b)} |"
            f" {r.delta}{r.mark} | {p} |"
        )
    out.append("")
    out.append(
        f"Δ: percentage points (pp) for percentages, relative change otherwise. {SIG_MARK} = larger than the noise "
        f"({RULE}, p < {ALPHA:g}, when both studies have 2+ seeds; not for whole numbers equal in every seed); "
        f"± = 95% CI from 3 seeds, (n = 2: a–b) = the two values' range; {NOISE_MARK} = a timing difference below "
        "the within-run timing variation of epoch times (single seed): not distinguishable from noise; "
        f"{BUSY_MARK} = one side was timed while other work competed for the CPUs: not comparable."
    )
    return "\n".join(out) + "\n"


def compare_command(a: Path, b: Path, out: Path | None) -> int:
    """Print the comparison of two study folders (rich table); also write it as Markdown to ``out``."""
    sa, sb = StudyView.load(a), StudyView.load(b)
    rows = compare_rows(sa, sb)
    console = Console()
    diffs, matched = config_differences(sa, sb), len({r.variant for r in rows})
    for d in diffs:
        console.print(f"config differs: {_difference_text(d, matched)}", markup=False, highlight=False)
    if not diffs:
        console.print("The matched variants' configs are the same (seeds aside).", markup=False)
    table = Table(title=Text(f"{sa.name} (A: {a}) vs {sb.name} (B: {b})"), title_justify="left")
    for col, justify in (("Variant", "left"), ("Metric", "left"), ("A", "right"), ("B", "right"),
                         ("Δ B vs A", "right"), ("p (Holm)", "right")):  # fmt: skip
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    last = None
    for r in rows:
        if last is not None and r.variant != last:
            table.add_section()
        cells = [r.variant if r.variant != last else "", r.label, r.a, r.b, f"{r.delta}{r.mark}",
                 f"{r.p:.3g}" if r.p is not None else ""]  # fmt: skip
        table.add_row(*(Text(c) for c in cells))  # Text: user names are never read as rich markup
        last = r.variant
    console.print(table)
    console.print(
        f"Δ: pp for percentages, relative % otherwise; {SIG_MARK} p < {ALPHA:g} ({RULE}); "
        f"{NOISE_MARK} below the timing noise (single seed); {BUSY_MARK} timed on a busy machine.",
        markup=False,
    )
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(compare_markdown(sa, sb, rows), encoding="utf-8")
        console.print(f"written: {out}", markup=False)
    return 0


__all__ = [
    "CompareRow",
    "ConfigDifference",
    "compare_command",
    "compare_markdown",
    "compare_rows",
    "config_differences",
]
