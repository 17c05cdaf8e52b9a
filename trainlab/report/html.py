"""report.html: one self-contained page (inline CSS, base64 PNG images, no script, nothing fetched).

Rendered with Jinja2 with autoescaping on: every piece of user text (study name and description, variant and
class names, errors, config values) is escaped, so a study named ``<script>alert(1)</script>`` shows as text.
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any

import jinja2
from matplotlib import colormaps
from matplotlib.colors import to_hex

from trainlab.measure.format import fmt_number, fmt_value
from trainlab.measure.metrics import BY_KEY, METRICS
from trainlab.report import anchors
from trainlab.report.confusion_plot import confusion_summary
from trainlab.report.export import flatten, statistics_text
from trainlab.report.findings import Finding, run_findings
from trainlab.report.machine import machine_info, run_dates
from trainlab.report.plots import Plot, ReportPlots
from trainlab.report.study import RunView, StudyView, is_number
from trainlab.report.tables import BUSY_MARK, NOISE_MARK, SIG_MARK, ClassTable, Table
from trainlab.report.tuning import ANCHOR as TUNING_ANCHOR
from trainlab.report.tuning import setting_text, tuning, tuning_table

# Per-epoch columns with a label and unit; other keys are shown under their own name.
EPOCH_COLUMNS = {
    "epoch": ("Epoch", None),
    "train_loss": ("Train loss", "loss"),
    "test_loss": ("Test loss", "loss"),
    "train_acc": ("Train acc (%)", "pct"),
    "test_acc": ("Test acc (%)", "pct"),
    "test_mae": ("Test MAE", "num"),
    "test_r2": ("Test R²", "num"),
    "epoch_time_s": ("Epoch (s)", "num"),
    "data_time_s": ("Data (s)", "num"),
    "compute_time_s": ("Compute (s)", "num"),
    "steps": ("Steps", "int"),
    "samples": ("Samples", "int"),
    "lr": ("LR", "num"),
}


def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("trainlab.report", "templates"),
        autoescape=True,  # every {{ }} is HTML-escaped unless explicitly marked safe (only our base64 images)
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["num"] = fmt_number
    return env


def _epoch_table(run: RunView) -> dict[str, Any]:
    stored = [e.to_record() for e in run.epochs]  # each row as stored: only the figures it has
    keys: list[str] = []
    for d in stored:
        keys += [k for k in d if k not in keys]
    keys.sort(key=lambda k: list(EPOCH_COLUMNS).index(k) if k in EPOCH_COLUMNS else len(EPOCH_COLUMNS))
    headers = [EPOCH_COLUMNS.get(k, (k, None))[0] for k in keys]
    rows = []
    for d in stored:
        row = []
        for k in keys:
            v, kind = d.get(k), EPOCH_COLUMNS.get(k, (k, None))[1]
            if kind == "pct" and is_number(v):
                row.append(f"{v * 100:.2f}")
            elif kind == "loss" and is_number(v):
                row.append(f"{v:.4g}")
            else:
                row.append(fmt_number(v))
        rows.append(row)
    return {"headers": headers, "rows": rows}


def _figures_rows(run: RunView) -> list[tuple[str, str, str]]:
    """(name, value with unit, definition) for every scalar figure of a run, curated ones first."""
    flat = flatten(run.results, max_list=16)  # short lists (normalisation stats, class names) are shown
    rows = []
    for m in METRICS:
        if m.key in flat and flat[m.key] is not None:
            unit = f" {m.unit}" if m.unit and m.unit != "%" else m.unit
            rows.append((m.key, fmt_value(m, flat[m.key]) + unit, m.definition))
    for k, v in flat.items():
        if k not in BY_KEY:
            rows.append((k, fmt_number(v), ""))
    return rows


def _config_rows(run: RunView) -> list[tuple[str, Any, bool]]:
    """(dotted key, value, set by this variant) for the run's resolved config."""
    over = run.record.overrides
    return [(k, v, k in over) for k, v in sorted(flatten(run.config, max_list=10_000).items())]


def _run_context(run: RunView, quality_key: str) -> dict[str, Any]:
    profile = run.profile or {}
    return {
        "run": run,
        "findings": run_findings(run, quality_key),
        "epochs": _epoch_table(run),
        "figures": _figures_rows(run),
        "config": _config_rows(run),
        "overrides": run.record.overrides,
        "env": sorted(flatten(run.env, max_list=64).items()),
        "layers": profile.get("layers") or [],
        "profile_figures": [(k, v) for k, v in profile.items() if k != "layers"],
    }


