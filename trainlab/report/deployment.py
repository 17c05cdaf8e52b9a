"""Deployment results: float vs int8 / ONNX variants of the trained models, read from the store only.

:func:`deployment_rows` turns the store's ``deployments`` records (:class:`~trainlab.records.DeploymentRecord`,
written by the deployment step) into one :class:`DeploymentRow` per run x method with ratios and differences
against the float row of the same run; the table (terminal, Markdown), the size/latency plot,
``deploy/deployment.md``, deployments.csv and the report's section are drawn from those rows.

Ratios against the float row: ``size_ratio`` (float saved / variant saved: "x smaller"), ``latency_speedup``
(float p50 / variant p50: above 1 is faster), ``throughput_speedup``; ``d_acc_points``: accuracy difference in
percentage points. Timings are compared within one deployment session only (same process, same load); sizes
and accuracy always. A variant slower than float says so in its ``note``.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from rich.console import Console
from rich.table import Table

from trainlab.config import DEPLOY_BASELINE, DEPLOY_METHODS
from trainlab.layout import StudyDir
from trainlab.measure.format import csv_cell, fmt_spec, is_number
from trainlab.records import DeploymentFigures, DeploymentRecord, RunRecord
from trainlab.report.plots import Plot
from trainlab.store import Store

ANCHOR = "deployment"
INT8_METHODS = ("dynamic", "static")

# ------------------------------------------------------------------------------------------------------
# Rows


@dataclass
class DeploymentRow:
    """One row of the deployment table: a run x method, the figures it measured and its ratios and differences
    against the float row of the same run.

    Figures (units as in :class:`~trainlab.records.DeploymentFigures`) are None when the variant was not
    measured; ratios and differences are None when they cannot be compared (no done float row, another
    deployment session for timings). ``variant``: the run's variant (its run id when the store no longer holds
    the run); ``model``: the model's name from the run's config.
    """

    run_id: str
    variant: str
    model: str | None
    method: str
    status: str  # done | failed | skipped
    error: str | None
    saved_kb: float | None = None  # bytes / 2^10
    size_mb: float | None = None  # bytes / 2^20
    latency_p50_ms: float | None = None
    latency_p90_ms: float | None = None
    latency_p99_ms: float | None = None
    throughput_ips: float | None = None  # images/s
    test_acc: float | None = None  # fraction
    agreement: float | None = None  # fraction
    max_abs_diff: float | None = None  # logit units
    size_ratio: float | None = None  # float saved / variant saved: "x smaller"
    latency_speedup: float | None = None  # float p50 / variant p50: above 1 is faster
    throughput_speedup: float | None = None  # variant images/s / float images/s
    same_session: bool = False  # measured in the float row's deployment session: timings compared
    d_acc_points: float | None = None  # accuracy against float, percentage points
    runtime: str | None = None
    quantized_layers: list[str] | None = None
    float_layers: list[str] | None = None
    compiled: bool | None = None
    note: str = ""  # plain words for what the numbers do not show by themselves (:func:`_note`)


def _ratio(num: Any, den: Any) -> float | None:
    if is_number(num) and isinstance(den, int | float) and den > 0:
        return num / den
    return None


def deployment_rows(store: Store) -> list[DeploymentRow]:
    """One row per run x method (the float baseline first), with ratios and differences against float.

    Fields (:class:`DeploymentRow`): run_id, variant, model, method, status, error, saved_kb, size_mb,
    latency_p50_ms, latency_p90_ms, latency_p99_ms, throughput_ips, test_acc, agreement, max_abs_diff,
    size_ratio, latency_speedup, throughput_speedup, same_session, d_acc_points, runtime, quantized_layers,
    float_layers, compiled, note.
    """
    runs = {r.run_id: r for r in store.runs(plan_only=False)}
    by_run: dict[str, dict[str, DeploymentRecord]] = {}
    for rec in store.deployments():
        by_run.setdefault(rec.run_id, {})[rec.method] = rec
    plan = [r for r in (store.meta("plan", []) or []) if r in by_run]
    order = plan + [r for r in by_run if r not in plan]  # runs of older plans last
    known = (DEPLOY_BASELINE, *DEPLOY_METHODS)
    rows: list[DeploymentRow] = []
    for run_id in order:
        recs = by_run[run_id]
        run = runs.get(run_id)
        base_rec = recs.get(DEPLOY_BASELINE)
        base = base_rec.figures if base_rec is not None else DeploymentFigures()
        base_ok = base_rec is not None and base_rec.status == "done"
        for method in (*known, *sorted(set(recs) - set(known))):
            if method in recs:
                rows.append(_row(run_id, run, method, recs[method], base, base_ok))
    return rows


def _row(
    run_id: str, run: RunRecord | None, method: str, rec: DeploymentRecord, base: DeploymentFigures, base_ok: bool
) -> DeploymentRow:
    """One record's row; ``run``: the run's record (None when the store no longer holds it); ``base``: the
    figures of the run's float row, ``base_ok``: whether it is done."""
    f = rec.figures
    # A failed onnx row (logits beyond tolerance) was still measured: its figures are shown.
    done = rec.status == "done" or (method == "onnx" and f.latency_p50_ms is not None)
    shown = f if done else DeploymentFigures()  # the figures copied into the row: none when not measured
    ok = done and base_ok
    # Timings compare within one deployment session (same process, same load); sizes and accuracy always.
    timed = ok and f.session == base.session
    acc, base_acc = f.test_acc, base.test_acc
    row = DeploymentRow(
        run_id=run_id,
        variant=run.variant if run else run_id,
        model=(run.config if run else {}).get("model", {}).get("name"),
        method=method,
        status=rec.status,
        error=rec.error,
        saved_kb=shown.saved_kb,
        size_mb=shown.size_mb,
        latency_p50_ms=shown.latency_p50_ms,
        latency_p90_ms=shown.latency_p90_ms,
        latency_p99_ms=shown.latency_p99_ms,
        throughput_ips=shown.throughput_ips,
        test_acc=shown.test_acc,
        agreement=shown.agreement,
        max_abs_diff=shown.max_abs_diff,
        size_ratio=_ratio(base.saved_kb, f.saved_kb) if ok else None,
        latency_speedup=_ratio(base.latency_p50_ms, f.latency_p50_ms) if timed else None,
        throughput_speedup=_ratio(f.throughput_ips, base.throughput_ips) if timed else None,
        same_session=timed,
        d_acc_points=100.0 * (acc - base_acc) if ok and acc is not None and base_acc is not None else None,
        runtime=shown.runtime,
        quantized_layers=shown.quantized_layers,
        float_layers=shown.float_layers,
        compiled=shown.compiled,
    )
    row.note = _note(row, f, method)
    return row


