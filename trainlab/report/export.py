"""Plain-file outputs: ``results.csv``, ``epochs.csv``, ``report.md`` and ``report.tex``.

``results.csv`` has one row per run: study, variant, seed, status, error, one column per swept key, then every
scalar per-run figure the runs recorded (nested dicts flattened as ``a.b``; lists such as the confusion matrix
left out) — the metric catalogue's figures first, in its order —, then repeat and run_id. ``epochs.csv`` has one
row per run and epoch, its columns in the order of the catalogue's per-epoch figures.
"""

from __future__ import annotations

import csv
import io
from typing import TYPE_CHECKING, Any

from trainlab.measure.format import csv_cell, fmt_pct
from trainlab.measure.metrics import EPOCH_METRICS, column_order
from trainlab.measure.stats import ALPHA, CONFIDENCE, PAIRED_TEST_NAME, TEST_NAME
from trainlab.report.findings import Finding
from trainlab.report.machine import machine_info, run_dates
from trainlab.report.plots import ReportPlots
from trainlab.report.study import StudyView
from trainlab.report.tables import (
    MD_LEGEND,
    ClassTable,
    Table,
    class_table_markdown,
    latex_escape,
    md_escape,
    table_latex,
    table_markdown,
)
from trainlab.report.tuning import TuningTable, tuning_table

RESULTS_LEAD = ("study", "variant", "seed", "status", "error")
RESULTS_TAIL = ("repeat", "run_id")


