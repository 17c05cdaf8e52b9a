"""MLflow: one parent run per study, one nested run per trainlab run, through MLflow's own client.

- experiment: the study's name; its artifacts under ``<out>/mlartifacts`` unless the experiment exists already;
- parent run: the study (tags ``trainlab.study``, ``trainlab.out``; artifacts: report.html, report.md,
  results.csv, epochs.csv and the plots);
- nested run per trainlab run (``mlflow.parentRunId``): params = the resolved config as dotted keys; metrics per
  epoch with ``step = epoch`` (train/test loss and accuracy, epoch/data/compute time, learning rate, ...); the
  final per-run figures as metrics; tags variant, seed, run id, device, git commit, status;
- tracking URI: the one given (``--tracking-uri``), else ``MLFLOW_TRACKING_URI``, else a SQLite store in the
  study folder (``sqlite:///<out>/mlflow.db``, MLflow's own default backend kind).

Runs are found again by their ``trainlab.run_id`` tag, and an epoch already logged is not logged again, so a
resumed study, a second export or an export after live tracking add nothing twice.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any

from trainlab.engine.events import EpochEnded, Event, RunEnded, RunStarted
from trainlab.errors import ConfigError
from trainlab.layout import StudyDir
from trainlab.track.base import config_of, dotted, epoch_figures, final_figures, run_label

PARAM_MAX = 6000  # MLflow's limit on a param value's length (characters)
STATUS = {"done": "FINISHED", "diverged": "FAILED", "failed": "FAILED", "skipped": "KILLED"}


def _text(value: Any) -> str:
    """A param's value as the study file writes it: strings as they are, the rest as JSON (true, [64, 32])."""
    return value if isinstance(value, str) else json.dumps(value)


def _mlflow() -> Any:
    try:
        import mlflow  # deferred: an optional extra (trainlab[mlflow]), slow to import
        from mlflow.tracking import MlflowClient  # deferred with mlflow itself
    except ImportError:
        raise ConfigError("tracking with MLflow needs an optional extra: pip install 'trainlab[mlflow]'") from None
    for name in ("mlflow.store.db.utils", "alembic"):  # schema set-up chatter on every new SQLite store
        logging.getLogger(name).setLevel(logging.WARNING)
    return mlflow, MlflowClient