def _note(row: DeploymentRow, figures: DeploymentFigures, method: str) -> str:
    """Plain words for what the numbers do not show by themselves (slower, layers left in float, errors)."""
    if row.status not in ("done",) and row.error:
        return row.error
    parts: list[str] = []
    if method == DEPLOY_BASELINE:
        parts.append("baseline, eager float32")
    if method != DEPLOY_BASELINE and row.status == "done" and not row.same_session:
        parts.append("measured in an earlier deployment than the float row: timings not compared (deploy again)")
    speed = row.latency_speedup
    if speed is not None and method != DEPLOY_BASELINE:
        if speed < 0.95:
            parts.append(f"batch-1 latency {1 / speed:.2f}x slower than float")
        elif speed > 1.05:
            parts.append(f"batch-1 latency {speed:.2f}x faster")
        else:
            parts.append("batch-1 latency about the same as float")
    tput = row.throughput_speedup
    if tput is not None and method != DEPLOY_BASELINE and tput < 0.95:
        parts.append(f"throughput {1 / tput:.2f}x lower")
    elif tput is not None and method != DEPLOY_BASELINE and tput > 1.05:
        parts.append(f"throughput {tput:.2f}x higher")
    floats = figures.float_layers or []
    if floats and method in INT8_METHODS:
        shown = ", ".join(floats[:3]) + (f" +{len(floats) - 3} more" if len(floats) > 3 else "")
        parts.append(f"float: {shown}")
    parts += [n for n in figures.notes or [] if n]
    return "; ".join(parts)


