"""Executors: where a study's runs execute. The runner hands an executor the jobs; the executor runs them and
delivers each run's events to the driver's sink, in the driver process.

- :class:`SubprocessExecutor` (the default): each run in a fresh spawned child process — fair timing, a clean
  peak-memory figure, and a crash or out-of-memory kill that cannot take the study down. The child sends its
  events over a queue; the driver records them (the child never opens the store).
- :class:`InlineExecutor`: in this process, reusing the datasets the preflight loaded (faster start; for tests,
  debugging and notebooks; timing and peak memory are then less clean).

A new executor (a cluster) implements :class:`Executor`: ``run(jobs, sink)`` returns when every job has
ended, and every job ends with exactly one RunEnded event (synthesised by the executor when the run's process
died without sending one).
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import queue as queue_mod
import signal
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from trainlab.data import DatasetCache
from trainlab.engine.events import Event, RunDispatched, RunEnded, RunOutcome, Sink
from trainlab.engine.loop import execute_run
from trainlab.engine.runtime import die_with_parent, tune_allocator
from trainlab.study import RunSpec


@dataclass(frozen=True)
class RunJob:
    """One run to execute: what to train, where it checkpoints, where its trained weights go."""

    spec: RunSpec
    index: int  # 1-based position in the study's plan
    total: int
    checkpoint: Path
    weights: Path
    study_path: Path | None = None

    @property
    def resuming(self) -> bool:
        return self.checkpoint.exists()


class Executor(Protocol):
    """Runs jobs and delivers their events to ``sink`` in the driver process."""

    name: str

    def run(self, jobs: Sequence[RunJob], sink: Sink) -> None: ...


class InlineExecutor:
    """Every run in this process, one after the other."""

    name = "inline"

    def __init__(self, datasets: DatasetCache | None = None) -> None:
        self.datasets = datasets

    def run(self, jobs: Sequence[RunJob], sink: Sink) -> None:
        for job in jobs:
            spec = job.spec
            sink.event(spec, RunDispatched(job.index, job.total, job.resuming))
            outcome = execute_run(
                spec,
                emit=lambda ev, spec=spec: sink.event(spec, ev),
                checkpoint_path=job.checkpoint,
                weights_path=job.weights,
                study_path=job.study_path,
                dataset=self.datasets.peek(spec.config.data) if self.datasets is not None else None,
            )
            sink.event(spec, RunEnded(outcome))


def _child_main(job: RunJob, events: Any) -> None:
    """Entry point of a run's child process: run, sending every event (the last one RunEnded) to the driver."""
    die_with_parent()
    tune_allocator()  # this process is the run's own: keep freed tensor memory mapped (see engine.runtime)
    # A spawned child inherits "spawn" as its start method, so its DataLoader workers would be spawned too: each
    # re-imports torch and unpickles the dataset (~2 s per worker per epoch for CIFAR-10), which a user's own
    # script on Linux (fork) never pays. Back to the platform's default, as in the user's script.
    mp.set_start_method(None, force=True)
    outcome = execute_run(
        job.spec,
        emit=events.put,
        checkpoint_path=job.checkpoint,
        weights_path=job.weights,
        study_path=job.study_path,
    )
    events.put(RunEnded(outcome))


class SubprocessExecutor:
    """Every run in its own spawned child process, one after the other."""

    name = "subprocess"

    def run(self, jobs: Sequence[RunJob], sink: Sink) -> None:
        for job in jobs:
            sink.event(job.spec, RunDispatched(job.index, job.total, job.resuming))
            self._run_one(job, sink)

    def _run_one(self, job: RunJob, sink: Sink) -> None:
        ctx = mp.get_context("spawn")
        events = ctx.Queue()
        proc = ctx.Process(target=_child_main, args=(job, events), name=f"trainlab-run-{job.spec.run_id}")
        with _main_not_reimported():
            proc.start()
        ended = False
        try:
            while proc.is_alive() or not events.empty():
                try:
                    ev: Event = events.get(timeout=0.1)
                except queue_mod.Empty:
                    continue
                ended = ended or isinstance(ev, RunEnded)
                sink.event(job.spec, ev)
            proc.join()
        except BaseException:  # Ctrl-C, or a sink that failed (a full disk): the run must not go on unrecorded
            proc.terminate()
            proc.join()
            raise
        finally:
            events.close()
        if not ended:
            sink.event(job.spec, RunEnded(RunOutcome("failed", error=_death_reason(proc.exitcode))))


@contextlib.contextmanager
def _main_not_reimported() -> Iterator[None]:
    """While a run's child is spawned, the parent's ``__main__`` looks like it has no file or module name, so
    the child does not import it again.

    A spawned child normally re-imports the parent's main script (as ``__mp_main__``) to find what its job
    pickles by reference to it. A job is trainlab's own types only, so nothing is lost — and a user's script
    without an ``if __name__ == "__main__":`` guard would otherwise call ``trainlab.run`` again in every child
    (which then waits forever on the study's lock), and code read from standard input (``python - < x.py``,
    a notebook's kernel) names a ``<stdin>`` file the child cannot open."""
    main = sys.modules.get("__main__")
    if main is None:
        yield
        return
    saved = {k: main.__dict__[k] for k in ("__file__", "__spec__") if k in main.__dict__}
    main.__dict__.pop("__file__", None)
    main.__spec__ = None
    try:
        yield
    finally:
        main.__dict__.pop("__spec__", None)
        main.__dict__.update(saved)


def _death_reason(code: int | None) -> str:
    """Why a run's process ended without an outcome: a signal (e.g. the kernel's OOM killer) or a hard crash."""
    if code is not None and code < 0:
        name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else str(-code)
        why = f"run process killed by signal {name}"
        if name == "SIGKILL":
            why += " (out of memory, or killed by the user)"
        return why
    return f"run process exited with code {code} before recording a result"