def flatten(d: dict[str, Any], prefix: str = "", max_list: int | None = 0) -> dict[str, Any]:
    """Values of ``d`` with dotted keys: nested dicts flattened; lists kept only when flat and at most
    ``max_list`` long (default: no lists — e.g. the confusion matrix stays out of results.csv; None: every list,
    as it is)."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + ".", max_list))
        elif isinstance(v, list | tuple) and max_list is not None:
            if len(v) <= max_list and not any(isinstance(x, list | tuple | dict) for x in v):
                out[key] = list(v)
        else:
            out[key] = v
    return out


def results_csv(study: StudyView) -> str:
    """Text of results.csv: lead columns, swept keys, the figures (catalogue order, then others), tail."""
    figure_keys: list[str] = []
    flat = []
    for r in study.runs:
        f = flatten(r.results)
        flat.append(f)
        for k in f:
            if k not in figure_keys:
                figure_keys.append(k)
    figure_keys = column_order(figure_keys)
    header = [*RESULTS_LEAD, *study.swept_keys, *figure_keys, *RESULTS_TAIL]
    factors = {v.name: v.factors for v in study.variants}
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow([csv_cell(h) for h in header])
    for r, f in zip(study.runs, flat):
        row = [r.record.study, r.variant, r.seed, r.status, r.error]
        row += [factors[r.variant].get(k) for k in study.swept_keys]
        row += [f.get(k) for k in figure_keys]
        row += [r.repeat, r.run_id]
        w.writerow([csv_cell(v) for v in row])
    return buf.getvalue()


def epochs_csv(study: StudyView) -> str:
    """Text of epochs.csv: study, variant, seed, run_id, status, then every per-epoch key (catalogue order)."""
    stored = [(r, e.to_record()) for r in study.runs for e in r.epochs]  # each row as the store holds it
    seen: list[str] = ["epoch"]
    for _r, d in stored:
        seen += [k for k in d if k not in seen]
    keys = column_order(seen, EPOCH_METRICS)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["study", "variant", "seed", "run_id", "status", *keys])
    for r, d in stored:
        row = [r.record.study, r.variant, r.seed, r.run_id, r.status, *(d.get(k) for k in keys)]
        w.writerow([csv_cell(v) for v in row])
    return buf.getvalue()


def statistics_text(study: StudyView) -> list[str]:
    """Paragraphs saying which statistics the report uses (shared by HTML and Markdown)."""
    paras = [
        f"Intervals: mean ± half-width of the {CONFIDENCE:.0%} confidence interval, t distribution with n − 1 "
        "degrees of freedom over a variant's seeds, shown from 3 finished seeds (from 2 the interval means little:"
        " 'n = 2: low–high' gives the two values instead); with 3 or more seeds the significance findings also give"
        " the BCa bootstrap interval of the mean (9999 resamples, fixed seed), which does not assume normal values.",
        f"Comparison with the baseline: a {PAIRED_TEST_NAME} (scipy.stats.ttest_rel, values paired by seed) when "
        f"the variant and the baseline ran the same seeds, else {TEST_NAME} (scipy.stats.ttest_ind, "
        "equal_var=False). The p-values of all variants compared with the baseline on one metric are adjusted "
        "together with the best-vs-worst comparison by Holm's step-down method, and an adjusted p <"
        f" {ALPHA:g} is marked * as larger than the noise; the verdict, the findings, the tables and trainlab"
        " compare all read this one result. A whole-number figure equal in every seed is not tested. "
        "Effect sizes: d_z (paired) or Hedges' g. When a difference is within the noise, the findings say how many "
        "seeds the observed effect size and spread would need for 80% power. Figures fixed by the model "
        "(parameters, MACs, sizes) are not tested.",
    ]
    if study.repeats < 2:
        paras.append(
            "This study ran each variant with one seed, so no interval or test applies: run-to-run variation was "
            "not measured. Add repeats = N to the study file (N ≥ 3 recommended) to get them."
        )
    noise = study.timing_noise
    if noise is not None:
        paras.append(
            f"Timing noise: epoch times vary by {noise.cv_median * 100:.1f}% within a run (median coefficient of "
            f"variation of epoch_time_s, epoch 1 excluded as warm-up, over {noise.runs} runs; max "
            f"{noise.cv_max * 100:.1f}%)."
            + (
                " With one seed per variant, timing differences below this are marked ≈ and cannot be told apart "
                "from noise."
                if study.repeats < 2
                else ""
            )
        )
    return paras


if TYPE_CHECKING:
    from trainlab.report.deployment import DeploymentSection


def render_markdown(
    study: StudyView,
    findings: list[Finding],
    comparison: Table,
    groups: list[Table],
    plots: ReportPlots,
    class_tables: list[ClassTable],
    deployment: DeploymentSection | None = None,
) -> str:
    """report.md: the same tables as the HTML page (GitHub-flavoured), plots as files under plots/."""
    out: list[str] = [f"# {md_escape(study.name)}\n"]
    if study.description:
        out.append(md_escape(study.description) + "\n")
    info = [("Runs", run_dates(study)), *machine_info(study), ("Report generated", study.generated_at)]
    out.append("\n".join(f"- **{label}:** {md_escape(text)}" for label, text in info) + "\n")
    out.append("## Findings\n")
    for f in findings:
        tag = {"problem": "**Problem:** ", "warning": "**Warning:** "}.get(f.severity, "")
        # Sentences only: a finding's raw figures stay in the store and in the HTML report's details.
        out.append(f"- {tag}{md_escape(f.text)}")
    out.append("")
    out.append("## Comparison\n")
    if comparison.rows:
        out.append(table_markdown(comparison))
        out.append(MD_LEGEND + "\n")
    else:
        out.append("No runs yet.\n")
    for t in groups:
        out.append(f"### {md_escape(t.title)}\n")
        out.append(table_markdown(t))
    if plots.main or plots.factors:
        out.append("## Plots\n")
        for p in plots.main + plots.factors:
            out.append(f"### {md_escape(p.title)}\n")
            out.append(f"![{md_escape(p.alt)}](plots/{p.name}.png)\n")
            out.append(f"_{md_escape(p.caption)}_\n")
    if class_tables:
        out.append("## Confusion matrices and per-class figures\n")
        for p in plots.confusion:
            out.append(f"![{md_escape(p.alt)}](plots/{p.name}.png)\n")
            out.append(f"_{md_escape(p.caption)}_\n")
        for ct in class_tables:
            out.append(f"### {md_escape(ct.variant.name)}\n")
            out.append(class_table_markdown(ct))
    if deployment is not None:
        out.append("## Deployment\n")
        out.append(deployment.markdown + "\n")
        for n, method, note in deployment.notes:
            out.append(f"{n}. {md_escape(method)}: {md_escape(note)}")
        if deployment.plot is not None:
            out.append(f"\n![{md_escape(deployment.plot.alt)}](plots/deployment.png)\n")
    out.append("## Statistics\n")
    out.extend(md_escape(p) + "\n" for p in statistics_text(study))
    out.append("## Runs\n")
    out.append("| Variant | Seed | Status | Error | Run id | Epochs | Started | Finished |")
    out.append("|---|---|---|---|---|---|---|---|")
    for r in study.runs:
        out.append(
            f"| {md_escape(r.variant)} | {r.seed} | {r.status} | {md_escape(r.error or '')} | {r.run_id} |"
            f" {len(r.epochs)} | {r.record.started_at or ''} | {r.record.finished_at or ''} |"
        )
    return "\n".join(out) + "\n"


def render_latex(study: StudyView, comparison: Table, groups: list[Table], class_tables: list[ClassTable]) -> str:
    """report.tex: the tables as LaTeX (booktabs) to ``\\input`` into a write-up."""
    name = latex_escape(study.name)
    out = [
        f"% trainlab tables for study '{name}' — generated {study.generated_at}.",
        "% Needs \\usepackage{booktabs}. Bold = best, italic = worst per column; Δ against the baseline;",
        f"% * = larger than the noise ({PAIRED_TEST_NAME} on shared seeds, else {TEST_NAME}; Holm-adjusted p <"
        f" {ALPHA:g}); ± = 95% CI half-width (t distribution) from 3 seeds; (n = 2: a–b) the two values.",
        "",
    ]
    if comparison.rows:
        out.append(table_latex(comparison, f"{name}: comparison of variants"))
    tuned = tuning_table(study)
    if tuned is not None:
        out.append(tuning_latex(tuned, name))
    for t in groups:
        out.append(table_latex(t, f"{name}: {t.title.lower()}"))
    for ct in class_tables:
        vname = latex_escape(ct.variant.name)
        lines = [
            r"\begin{table}[htbp]",
            r"\centering\small",
            rf"\caption{{{name}: per-class precision, recall and F1 of {vname} (\%)}}",
            r"\begin{tabular}{lrrrr}",
            r"\toprule",
            r"Class & Support & Precision & Recall & F1 \\",
            r"\midrule",
        ]
        for r in ct.rows:
            cells = [fmt_pct(r[k], missing="---") for k in ("precision", "recall", "f1")]  # LaTeX dash
            lines.append(f"{latex_escape(r['class'])} & {r['support']} & " + " & ".join(cells) + r" \\")
        lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}", ""]
        out.append("\n".join(lines))
    return "\n".join(out)


def tuning_latex(table: TuningTable, study_name: str) -> str:
    """A tuned study's Tuning table as a booktabs ``table`` (``study_name`` already escaped), its legend as the
    table's note: per variant the tuned values (an edge marked), trials, best trial, its validation figure and
    the test figure of the variant's runs."""
    lines = [
        r"\begin{table}[htbp]",
        r"\centering\small",
        rf"\caption{{{study_name}: tuning, each variant with the same budget}}",
        r"\label{tab:tuning}",
        rf"\begin{{tabular}}{{l{'l' * len(table.keys)}lrrr}}",
        r"\toprule",
        " & ".join(latex_escape(h) for h in table.headers) + r" \\",
        r"\midrule",
    ]
    for r in table.rows:
        values = [text + (f" ({end} end)" if end else "") for text, end in r.values]
        cells = [r.name, *values, r.trials, r.best_trial, r.best_value, r.test.shown]  # "—" is escaped as ---
        lines.append(" & ".join(latex_escape(c) for c in cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", rf"\par\footnotesize {latex_escape(table.legend)}", r"\end{table}", ""]
    return "\n".join(lines)