# ------------------------------------------------------------------------------------------------------
# Table and plot


TABLE_COLUMNS = (
    ("variant", "run"),
    ("method", "method"),
    ("saved_kb", "saved kB"),
    ("size_ratio", "x smaller"),
    ("size_mb", "mem MB"),
    ("latency_p50_ms", "p50 ms"),
    ("latency_p90_ms", "p90 ms"),
    ("latency_p99_ms", "p99 ms"),
    ("latency_speedup", "x faster b1"),
    ("throughput_ips", "img/s"),
    ("test_acc", "test acc %"),
    ("d_acc_points", "Δ acc pts"),
    ("note", "note"),
)
LEGEND = (
    "saved kB: the saved file / 2^10; mem MB: tensors held in memory / 2^20; x smaller and x faster b1: float /"
    " variant (above 1 is better); p50/p90/p99: batch-1 latency after warm-up; img/s: throughput at the"
    " throughput batch; Δ acc: percentage points against float; int8 runs through torch.compile unless its note"
    " says otherwise."
)


def table_cells(row: DeploymentRow) -> list[str]:
    """The row's cells, formatted, in :data:`TABLE_COLUMNS` order."""
    return [
        str(row.variant),
        row.method,
        fmt_spec(row.saved_kb, ".1f"),
        fmt_spec(row.size_ratio, ".2f"),
        fmt_spec(row.size_mb, ".3f"),
        fmt_spec(row.latency_p50_ms, ".3f"),
        fmt_spec(row.latency_p90_ms, ".3f"),
        fmt_spec(row.latency_p99_ms, ".3f"),
        fmt_spec(row.latency_speedup, ".2f"),
        fmt_spec(row.throughput_ips, ",.0f"),
        fmt_spec(100 * row.test_acc if row.test_acc is not None else None, ".2f"),
        fmt_spec(row.d_acc_points, "+.2f"),
        row.note or "",
    ]


def markdown_table(rows: list[DeploymentRow]) -> str:
    """The deployment table as GitHub Markdown, its legend below."""
    head = [h for _, h in TABLE_COLUMNS]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(c.replace("|", "/") for c in table_cells(r)) + " |" for r in rows]
    return "\n".join(lines) + "\n\n" + LEGEND


def print_table(rows: list[DeploymentRow], console: Console | None = None) -> None:
    """The deployment table on the terminal (rich); each row's note is printed under the table, numbered."""
    console = console or Console()
    table = Table(title="Deployment: float vs int8 / ONNX (CPU)")
    table.add_column("#", justify="right")
    for key, header in TABLE_COLUMNS[:-1]:
        numeric = key not in ("variant", "method")
        table.add_column(header, justify="right" if numeric else "left")
    for i, row in enumerate(rows, start=1):
        style = "red" if row.status == "failed" else ("yellow" if row.status == "skipped" else None)
        table.add_row(str(i), *table_cells(row)[:-1], style=style)
    console.print(table)
    for i, row in enumerate(rows, start=1):
        if row.note:
            console.print(f"  [{i}] {row.method}: {row.note}", markup=False, highlight=False)
    console.print(LEGEND, markup=False, highlight=False)


