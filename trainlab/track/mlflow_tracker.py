"""MLflow: one parent run per study, one nested run per trainlab run, through MLflow's own client.

- experiment: the study's name; its artifacts under ``<out>/mlartifacts`` unless the experiment exists already;
- parent run: the study (tags ``trainlab.study``, ``trainlab.out``; artifacts: report.html, report.md,
  results.csv, epochs.csv and the plots; metrics: per variant, the mean of each summary figure as
  ``<figure>/<variant>``, so the experiment's charts compare the variants without expanding the parent);
- figure names: ``track.base.tracker_name`` (``test/acc_pct``, ``time/epoch_time_s``): grouped, fractions in %;
- nested run per trainlab run (``mlflow.parentRunId``): params = the resolved config as dotted keys; metrics per
  epoch with ``step = epoch`` (train/test loss and accuracy, epoch/data/compute time, learning rate, ...); the
  final per-run figures as metrics; tags variant, seed, run id, device, git commit, status;
- tracking URI: the one given (``--tracking-uri``), else ``MLFLOW_TRACKING_URI``, else a SQLite store in the
  study folder (``sqlite:///<out>/mlflow.db``, MLflow's own default backend kind).

Runs are found again by their ``trainlab.run_id`` tag (the study's parent run by its output folder), and a
figure already logged is not logged again — an epoch's figure by (key, epoch), a final figure unless its value
changed — so a resumed study, a second export or an export after live tracking add nothing twice.

A tracker never holds the driver up for long: the URI's scheme is checked when the tracker is made; an http(s)
server is probed (``/health``, :data:`PROBE_S`) before the first call, so a dead or silent one fails in seconds;
every call runs with MLflow's HTTP retries and timeout bounded (:data:`HTTP_BOUNDS`, unless the user set those
variables); and the first failure disables the tracker for the rest of the study (``base.guarded``).
"""

from __future__ import annotations

import contextlib
import http.client
import importlib.metadata
import json
import logging
import os
import re
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from trainlab.engine.events import EpochEnded, Event, RunEnded, RunStarted
from trainlab.errors import ConfigError
from trainlab.layout import StudyDir
from trainlab.records import RunIdentity
from trainlab.track.base import (
    EPOCH_NAMES,
    Guarded,
    TrackingError,
    config_of,
    dotted,
    epoch_figures,
    final_figures,
    guarded,
    named_figures,
    run_label,
)


def _metric_safe(text: str) -> str:
    """``text`` in the characters MLflow allows in a metric name: ``=`` reads as ``:`` (``lr:0.05``), any other
    character MLflow refuses as ``_``."""
    return re.sub(r"[^\w\-. :/]", "_", text.replace("=", ":"))


# The parent run's summary figures when the study names no [study] columns.
SUMMARY_COLUMNS = ("test_acc", "test_r2", "test_loss", "train_time_s", "latency_p50_ms", "params")
PARAM_MAX = 6000  # MLflow's limit on a param value's length (characters)
STATUS = {"done": "FINISHED", "diverged": "FAILED", "failed": "FAILED", "skipped": "KILLED"}
PROBE_S = 3.0  # how long the probe of an http(s) tracking server waits to connect, then for its answer (s)
# MLflow's HTTP client for trainlab's calls (MLflow's defaults: 7 retries, backoff factor 2 s, 120 s timeout: a
# dead server holds each call ~4 minutes). Here a call to a dead server fails in under 1 s, and one to a server
# that accepts and stays silent in ~2 x 4 s; one retry still rides out a single transient 429/5xx. A variable
# the user set is left as it is.
HTTP_BOUNDS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",  # s; an int for MLflow. urllib3 waits 0 before the first retry
    "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0.5",  # s, at most
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "4",  # s, to connect and for each answer
}
DB_ENGINES = ("sqlite", "postgresql", "mysql", "mssql")  # MLflow's SQLAlchemy stores (also ENGINE+DRIVER)
SCHEMES = ("file", "http", "https", *DB_ENGINES, "databricks")


def _plugin_schemes() -> list[str]:
    """The schemes of installed MLflow tracking-store plugins (entry point group ``mlflow.tracking_store``)."""
    return sorted({ep.name for ep in importlib.metadata.entry_points(group="mlflow.tracking_store")})


