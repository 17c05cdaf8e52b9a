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

import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from trainlab.data import DatasetCache, dataset_cache
from trainlab.engine.events import Event, Fanout, Sink
from trainlab.engine.executors import Executor, InlineExecutor, RunJob, SubprocessExecutor
from trainlab.engine.ray_executor import RayExecutor
from trainlab.engine.sinks import StoreSink
from trainlab.errors import ConfigError, TrainlabError, did_you_mean
from trainlab.layout import StudyDir
from trainlab.models import build_for
from trainlab.names import EXECUTORS
from trainlab.store import FINISHED, Store
from trainlab.study import RunSpec, Study


class Reporter(Sink, Protocol):
    """A display of the study (rich progress, or nothing with --quiet): study-level calls plus every event."""

    def study_start(self, study: Study, out_dir: Path, todo: int) -> None: ...
    def run_skipped(self, spec: RunSpec, status: str) -> None: ...
    def study_end(self, result: StudyResult) -> None: ...


class SilentReporter:
    """Reports nothing (``--quiet`` and library use)."""

    def study_start(self, study: Study, out_dir: Path, todo: int) -> None:
        pass

    def event(self, spec: RunSpec, event: Event) -> None:
        pass

    def run_skipped(self, spec: RunSpec, status: str) -> None:
        pass

    def study_end(self, result: StudyResult) -> None:
        pass


@dataclass
class StudyResult:
    """The outcome of ``run``: where the output is, and each run's record from the store."""

    study: Study
    out_dir: Path
    records: list[dict[str, Any]] = field(default_factory=list)
    report_paths: dict[str, Path] = field(default_factory=dict)

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [r for r in self.records if r["status"] in ("failed", "diverged")]

    @property
    def exit_code(self) -> int:
        """0 when every run succeeded (or was skipped for an absent device), 1 when some failed."""
        return 1 if self.failed else 0


def default_out_dir(study: Study) -> Path:
    """``runs/<study name>`` with the name made safe for a folder."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in study.name)
    return Path("runs") / safe


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


def make_executor(executor: str | Executor, datasets: DatasetCache, address: str | None = None) -> Executor:
    """An executor by name (see :data:`EXECUTORS`) or the one given; ``address``: the Ray cluster's."""
    if not isinstance(executor, str):
        return executor
    if executor not in EXECUTORS:
        raise ConfigError(f"unknown executor '{executor}'{did_you_mean(executor, EXECUTORS)}; allowed: "
                          f"{', '.join(EXECUTORS)}")  # fmt: skip
    if address is not None and executor != "ray":
        raise ConfigError(f"--address is the Ray cluster's address: it needs --executor ray, not {executor}")
    if executor == "ray":
        return RayExecutor(address)
    return InlineExecutor(datasets) if executor == "inline" else SubprocessExecutor()


def dispatch(
    study: Study,
    layout: StudyDir,
    store: Store,
    executor: Executor,
    reporter: Reporter,
    sinks: list[Sink] | None = None,
    storage: StudyDir | None = None,
) -> None:
    """Record the plan, skip finished runs, and run the others on ``executor``; every event goes to the store
    first, then to ``reporter``, then (best effort) to ``sinks``. ``storage``: where runs write checkpoints and
    weights when that is not the output folder (a folder every node of a cluster can reach); a finished run's
    weights are then copied into the output folder, where deployment and the report look."""
    where = storage or layout
    store.set_plan(study)
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
        executor.run(todo, Fanout([StoreSink(store), reporter], best_effort=sinks or []))
    finally:
        if storage is not None and storage.root.resolve() != layout.root.resolve():
            _collect_weights(todo, layout)


def _collect_weights(jobs: list[RunJob], layout: StudyDir) -> None:
    """Copy the trained weights runs wrote to the shared storage into the output folder."""
    for job in jobs:
        if job.weights.is_file():
            target = layout.weights(job.spec.run_id)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(job.weights, target)


def add_to_path(folder: Path) -> None:
    """Let ``model.name = "mymodels:Net"`` find a module next to the study file."""
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))


__all__ = [
    "EXECUTORS",
    "Reporter",
    "SilentReporter",
    "StudyResult",
    "default_out_dir",
    "dispatch",
    "make_executor",
    "preflight",
]
