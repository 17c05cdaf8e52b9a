"""Run a study's training: check it, skip what is finished, dispatch the rest to an executor, record.

Order of work (nothing is written until the study is known to be runnable):
1. validate the study (``trainlab.study.load_study``) — a mistake is a ConfigError, exit code 2;
2. preflight: load each distinct dataset once and build each distinct model on it, so a missing or corrupt
   file or a model that cannot take the input fails before anything runs;
3. create the output folder and the store; runs already finished (same resolved-config id) are skipped;
4. the remaining runs go to the executor (default: one spawned child process per run); their events come back to
   this process, where the store sink commits them (the only writer) and the display shows them. An interrupted
   run resumes from its checkpoint;
then ``trainlab.api.run`` makes the deployment variants (``[deploy]``) and writes the report from the store.
"""

from __future__ import annotations

import dataclasses
import fcntl
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import torch

from trainlab.data import DatasetCache, dataset_cache
from trainlab.engine.events import Event, Fanout, RunEnded, Sink
from trainlab.engine.executors import Executor, InlineExecutor, RunJob, SubprocessExecutor
from trainlab.engine.pool import WorkerSlot, plan_slots
from trainlab.engine.ray_executor import RayExecutor
from trainlab.engine.sinks import StoreSink
from trainlab.errors import ConfigError, DiskFull, StoreDamaged, TrainlabError, did_you_mean
from trainlab.layout import ReportPaths, StudyDir
from trainlab.measure.load import usable_cpus
from trainlab.measure.metrics import BY_KEY, column_order, derived
from trainlab.models import build_for
from trainlab.names import EXECUTORS
from trainlab.records import FAILED, FINISHED, RunRecord, RunStatus
from trainlab.store import Store
from trainlab.study import RunSpec, Study


class Reporter(Sink, Protocol):
    """A display of the study (rich progress, or nothing with --quiet): study-level calls plus every event."""

    def study_start(self, study: Study, out_dir: Path, todo: int) -> None: ...
    def run_skipped(self, spec: RunSpec, status: RunStatus) -> None: ...
    def study_end(self, result: StudyResult) -> None: ...


class SilentReporter:
    """Reports nothing (``--quiet`` and library use)."""

    def study_start(self, study: Study, out_dir: Path, todo: int) -> None:
        pass

    def event(self, spec: RunSpec, event: Event) -> None:
        pass

    def run_skipped(self, spec: RunSpec, status: RunStatus) -> None:
        pass

    def study_end(self, result: StudyResult) -> None:
        pass


@dataclass
class StudyResult:
    """The outcome of ``run``: where the output is, and each run's record from the store (a
    :class:`~trainlab.records.RunRecord`, in plan order: ``records[0].status``, ``records[0].figure("test_acc")``)."""

    study: Study
    out_dir: Path
    records: list[RunRecord] = field(default_factory=list)
    # A tuned study's trials ([tune]), apart from its runs: a trial that failed or diverged (a learning rate
    # too high, say) is part of tuning, not a failure of the study.
    trials: list[RunRecord] = field(default_factory=list)
    report_paths: ReportPaths = field(default_factory=ReportPaths)  # the report's files (none if not written)

    @property
    def failed(self) -> list[RunRecord]:
        """The runs that failed or diverged."""
        return [r for r in self.records if r.status in FAILED]

    @property
    def exit_code(self) -> int:
        """0 when every run succeeded (or was skipped for an absent device), 1 when some failed."""
        return 1 if self.failed else 0

    def table(self) -> list[dict[str, Any]]:
        """One row per run, in plan order, as plain dicts (no pandas needed): ``variant``, ``seed``, ``repeat``,
        ``status``, ``error``, the variant's settings (its dotted override keys), then every per-run figure of the
        metric catalogue that some run recorded, in catalogue order (None where a run has none) — the columns
        of results.csv."""
        present = {k for r in self.records for k in (*r.results, *derived(r.results)) if k in BY_KEY}
        figures = column_order(sorted(present))
        settings = list(dict.fromkeys(k for r in self.records for k in (*r.overrides, *r.tuned)))
        rows = []
        for r in self.records:
            row: dict[str, Any] = {"variant": r.variant, "seed": r.seed, "repeat": r.repeat, "status": r.status,
                                   "error": r.error}  # fmt: skip
            row.update({k: r.tuned.get(k, r.overrides.get(k)) for k in settings})
            row.update({k: r.figure(k) for k in figures})
            rows.append(row)
        return rows

    def to_pandas(self) -> Any:
        """:meth:`table` as a ``pandas.DataFrame`` (pandas is not a dependency of trainlab: install it to use this)."""
        try:
            import pandas as pd  # deferred and optional: only this method needs it
        except ImportError:
            raise TrainlabError("StudyResult.to_pandas needs pandas: pip install pandas (or use .table())") from None
        return pd.DataFrame(self.table())