def shown(uri: str) -> str:
    """``uri`` as messages print it: without a password in it."""
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    return urlunsplit(parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@")))


def check_tracking_uri(uri: str, source: str = "tracking URI") -> None:
    """Raise a ConfigError naming ``uri`` unless MLflow can open it: a plain path, ``file:``, ``http(s)://HOST``,
    a database URI (``sqlite:``, ``postgresql:``, ``mysql:``, ``mssql:``, each also ``ENGINE+DRIVER:``),
    ``databricks`` or the scheme of an installed MLflow plugin."""
    allowed = (
        "a folder path, file:///..., http(s)://HOST[:PORT], sqlite:///FILE.db, postgresql://, mysql://, mssql://"
        " (also ENGINE+DRIVER://, e.g. postgresql+psycopg2://), databricks[://PROFILE]"
    )
    plugins = _plugin_schemes()
    allowed += f", or a plugin's {', '.join(p + '://' for p in plugins)}" if plugins else ""
    try:
        parts = urlsplit(uri)
        scheme = parts.scheme.lower()
        if scheme in ("http", "https"):
            _ = parts.port  # raises ValueError for a port that is not a number
            if not parts.hostname:
                raise ValueError("no host")
    except ValueError as exc:
        raise ConfigError(f"{source} '{shown(uri)}' is not a valid URI ({exc}); allowed: {allowed}") from None
    if not scheme or (len(scheme) == 1 and scheme.isalpha()):  # a plain path ("C:" is a Windows drive)
        return
    engine, plus, _driver = scheme.partition("+")
    if scheme in SCHEMES or (plus and engine in DB_ENGINES) or scheme in plugins:
        return
    raise ConfigError(f"{source} '{shown(uri)}' has a scheme MLflow does not know ('{scheme}:'); allowed: {allowed}")


def probe_server(uri: str, timeout_s: float = PROBE_S) -> None:
    """Raise a TrackingError naming ``uri`` when no HTTP server answers there within ``timeout_s`` (nothing
    listening, an unknown host, or a socket that accepts and stays silent); any HTTP answer is enough (MLflow's
    own calls say what is wrong with it). Takes at most about 2 x ``timeout_s``."""
    parts = urlsplit(uri)
    host = parts.hostname or ""
    netloc = (f"[{host}]" if ":" in host else host) + (f":{parts.port}" if parts.port is not None else "")
    url = urlunsplit((parts.scheme, netloc, parts.path.rstrip("/") + "/health", "", ""))  # no credentials
    # Liveness only, so the certificate is not checked here: MLflow's own calls check it as configured.
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    why = ""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s, context=context) as answer:
            answer.read(64)
    except (urllib.error.HTTPError, http.client.HTTPException, ssl.SSLError):
        pass  # an HTTP status (404 behind a proxy, 401), a non-HTTP answer or a TLS refusal: it answered
    except TimeoutError:
        why = f"accepts connections but does not answer within {timeout_s:g} s"
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, TimeoutError):
            why = f"no answer within {timeout_s:g} s"
        elif not isinstance(reason, ssl.SSLError):  # a TLS handshake that failed: something answered
            why = getattr(reason, "strerror", None) or str(reason)
    except OSError as exc:  # reset mid-answer, or the like
        why = exc.strerror or type(exc).__name__
    if why:
        raise TrackingError(
            f"no MLflow tracking server answers at {shown(uri)} ({why}): start it (mlflow server --host"
            " 127.0.0.1 --port PORT) or check --tracking-uri / MLFLOW_TRACKING_URI"
        )


def filter_literal(value: str) -> str | None:
    """``value`` as a string literal of MLflow's search filter, or None where the grammar has none for it.

    MLflow takes the text between a literal's quotes verbatim (it has no escapes), and its tokenizer (sqlparse)
    ends a literal at the next unescaped quote of its kind: so a value is quoted with a quote it does not hold.
    One holding both quotes, or ending in a backslash (which would escape the closing quote), cannot be
    written; the caller then filters in Python."""
    if value.endswith("\\"):
        return None
    for quote in ("'", '"'):
        if quote not in value:
            return f"{quote}{value}{quote}"
    return None


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


def _failures() -> tuple[type[BaseException], ...]:
    """What MLflow raises when its store fails: MlflowException (its SQL stores wrap SQLAlchemy's errors in it);
    OSError, which includes ``requests``' connection errors; ImportError, a database driver not installed."""
    from mlflow.exceptions import MlflowException  # deferred with mlflow itself

    return (MlflowException, OSError, ImportError)


