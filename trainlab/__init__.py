"""trainlab: an experiment bench for neural-network training.

Public API (the CLI only parses arguments for these):

- :func:`load_study` — read, override and validate a study file; expand it into runs.
- :func:`run` — run a study (each run in its own process), store the results, write the report.
- :func:`report` — rebuild a study's report from its store, without training.
- :func:`profile` — the anatomy and cost of a model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# The report package is imported here (it is light: its heavy modules load lazily) so that the function
# `report` defined below is what `trainlab.report` names; a later first import of the package would
# otherwise replace the attribute with the module.
import trainlab.report as _report_package  # noqa: F401

if TYPE_CHECKING:
    from pathlib import Path


def load_study(source: Any, overrides: Any = None) -> Any:
    """See :func:`trainlab.config.load_study`."""
    from trainlab.config import load_study as _load

    return _load(source, overrides)


def run(study: Any, overrides: Any = None, out: Any = None, **kwargs: Any) -> Any:
    """See :func:`trainlab.runner.run`."""
    from trainlab.runner import run as _run

    return _run(study, overrides, out, **kwargs)


def report(out_dir: str | Path, **kwargs: Any) -> dict[str, Path]:
    """See :func:`trainlab.report.build_report`."""
    from trainlab.report import build_report

    return build_report(out_dir, **kwargs)


def profile(model: Any, input_shape: Any, **kwargs: Any) -> Any:
    """See :func:`trainlab.measure.complexity.profile_model`."""
    from trainlab.measure.complexity import profile_model

    return profile_model(model, input_shape, **kwargs)


__all__ = ["__version__", "load_study", "profile", "report", "run"]
