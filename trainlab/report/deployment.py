"""The report's deployment section: float vs int8 / ONNX variants of the trained models (``[deploy]``).

Rows, formatting and the size/latency plot come from :mod:`trainlab.deploy`, which measured them; this module
only packages them for the HTML page and report.md. Absent when the study has no deployment records.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from trainlab.report.plots import Plot
from trainlab.store import Store

ANCHOR = "deployment"


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


def deployment_section(out_dir: Path, plot_dir: Path | None) -> DeploymentSection | None:
    """Read the deployment records of the study in ``out_dir``; draw the plot into ``plot_dir`` when given."""
    store = Store(out_dir / "trainlab.db")
    if not store.deployments():
        return None
    from trainlab.deploy import LEGEND, TABLE_COLUMNS, deployment_rows, markdown_table, plot_deployment, table_cells

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
        statuses=[r["status"] for r in rows],
        notes=[(i, r["method"], r["note"]) for i, r in enumerate(rows, start=1) if r["note"]],
        legend=LEGEND,
        markdown=markdown_table(rows),
        plot=plot,
    )
