"""The names the command line offers as choices, kept where reading them costs nothing (no torch import).

Each tuple is the one definition of its names; the modules that act on them import it from here:
deployment methods (``trainlab.config``, ``trainlab.deploy``), executors (``trainlab.engine.runner``), report
formats (``trainlab.report``) and trackers (``trainlab.track``).
"""

from __future__ import annotations

# Deployment variants of a trained float model, in table order; the float model itself is measured alongside
# them under the method name DEPLOY_BASELINE.
DEPLOY_METHODS = ("dynamic", "static", "onnx")
DEPLOY_BASELINE = "float"
# Where runs execute: one spawned process per run (default), this process, or a Ray cluster's tasks.
EXECUTORS = ("subprocess", "inline", "ray")
# Report files: every format, and those written when none is asked for.
FORMATS = ("html", "md", "csv", "latex")
DEFAULT_FORMATS = ("html", "md", "csv")
# Experiment trackers.
TRACKERS = ("mlflow", "tensorboard")