class MlflowTracker:
    """Sends a study to MLflow (live, as a sink, or replayed from the store by ``trainlab export``)."""

    name = "mlflow"

    def __init__(self, layout: StudyDir, tracking_uri: str | None = None) -> None:
        self.mlflow, client_cls = _mlflow()
        self.layout = layout
        self.uri = (
            tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{layout.root.resolve() / 'mlflow.db'}"
        )
        self.client = client_cls(tracking_uri=self.uri)
        self.experiment_id: str | None = None
        self.parent_id: str | None = None
        self.runs: dict[str, str] = {}  # trainlab run id -> MLflow run id
        self.logged_steps: dict[str, set[int]] = {}  # MLflow run id -> epochs already logged

    # ---- the study -------------------------------------------------------------------------------------------
    def study_started(self, study_config: dict[str, Any], swept_keys: list[str]) -> None:
        name = (study_config.get("study") or {}).get("name") or "study"
        exp = self.client.get_experiment_by_name(name)
        if exp is None:
            artifacts = (self.layout.root.resolve() / "mlartifacts").as_uri()
            self.experiment_id = self.client.create_experiment(name, artifact_location=artifacts)
        else:
            self.experiment_id = exp.experiment_id
        # MLflow 3's UI opens an experiment in its GenAI view unless it is marked as model training.
        self.client.set_experiment_tag(self.experiment_id, "mlflow.experimentKind", "custom_model_development")
        out = str(self.layout.root.resolve())
        found = self.client.search_runs(
            [self.experiment_id], filter_string=f"tags.`trainlab.kind` = 'study' and tags.`trainlab.out` = '{out}'"
        )
        if found:
            self.parent_id = found[0].info.run_id
        else:
            tags = {"trainlab.kind": "study", "trainlab.study": name, "trainlab.out": out,
                    "trainlab.swept_keys": ", ".join(swept_keys)}  # fmt: skip
            self.parent_id = self.client.create_run(self.experiment_id, run_name=name, tags=tags).info.run_id
        desc = (study_config.get("study") or {}).get("description")
        if desc:
            self.client.set_tag(self.parent_id, "mlflow.note.content", desc)

    def study_finished(self, report_files: list[Path]) -> None:
        if self.parent_id is None:
            return
        for path in report_files:
            if path.is_dir():
                self.client.log_artifacts(self.parent_id, str(path), artifact_path=path.name)
            else:
                self.client.log_artifact(self.parent_id, str(path))
        self.client.set_terminated(self.parent_id, "FINISHED")

    # ---- runs ------------------------------------------------------------------------------------------------
    def _run_id(self, spec: Any) -> str:
        if spec.run_id in self.runs:
            return self.runs[spec.run_id]
        assert self.experiment_id is not None and self.parent_id is not None, "study_started comes first"
        found = self.client.search_runs([self.experiment_id], filter_string=f"tags.`trainlab.run_id` = '{spec.run_id}'")
        if found:
            mid = found[0].info.run_id
            history = self.client.get_metric_history(mid, "train_loss")
            self.logged_steps[mid] = {m.step for m in history}
        else:
            tags = {"mlflow.parentRunId": self.parent_id, "trainlab.run_id": spec.run_id, "trainlab.kind": "run",
                    "trainlab.study": spec.study, "variant": spec.variant, "seed": str(spec.seed)}  # fmt: skip
            mid = self.client.create_run(self.experiment_id, run_name=run_label(spec), tags=tags).info.run_id
            self._log_params(mid, spec)
            self.logged_steps[mid] = set()
        self.runs[spec.run_id] = mid
        return mid

    def _log_params(self, mid: str, spec: Any) -> None:
        from mlflow.entities import Param  # deferred with mlflow itself

        params = [Param(k, _text(v)[:PARAM_MAX]) for k, v in sorted(dotted(config_of(spec)).items())]
        for i in range(0, len(params), 100):  # MLflow takes at most 100 params per batch
            self.client.log_batch(mid, params=params[i : i + 100])

    def event(self, spec: Any, event: Event) -> None:
        if isinstance(event, RunStarted):
            mid = self._run_id(spec)
            env = event.env or {}
            for key in ("device", "git_commit", "hostname"):
                if env.get(key):
                    self.client.set_tag(mid, key, str(env[key]))
            for row in event.history:  # a resumed run's earlier epochs, if this tracker missed them
                self._log_epoch(mid, row.to_record())
        elif isinstance(event, EpochEnded):
            self._log_epoch(self._run_id(spec), event.row.to_record())
        elif isinstance(event, RunEnded):
            mid = self._run_id(spec)
            self._log_metrics(mid, final_figures(event.outcome.results), step=0)
            self.client.set_tag(mid, "status", event.outcome.status)
            if event.outcome.error:
                self.client.set_tag(mid, "error", event.outcome.error[:PARAM_MAX])
            self.client.set_terminated(mid, STATUS.get(event.outcome.status, "FINISHED"))

    def _log_epoch(self, mid: str, row: dict[str, Any]) -> None:
        step = int(row["epoch"])
        if step in self.logged_steps.setdefault(mid, set()):
            return
        self._log_metrics(mid, epoch_figures(row), step=step)
        self.logged_steps[mid].add(step)

    def _log_metrics(self, mid: str, figures: dict[str, float], step: int) -> None:
        from mlflow.entities import Metric  # deferred with mlflow itself

        now = int(time.time() * 1000)
        metrics = [Metric(k, v, now, step) for k, v in figures.items()]
        for i in range(0, len(metrics), 1000):  # MLflow takes at most 1000 metrics per batch
            self.client.log_batch(mid, metrics=metrics[i : i + 1000])