def safe_folder_name(name: str) -> str:
    """``name`` as one folder name: letters, digits, ``-``, ``_`` and inner dots; never ``.``, ``..``, hidden
    or empty (a study named ``..`` must not write into the current folder)."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name).lstrip(".")
    return safe[:120] or "study"


def default_out_dir(study: Study) -> Path:
    """``runs/<study name>`` with the name made safe for a folder."""
    return Path("runs") / safe_folder_name(study.name)


def open_store(layout: StudyDir, warn: Callable[[str], None]) -> Store:
    """The study's store, for writing. A damaged one (truncated, overwritten, corrupt inside) is kept aside,
    renamed ``trainlab.db.damaged-<time>`` with its journal files, never deleted, and a new one is started: the
    runs then resume from their checkpoints, which hold every finished epoch's rows (a finished run's figures
    are measured again; a run without checkpoints is trained again)."""
    try:
        return Store(layout.db)
    except StoreDamaged as exc:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        aside = layout.db.with_name(f"{layout.db.name}.damaged-{stamp}")
        for suffix in ("", "-wal", "-shm"):
            part = layout.db.with_name(layout.db.name + suffix)
            if part.exists():
                os.replace(part, aside.with_name(aside.name + suffix))
        warn(f"{exc}; kept aside as {aside.name}, and the store is rebuilt from the checkpoints")
        return Store(layout.db)


@contextmanager
def study_lock(layout: StudyDir, warn: Callable[[str], None]) -> Iterator[None]:
    """Hold the study's lock (``<out>/.trainlab.lock``) while this driver works on it. A second driver on the
    same folder waits for the first to finish, then finds its runs finished and skips them: no run is trained
    twice. The lock is the kernel's (``flock``), so a driver that dies releases it."""
    path = layout.root / ".trainlab.lock"
    with open(path, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "?"
            warn(f"another trainlab (pid {holder}) is running the study in {layout.root}: waiting for it to end")
            fcntl.flock(fh, fcntl.LOCK_EX)
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def preflight(study: Study) -> DatasetCache:
    """Load each distinct dataset and build each distinct model once; return the loaded datasets.

    Raises DataError/ConfigError naming the file or the model, before anything is written.
    """
    datasets = dataset_cache()
    built: set[tuple[str, str]] = set()
    for spec in study.runs:
        ds = datasets.get(spec.config.data)
        model_key = (repr(spec.config.data.model_dump(mode="json")), repr(spec.config.model.model_dump(mode="json")))
        if model_key in built:
            continue
        try:
            build_for(spec.config.model, ds)
        except TrainlabError as exc:
            raise ConfigError(f"variant '{spec.variant}': {exc}") from None
        built.add(model_key)
        if ds.task == "regression" and spec.config.train.loss == "cross_entropy":
            raise ConfigError(
                f"variant '{spec.variant}': train.loss = 'cross_entropy' needs a classification dataset;"
                f" '{spec.config.data.name}' is a regression task, use 'mse'"
            )
    return datasets


def make_executor(
    executor: str | Executor, datasets: DatasetCache, address: str | None = None, jobs: int = 1
) -> Executor:
    """An executor by name (see :data:`EXECUTORS`) or the one given; ``address``: the Ray cluster's; ``jobs``:
    runs side by side on this machine (the subprocess executor's)."""
    if not isinstance(executor, str):
        if jobs != 1:
            raise ConfigError("--jobs is the subprocess executor's; an Executor object decides for itself")
        return executor
    if executor not in EXECUTORS:
        raise ConfigError(f"unknown executor '{executor}'{did_you_mean(executor, EXECUTORS)}; allowed: "
                          f"{', '.join(EXECUTORS)}")  # fmt: skip
    if address is not None and executor != "ray":
        raise ConfigError(f"--address is the Ray cluster's address: it needs --executor ray, not {executor}")
    if jobs != 1 and executor != "subprocess":
        why = "Ray schedules its tasks by their resources" if executor == "ray" else "inline runs one at a time"
        raise ConfigError(f"--jobs runs side by side in worker processes: it needs --executor subprocess ({why})")
    if executor == "ray":
        return RayExecutor(address)
    return InlineExecutor(datasets) if executor == "inline" else SubprocessExecutor(jobs, gpus=_gpus_for(jobs))


def worker_slots(jobs: int) -> list[WorkerSlot]:
    """The slots of the subprocess executor's ``jobs`` workers on this machine (CPUs and GPUs dealt out)."""
    return plan_slots(jobs, usable_cpus(), _gpus_for(jobs))


def _gpus_for(jobs: int) -> list[str]:
    """With runs side by side and several GPUs, one GPU per worker in turn (CUDA_VISIBLE_DEVICES): each run then
    sees its GPU as cuda:0. Counted without starting CUDA in the driver."""
    if jobs == 1:
        return []
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    ids = [v.strip() for v in visible.split(",") if v.strip()] if visible else None
    count = torch.cuda.device_count()
    if count < 2:
        return []
    return ids[:count] if ids else [str(i) for i in range(count)]


def auto_jobs(study: Study, cpus: int | None = None) -> int:
    """``--jobs auto``: as many runs side by side as the CPUs hold at the study's largest ``train.threads``
    (1 when unset), at least 1; on CUDA, no more than the GPUs when there are several."""
    if cpus is None:
        cpus = len(usable_cpus())
    threads = max((spec.config.train.threads or 1) for spec in study.runs) if study.runs else 1
    jobs = max(1, cpus // threads)
    wants_gpu = any(spec.config.train.device.startswith("cuda") or spec.config.train.device == "auto"
                    for spec in study.runs)  # fmt: skip
    if wants_gpu and torch.cuda.is_available():  # one run per GPU: runs sharing a GPU would time each other
        jobs = min(jobs, max(1, torch.cuda.device_count()))
    return jobs


def dispatch(
    study: Study,
    layout: StudyDir,
    store: Store,
    executor: Executor,
    reporter: Reporter,
    sinks: list[Sink] | None = None,
    storage: StudyDir | None = None,
    plan: list[RunSpec] | None = None,
) -> None:
    """Record the plan, skip finished runs, and run the others on ``executor``; every event goes to the store
    first, then to ``reporter``, then (best effort) to ``sinks``. ``storage``: where runs write checkpoints and
    weights when that is not the output folder (a folder every node of a cluster can reach); a finished run's
    weights are then copied into the output folder, where deployment and the report look. ``plan``: the runs
    the store records as the study's (default: ``study.runs``), when the study runs in rounds."""
    where = storage or layout
    store.set_plan(study if plan is None else dataclasses.replace(study, runs=plan))
    todo: list[RunJob] = []
    for index, spec in enumerate(study.runs, start=1):
        status = store.status(spec.run_id)
        if status in FINISHED:
            reporter.run_skipped(spec, status)
            continue
        job = RunJob(
            spec, index, len(study.runs), where.checkpoint(spec.run_id), where.weights(spec.run_id), study.path
        )
        todo.append(job)
    reporter.study_start(study, layout.root, len(todo))
    try:
        executor.run(todo, Fanout([StoreSink(store), _StopOnDiskFull(), reporter], best_effort=sinks or []))
    finally:
        if storage is not None and storage.root.resolve() != layout.root.resolve():
            _collect_weights(todo, layout)


class _StopOnDiskFull:
    """Stops the study (raises :class:`DiskFull`) once a run failed because the disk filled up: the store has
    recorded it as failed, so a rerun after freeing space trains it again from its last checkpoint."""

    def event(self, spec: RunSpec, event: Event) -> None:
        if isinstance(event, RunEnded) and event.outcome.disk_full:
            raise DiskFull(f"run {spec.run_id} ({spec.variant}): {event.outcome.error}")


def _collect_weights(jobs: list[RunJob], layout: StudyDir) -> None:
    """Copy the trained weights runs wrote to the shared storage into the output folder."""
    for job in jobs:
        if job.weights.is_file():
            target = layout.weights(job.spec.run_id)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(job.weights, target)


__all__ = [
    "EXECUTORS",
    "Reporter",
    "SilentReporter",
    "StudyResult",
    "auto_jobs",
    "default_out_dir",
    "dispatch",
    "make_executor",
    "open_store",
    "preflight",
    "safe_folder_name",
    "study_lock",
    "worker_slots",
]
