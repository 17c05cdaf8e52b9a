"""trainlab: an experiment bench for neural-network training.

Public API (the CLI only parses arguments for these):

- :func:`load_study` — read, override and validate a study file; expand it into runs.
- :func:`run` — run a study (each run in its own process), store the results, write the report.
- :func:`build_report` — rebuild a study's report from its store, without training.
- :func:`profile` — the anatomy and cost of a model.

They are imported on first use, so ``import trainlab`` stays light (no torch import until a function is called).
``trainlab.report`` is the report package; its :func:`~trainlab.report.build_report` is ``build_report`` here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from trainlab.version import __version__

if TYPE_CHECKING:
    from pathlib import Path

    from trainlab.engine.runner import StudyResult
    from trainlab.layout import ReportPaths
    from trainlab.measure.complexity import Profile
    from trainlab.study import Study


def load_study(source: Any, overrides: Any = None) -> Study:
    """See :func:`trainlab.study.load_study`."""
    from trainlab.study import load_study as _load  # deferred: `import trainlab` stays light

    return _load(source, overrides)


def run(study: Any, overrides: Any = None, out: Any = None, **kwargs: Any) -> StudyResult:
    """See :func:`trainlab.api.run`."""
    from trainlab.api import run as _run  # deferred: `import trainlab` stays light

    return _run(study, overrides, out, **kwargs)


def build_report(out_dir: str | Path, **kwargs: Any) -> ReportPaths:
    """See :func:`trainlab.report.build_report`."""
    from trainlab.report import build_report as _build  # deferred: `import trainlab` stays light

    return _build(out_dir, **kwargs)


def profile(model: Any, input_shape: Any, **kwargs: Any) -> Profile:
    """See :func:`trainlab.measure.complexity.profile_model`."""
    from trainlab.measure.complexity import profile_model  # deferred: `import trainlab` stays light

    return profile_model(model, input_shape, **kwargs)


__all__ = ["__version__", "build_report", "load_study", "profile", "run"]
