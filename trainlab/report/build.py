"""Writing a study's report files from its store: CSV, LaTeX, the plots, report.md and report.html."""

from __future__ import annotations

import os
from pathlib import Path

from trainlab.errors import DiskFull, OutputError, TrainlabError
from trainlab.layout import ReportPaths, StudyDir
from trainlab.names import DEFAULT_FORMATS, FORMATS
from trainlab.report.deployment import deployment_section, deployments_csv
from trainlab.report.export import epochs_csv, render_latex, render_markdown, results_csv
from trainlab.report.findings import study_findings
from trainlab.report.html import render_html
from trainlab.report.plots import ReportPlots, all_plots
from trainlab.report.study import StudyView
from trainlab.report.tables import class_tables, comparison_table, group_tables, md_escape
from trainlab.report.tuning import tuning_markdown, tuning_table
from trainlab.store import Store, is_disk_full


def _write(path: Path, data: str | bytes) -> None:
    """Write atomically (temp file + rename): a browser or reader never sees half a report."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        if isinstance(data, bytes):
            tmp.write_bytes(data)
        else:
            tmp.write_text(data, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        if is_disk_full(exc):
            raise DiskFull(f"the disk holding {path.parent} is full: {path.name} not written") from None
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None


# The sections of report.md that follow the Tuning section: it goes before the first of them there is.
_AFTER_TUNING = ("## Plots\n", "## Confusion matrices", "## Deployment\n", "## Statistics\n")


def with_tuning_section(md: str, study: StudyView, plots: ReportPlots) -> str:
    """``md`` (report.md) with a tuned study's Tuning section (its table, legend and plots) after the tables,
    where report.html shows it; ``md`` as it is for an untuned study."""
    table = tuning_table(study)
    if table is None:
        return md
    section = ["## Tuning\n", tuning_markdown(table)]
    for p in plots.tuning:
        section += [
            f"### {md_escape(p.title)}\n",
            f"![{md_escape(p.alt)}](plots/{p.name}.png)\n",
            f"_{md_escape(p.caption)}_\n",
        ]
    text = "\n".join(section) + "\n"
    at = min((i for h in _AFTER_TUNING if (i := md.find("\n" + h)) >= 0), default=len(md) - 1) + 1
    return md[:at] + text + md[at:]


def build_report(out_dir: str | Path, formats: list[str] | None = None, dest: str | Path | None = None) -> ReportPaths:
    """Write the report files of the study in ``out_dir`` and return their paths.

    ``formats`` is any of ``html``, ``md``, ``csv``, ``latex`` (default: html, md, csv). ``dest``: the folder to
    write them to (default ``out_dir``; the store is only read, so a study on read-only media can be reported
    elsewhere). Returns the paths written (:class:`~trainlab.layout.ReportPaths`: ``html``, ``md``, ``results_csv``,
    ``epochs_csv``, ``deployments_csv`` (when the study has deployments), ``latex`` and ``plots`` (the folder);
    None for the others).
    Raises :class:`trainlab.errors.TrainlabError` when ``out_dir`` holds no ``trainlab.db``, and
    :class:`~trainlab.errors.OutputError` when ``dest`` cannot be written.
    """
    wanted = list(dict.fromkeys(formats or DEFAULT_FORMATS))
    unknown = [f for f in wanted if f not in FORMATS]
    if unknown:
        raise TrainlabError(f"unknown report format(s) {', '.join(unknown)}; allowed: {', '.join(FORMATS)}")
    out_dir = Path(out_dir)
    study = StudyView.load(out_dir)
    layout = StudyDir(dest if dest is not None else out_dir)
    try:
        layout.prepare()
    except OutputError as exc:
        hint = "" if dest is not None else f"; write the report elsewhere: trainlab report {out_dir} --to DIR"
        raise OutputError(f"{exc}{hint}") from None
    paths = ReportPaths()

    if "csv" in wanted:
        paths.results_csv = layout.report_file("results.csv")
        _write(paths.results_csv, results_csv(study))
        paths.epochs_csv = layout.report_file("epochs.csv")
        _write(paths.epochs_csv, epochs_csv(study))
        deployments = deployments_csv(Store(StudyDir(out_dir).db, readonly=True))
        if deployments is not None:  # a study with [deploy] (or after `trainlab deploy`): its table, beside
            paths.deployments_csv = layout.report_file("deployments.csv")
            _write(paths.deployments_csv, deployments)

    if not {"html", "md", "latex"} & set(wanted):
        return paths
    findings = study_findings(study)
    comparison = comparison_table(study)
    groups = group_tables(study)
    classes = class_tables(study)

    if "latex" in wanted:
        paths.latex = layout.report_file("report.tex")
        _write(paths.latex, render_latex(study, comparison, groups, classes))

    if {"html", "md"} & set(wanted):
        plots = all_plots(study, classes)
        plot_dir = layout.plots
        plot_dir.mkdir(exist_ok=True)
        written = set()
        for p in plots.every:
            _write(plot_dir / f"{p.name}.png", p.png)
            written.add(f"{p.name}.png")
        deployment = deployment_section(out_dir, plot_dir)
        if deployment is not None and deployment.plot is not None:
            written.add("deployment.png")
        for stale in plot_dir.glob("*.png"):  # figures of variants no longer in the study
            if stale.name not in written:
                stale.unlink()
        paths.plots = plot_dir
        if "md" in wanted:
            paths.md = layout.report_file("report.md")
            md = render_markdown(study, findings, comparison, groups, plots, classes, deployment)
            _write(paths.md, with_tuning_section(md, study, plots))
        if "html" in wanted:
            paths.html = layout.report_file("report.html")
            _write(paths.html, render_html(study, findings, comparison, groups, plots, classes, deployment))
    return paths


__all__ = ["DEFAULT_FORMATS", "FORMATS", "ReportPaths", "build_report"]