HEATMAP_MAX_CLASSES = 30  # beyond this a confusion matrix is too wide for an HTML table: the PNG is shown instead


def heatmap(ct: ClassTable) -> list[list[dict[str, Any]]]:
    """Cells of a confusion matrix as an HTML heatmap: count, background (viridis of the row share), text colour."""
    cmap = colormaps["viridis"]
    rows = []
    for row in ct.confusion:
        total = sum(row)
        cells = []
        for n in row:
            share = n / total if total else 0.0
            cells.append({"n": n, "share": share, "bg": to_hex(cmap(share)), "fg": "#000" if share > 0.55 else "#fff"})
        rows.append(cells)
    return rows


if TYPE_CHECKING:
    from trainlab.report.deployment import DeploymentSection


def _img(p: Plot) -> dict[str, Any]:
    return {"plot": p, "src": "data:image/png;base64," + base64.b64encode(p.png).decode("ascii")}


def render_html(
    study: StudyView,
    findings: list[Finding],
    comparison: Table,
    groups: list[Table],
    plots: ReportPlots,
    class_tables: list[ClassTable],
    deployment: DeploymentSection | None = None,
) -> str:
    """The page's HTML text."""
    present = study.present()
    conf = [
        {"table": ct, "heat": heatmap(ct) if len(ct.confusion) <= HEATMAP_MAX_CLASSES else None,
         "summary": confusion_summary(ct)}
        for ct in class_tables
    ]  # fmt: skip
    # The grid PNG only when some matrix is too wide for a table (the others show as heatmap tables).
    too_wide = any(len(ct.confusion) > HEATMAP_MAX_CLASSES for ct in class_tables)
    grid = _img(plots.confusion[0]) if plots.confusion and too_wide else None
    ctx = {
        "study": study,
        "dates": run_dates(study),
        "machine": machine_info(study),
        "findings": findings,
        "comparison": comparison,
        "groups": groups,
        "main_plots": [_img(p) for p in plots.main],
        "factor_plots": [_img(p) for p in plots.factors],
        "confusion": conf,
        "confusion_grid": grid,
        "statistics": statistics_text(study),
        "runs": [_run_context(r, study.quality_key) for r in study.runs],
        "definitions": present,
        "anchors": anchors,
        "SIG_MARK": SIG_MARK,
        "NOISE_MARK": NOISE_MARK,
        "BUSY_MARK": BUSY_MARK,
        "pvalues": _pvalue_rows(study, comparison),
        "deployment": deployment,
        "deployment_img": _img(deployment.plot) if deployment is not None and deployment.plot is not None else None,
        "tuning": tuning_table(study),
        "tuning_anchor": TUNING_ANCHOR,
        "tuning_plots": [_img(p) for p in plots.tuning],
        "trials": _trial_rows(study),
    }
    return _env().get_template("report.html.j2").render(**ctx)


def _pvalue_rows(study: StudyView, table: Table) -> list[dict[str, Any]]:
    """With repeats: Holm-adjusted p-values of each variant against the baseline, per headline metric."""
    if study.repeats < 2:
        return []
    out = []
    for row in table.rows:
        if row.baseline:
            continue
        cells = [("—" if c.p is None else f"{c.p:.3g}", c.mark == SIG_MARK) for c in row.cells]
        out.append({"name": row.name, "cells": cells})
    return out


def _trial_rows(study: StudyView) -> list[dict[str, Any]]:
    """A tuned study's every trial, for the Tuning section's listing: variant, 1-based number, the value of
    each tuned key, status, validation figure and why it failed; empty for an untuned study."""
    t = tuning(study)
    if t is None:
        return []
    m = BY_KEY[t.metric]
    return [
        {"variant": v.name, "number": r.trial.index + 1, "status": "pruned" if r.pruned_at else r.status,
         "error": r.error or (f"stopped after epoch {r.pruned_at}, worse than its median" if r.pruned_at else None),
         "values": [setting_text(r.trial.settings[k]) if k in r.trial.settings else "—" for k in t.config.params],
         "value": fmt_value(m, r.trial.value), "best": v.best is not None and v.best.index == r.trial.index}
        for v in t.variants
        for r in v.trials
    ]  # fmt: skip