def plot_deployment(rows: list[DeploymentRow], path: str | Path) -> Path | None:
    """Saved size (kB, log) against batch-1 p50 latency (ms), one point per run x method, accuracy annotated.

    Drawn with matplotlib's Agg canvas into ``path`` (PNG); None when no row has both figures.
    """
    points = [r for r in rows if r.saved_kb and r.latency_p50_ms]
    if not points:
        return None
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig = Figure(figsize=(7.5, 4.8), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    markers = {DEPLOY_BASELINE: "o", "dynamic": "s", "static": "D", "onnx": "^"}
    colours = {DEPLOY_BASELINE: "#1f77b4", "dynamic": "#ff7f0e", "static": "#2ca02c", "onnx": "#9467bd"}
    variants = list(dict.fromkeys(r.variant for r in points))
    for method in dict.fromkeys(r.method for r in points):
        sel = [r for r in points if r.method == method]
        ax.scatter(
            [r.saved_kb for r in sel],
            [r.latency_p50_ms for r in sel],
            marker=markers.get(method, "x"),
            color=colours.get(method, "#7f7f7f"),
            s=50,
            label=method,
            zorder=3,
        )
        for r in sel:
            acc = f"{100 * r.test_acc:.2f}%" if r.test_acc is not None else ""
            label = acc if len(variants) == 1 else f"{r.variant} {acc}"
            ax.annotate(label, (r.saved_kb, r.latency_p50_ms), textcoords="offset points", xytext=(6, 4), fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("saved size (kB, log scale)")
    ax.set_ylabel("batch-1 latency p50 (ms)")
    ax.set_title("Deployment variants: size vs latency (test accuracy annotated)", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    return path


# ------------------------------------------------------------------------------------------------------
# Outputs: deploy/deployment.md and deploy/deployment.png, the report's section


def write_deployment_outputs(out_dir: str | Path, console: Console | None = None) -> list[DeploymentRow]:
    """Print the study's deployment table, write ``deploy/deployment.png`` and ``deploy/deployment.md``.

    What the ``deploy`` command shows once the variants are measured; returns the rows.
    """
    console = console or Console()
    study = StudyDir(out_dir)
    rows = deployment_rows(Store(study.require_db(), readonly=True))
    print_table(rows, console)
    plot = plot_deployment(rows, study.deployment_plot)
    study.deployment_md.parent.mkdir(parents=True, exist_ok=True)
    study.deployment_md.write_text(markdown_table(rows) + "\n", encoding="utf-8")
    if plot is not None:
        console.print(f"plot: {plot}")
    console.print(f"table: {study.deployment_md}")
    return rows


@dataclass
class DeploymentSection:
    """The deployment table (already formatted cells), its notes and legend, and the plot."""

    headers: list[str]
    rows: list[list[str]]
    statuses: list[str]
    notes: list[tuple[int, str, str]]  # (row number, method, note)
    legend: str
    markdown: str
    plot: Plot | None


# deployments.csv: one row per run x method, the table's figures unrounded, plus status, error and the run id;
# each column is a DeploymentRow field of that name.
CSV_COLUMNS = ("run_id", "variant", "model", "method", "status", "error", "saved_kb", "size_ratio", "size_mb",
               "latency_p50_ms", "latency_p90_ms", "latency_p99_ms", "latency_speedup", "throughput_ips",
               "throughput_speedup", "test_acc", "d_acc_points", "agreement", "max_abs_diff", "note")  # fmt: skip


def deployments_csv(store: Store) -> str | None:
    """Text of deployments.csv (the deployment table beside results.csv), or None without deployments."""
    if not store.deployments():
        return None
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in deployment_rows(store):
        writer.writerow([csv_cell(getattr(row, k)) for k in CSV_COLUMNS])
    return buf.getvalue()


def deployment_section(out_dir: Path, plot_dir: Path | None) -> DeploymentSection | None:
    """Read the deployment records of the study in ``out_dir``; draw the plot into ``plot_dir`` when given.

    None when the study has no deployment records.
    """
    store = Store(StudyDir(out_dir).db, readonly=True)
    if not store.deployments():
        return None
    rows = deployment_rows(store)
    plot = None
    if plot_dir is not None:
        path = plot_dir / "deployment.png"
        if plot_deployment(rows, path) is not None:
            plot = Plot(
                id=f"{ANCHOR}-plot",
                name="deployment",
                title="Deployment: size vs batch-1 latency",
                caption="Saved size (kB, log scale) against batch-1 p50 latency (ms) of each trained model as float, "
                "int8 and ONNX; the label gives test accuracy. Down and left is smaller and faster.",
                alt="Scatter of saved model size against batch-1 latency for the float, int8 and ONNX variants, "
                "annotated with test accuracy.",
                png=path.read_bytes(),
            )
    cells = [table_cells(r) for r in rows]
    return DeploymentSection(
        headers=[h for _, h in TABLE_COLUMNS[:-1]],
        rows=[c[:-1] for c in cells],
        statuses=[r.status for r in rows],
        notes=[(i, r.method, r.note) for i, r in enumerate(rows, start=1) if r.note],
        legend=LEGEND,
        markdown=markdown_table(rows),
        plot=plot,
    )
