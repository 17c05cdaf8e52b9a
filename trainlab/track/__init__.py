"""Experiment tracking: a study in MLflow and TensorBoard, live while it runs and exported after the fact.

A tracker is a best-effort sink of the engine's events (``trainlab.engine.events``): ``trainlab run --track
mlflow`` hands it every run's events as they reach the driver; ``trainlab export DIR --to mlflow`` replays the
store's records as the same events, so live tracking and export cannot disagree on what a run looks like in a
tracker. A tracker that fails (its server down, a full disk) is reported once and dropped — it is not called
again, not even at the study's end — the study goes on and ``trainlab export`` fills the gap later; in
``trainlab export`` the same failure is a one-line error. No tracker holds the driver up for more than seconds.
Both trackers are optional extras, imported only when asked for.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from trainlab.engine.events import EpochEnded, RunDispatched, RunEnded, RunStarted
from trainlab.errors import ConfigError, did_you_mean
from trainlab.layout import StudyDir
from trainlab.names import TRACKERS
from trainlab.records import EpochRow, RunOutcome
from trainlab.store import Store
from trainlab.track.base import Tracker, TrackingError
from trainlab.track.mlflow_tracker import MlflowTracker
from trainlab.track.tensorboard_tracker import TensorBoardTracker


def make_trackers(kinds: Sequence[str], layout: StudyDir, tracking_uri: str | None = None) -> list[Tracker]:
    """The trackers named in ``kinds`` for the study in ``layout`` (errors name an unknown one or a missing
    extra before anything runs)."""
    out: list[Tracker] = []
    for kind in dict.fromkeys(kinds):
        if kind not in TRACKERS:
            raise ConfigError(f"unknown tracker '{kind}'{did_you_mean(kind, TRACKERS)}; allowed: {', '.join(TRACKERS)}")
        out.append(MlflowTracker(layout, tracking_uri) if kind == "mlflow" else TensorBoardTracker(layout))
    return out


@dataclass(frozen=True)
class Exported:
    """What an export did for one tracker: the runs it was sent (started ones) and those it wrote or changed
    anything of (0 when it held them all already)."""

    sent: int
    updated: int


def export(out_dir: str | Path, to: Sequence[str], tracking_uri: str | None = None) -> dict[str, Exported]:
    """Send the study in ``out_dir`` (finished or still running) to the trackers ``to``, from its store.

    Each run is replayed as the events a live study sends; a tracker skips what it already holds, so exporting
    twice leaves each tracker as exporting once does. Returns, per tracker, the runs sent (a run not started yet
    has nothing to send) and the runs it wrote or changed anything of. A tracker that cannot reach or write its
    destination raises a :class:`~trainlab.track.base.TrackingError` within seconds.
    """
    layout = StudyDir(out_dir)
    store = Store(layout.require_db(), readonly=True)  # export only reads: read-only media will do
    trackers = make_trackers(to, layout, tracking_uri)
    records = store.runs()
    total = len(records)
    exported: dict[str, Exported] = {}
    for tracker in trackers:
        tracker.study_started(store.meta("study") or {}, store.meta("swept_keys") or [])
        sent = 0
        for index, record in enumerate(records, start=1):
            spec = record  # a stored run has every attribute a tracker reads of a live RunSpec (RunIdentity)
            rows = [EpochRow.from_record(e) for e in store.epochs(record.run_id)]
            tracker.event(spec, RunDispatched(index, total, False))
            if record.status == "pending":
                continue
            env = record.env
            tracker.event(spec, RunStarted(len(rows), 0, 1, str(env.get("device", "")), env, record.profile))
            for row in rows:
                tracker.event(spec, EpochEnded(row))
            if record.status != "running":
                outcome = RunOutcome(record.status, record.results, record.error, record.detail)
                tracker.event(spec, RunEnded(outcome))
            sent += 1
        tracker.study_finished(report_files(layout))
        exported[tracker.name] = Exported(sent, len(tracker.updated))
    return exported


def report_files(layout: StudyDir) -> list[Path]:
    """The study's report files a tracker keeps as artifacts (those written so far), and the plots folder."""
    names = ("report.html", "report.md", "results.csv", "epochs.csv", "deployments.csv")
    files = [layout.report_file(n) for n in names]
    return [f for f in files if f.is_file()] + ([layout.plots] if layout.plots.is_dir() else [])


__all__ = [
    "TRACKERS",
    "Exported",
    "MlflowTracker",
    "TensorBoardTracker",
    "Tracker",
    "TrackingError",
    "export",
    "make_trackers",
    "report_files",
]
