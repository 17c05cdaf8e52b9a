"""The report layer: reads a study's store and writes tables, plots, Markdown, CSV, LaTeX and one HTML page.

It reads only ``<out>/trainlab.db`` (measure, store and render are separate), so a report can be rebuilt at any
time without training, also while the study is still running (what is finished so far is shown).

Modules: :mod:`study` (read-only view of the store), :mod:`tables`, :mod:`finding` / :mod:`run_findings` /
:mod:`findings`, :mod:`plotting` / :mod:`plots` / :mod:`confusion_plot`, :mod:`deployment` (the deployment
table, notes and plot), :mod:`export` (CSV, Markdown, LaTeX), :mod:`html`, :mod:`build` (writes the files),
:mod:`compare` (``trainlab compare``). Labels, units and directions come from the metric catalogue,
``trainlab.measure.metrics``.
"""

from __future__ import annotations

from trainlab.report.build import DEFAULT_FORMATS, FORMATS, ReportPaths, build_report

__all__ = ["DEFAULT_FORMATS", "FORMATS", "ReportPaths", "build_report"]
