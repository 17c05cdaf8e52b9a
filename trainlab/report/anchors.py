"""Element ids in report.html that findings and tables link to (kept in one place so links never dangle)."""

from __future__ import annotations

import hashlib

FINDINGS = "findings"
COMPARISON = "comparison"
TABLES = "tables"
PLOTS = "plots"
CURVES = "plot-curves"
TIME_SPLIT = "plot-time-split"
FACTORS = "plot-factors"
PARETO = "plot-pareto"
CONFUSION = "confusion"
STATISTICS = "statistics"
RUNS = "runs"
DEFINITIONS = "definitions"


def run(run_id: str) -> str:
    """Id of a run's detail block."""
    return f"run-{run_id}"


def metric(key: str) -> str:
    """Id of a metric's definition."""
    return f"def-{key}"


def slug(text: str) -> str:
    """A safe, unique id fragment for user text (variant names may hold '/', '=', ','): letters + a short hash."""
    safe = "".join(c if c.isascii() and c.isalnum() else "-" for c in text)[:40]
    return f"{safe}-{hashlib.sha1(text.encode()).hexdigest()[:6]}"