@contextlib.contextmanager
def bounded_http() -> Iterator[None]:
    """Within this block MLflow's HTTP calls use :data:`HTTP_BOUNDS` where the user has not set them (MLflow
    reads those variables at each call); they are removed again afterwards."""
    added = [key for key in HTTP_BOUNDS if key not in os.environ]
    for key in added:
        os.environ[key] = HTTP_BOUNDS[key]
    try:
        yield
    finally:
        for key in added:
            os.environ.pop(key, None)


class MlflowTracker(Guarded):
    """Sends a study to MLflow (live, as a sink, or replayed from the store by ``trainlab export``)."""

    name = "mlflow"

    def __init__(self, layout: StudyDir, tracking_uri: str | None = None) -> None:
        self.mlflow, client_cls = _mlflow()
        self.updated: set[str] = set()
        self.finished: dict[str, dict[str, dict[str, Any]]] = {}  # variant -> run id -> a done run's results
        self.columns: list[str] = list(SUMMARY_COLUMNS)
        self._trainlab_id: dict[str, str] = {}  # MLflow run id -> trainlab run id
        self.failures = _failures()
        self.layout = layout
        env = os.environ.get("MLFLOW_TRACKING_URI")
        self.uri = tracking_uri or env or f"sqlite:///{layout.root.resolve() / 'mlflow.db'}"
        check_tracking_uri(self.uri, "tracking URI" if tracking_uri or not env else "MLFLOW_TRACKING_URI")
        self.where = shown(self.uri)
        try:
            self.client = client_cls(tracking_uri=self.uri)
        except self.failures as exc:  # e.g. a database URI whose driver MLflow cannot use
            raise ConfigError(f"tracking URI '{self.where}' cannot be opened by MLflow: {exc}") from None
        self.experiment_id: str | None = None
        self.parent_id: str | None = None
        self.runs: dict[str, str] = {}  # trainlab run id -> MLflow run id
        self.logged: dict[str, set[tuple[str, int]]] = {}  # MLflow run id -> (epoch figure, epoch) logged
        self.latest: dict[str, dict[str, float]] = {}  # MLflow run id -> each metric's latest value

    def scope(self) -> contextlib.AbstractContextManager[None]:
        """Every call with MLflow's HTTP retries and timeout bounded (:func:`bounded_http`)."""
        return bounded_http()

    # ---- the study -------------------------------------------------------------------------------------------
    @guarded
    def study_started(self, study_config: dict[str, Any], swept_keys: list[str]) -> None:
        if urlsplit(self.uri).scheme.lower() in ("http", "https"):
            probe_server(self.uri)  # seconds, where MLflow's first call to a dead server would take minutes
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
        found = self._search("study", "trainlab.out", out)
        if found:
            self.parent_id = found[0].info.run_id
        else:
            tags = {"trainlab.kind": "study", "trainlab.study": name, "trainlab.out": out,
                    "trainlab.swept_keys": ", ".join(swept_keys)}  # fmt: skip
            self.parent_id = self.client.create_run(self.experiment_id, run_name=name, tags=tags).info.run_id
        # The figures of the parent's summary: the study's own columns, else the report's headline ones.
        self.columns = list((study_config.get("study") or {}).get("columns") or SUMMARY_COLUMNS)
        desc = (study_config.get("study") or {}).get("description")
        if desc:
            self.client.set_tag(self.parent_id, "mlflow.note.content", desc)

    @guarded
    def study_finished(self, report_files: list[Path]) -> None:
        if self.parent_id is None:
            return
        self._log_summary()
        for path in report_files:
            if path.is_dir():
                self.client.log_artifacts(self.parent_id, str(path), artifact_path=path.name)
            else:
                self.client.log_artifact(self.parent_id, str(path))
        self.client.set_terminated(self.parent_id, "FINISHED")

    def _log_summary(self) -> None:
        """The study at a glance on the parent run, whose charts MLflow shows without expanding anything: per
        variant, the mean over its finished seeds of each summary figure, as ``<figure>/<variant>`` (e.g.
        ``test/acc_pct/mlp``), so each figure is one chart section comparing the variants."""
        if self.parent_id is None:
            return
        figures: dict[str, float] = {}
        for variant, seeds in self.finished.items():
            for key in self.columns:
                named = [named_figures({key: res.get(key)}) for res in seeds.values()]
                for name in {n for one in named for n in one}:
                    values = [one[name] for one in named if name in one]
                    figures[f"{name}/{_metric_safe(variant)}"] = sum(values) / len(values)
        held = dict(self.client.get_run(self.parent_id).data.metrics)
        new = {k: v for k, v in figures.items() if held.get(k) != v}  # a second export adds nothing
        self._log_metrics(self.parent_id, new, step=0)

    # ---- runs ------------------------------------------------------------------------------------------------
    def _search(self, kind: str, tag: str, value: str) -> list[Any]:
        """This experiment's runs of trainlab kind ``kind`` whose tag ``tag`` is exactly ``value``."""
        literal = filter_literal(value)
        where = f"tags.`trainlab.kind` = '{kind}'" + (f" and tags.`{tag}` = {literal}" if literal else "")
        found = self.client.search_runs([self.experiment_id], filter_string=where)
        return [r for r in found if r.data.tags.get(tag) == value]  # exact, and the filter for an unquotable one

    def _run_id(self, spec: RunIdentity) -> str:
        if spec.run_id in self.runs:
            return self.runs[spec.run_id]
        assert self.experiment_id is not None and self.parent_id is not None, "study_started comes first"
        found = self._search("run", "trainlab.run_id", spec.run_id)
        if found:
            run = found[0]
            mid = run.info.run_id
            self.latest[mid] = dict(run.data.metrics)
            # Every epoch figure's logged epochs (each key: a diverged run's NaN loss is not logged at all).
            self.logged[mid] = {
                (key, m.step) for key in run.data.metrics if key in EPOCH_NAMES
                for m in self.client.get_metric_history(mid, key)
            }  # fmt: skip
        else:
            tags = {"mlflow.parentRunId": self.parent_id, "trainlab.run_id": spec.run_id, "trainlab.kind": "run",
                    "trainlab.study": spec.study, "variant": spec.variant, "seed": str(spec.seed)}  # fmt: skip
            mid = self.client.create_run(self.experiment_id, run_name=run_label(spec), tags=tags).info.run_id
            self.updated.add(spec.run_id)
            self._log_params(mid, spec)
            self.logged[mid], self.latest[mid] = set(), {}
        self.runs[spec.run_id] = mid
        self._trainlab_id[mid] = spec.run_id
        return mid

    def _log_params(self, mid: str, spec: RunIdentity) -> None:
        from mlflow.entities import Param  # deferred with mlflow itself

        params = [Param(k, _text(v)[:PARAM_MAX]) for k, v in sorted(dotted(config_of(spec)).items())]
        for i in range(0, len(params), 100):  # MLflow takes at most 100 params per batch
            self.client.log_batch(mid, params=params[i : i + 100])

    @guarded
    def event(self, spec: RunIdentity, event: Event) -> None:
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
            latest = self.latest.setdefault(mid, {})
            figures = {k: v for k, v in final_figures(event.outcome.results).items() if latest.get(k) != v}
            self._log_metrics(mid, figures, step=0)  # only new or changed figures: a second export adds none
            latest.update(figures)
            self.client.set_tag(mid, "status", event.outcome.status)
            if event.outcome.status == "done":
                self.finished.setdefault(spec.variant, {})[spec.run_id] = event.outcome.results
            if event.outcome.error:
                self.client.set_tag(mid, "error", event.outcome.error[:PARAM_MAX])
            self.client.set_terminated(mid, STATUS.get(event.outcome.status, "FINISHED"))

    def _log_epoch(self, mid: str, row: dict[str, Any]) -> None:
        step = int(row["epoch"])
        logged = self.logged.setdefault(mid, set())
        figures = {k: v for k, v in epoch_figures(row).items() if (k, step) not in logged}
        self._log_metrics(mid, figures, step=step)
        logged.update((k, step) for k in figures)

    def _log_metrics(self, mid: str, figures: dict[str, float], step: int) -> None:
        from mlflow.entities import Metric  # deferred with mlflow itself

        if figures and mid in self._trainlab_id:
            self.updated.add(self._trainlab_id[mid])
        now = int(time.time() * 1000)
        metrics = [Metric(k, v, now, step) for k, v in figures.items()]
        for i in range(0, len(metrics), 1000):  # MLflow takes at most 1000 metrics per batch
            self.client.log_batch(mid, metrics=metrics[i : i + 1000])
