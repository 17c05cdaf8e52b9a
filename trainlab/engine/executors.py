"""Executors: where a study's runs execute. The runner hands an executor the jobs; the executor runs them and
delivers each run's events to the driver's sink, in the driver process.

- :class:`SubprocessExecutor` (the default): each run in a spawned worker process, one run at a time per worker,
  ``jobs`` workers side by side (each pinned to its own CPUs when there are several). A worker starts warm
  (torch, trainlab and what the measurements import are loaded once, ``trainlab.engine.worker``) and is reused
  for the next run, keeping what a process per run gave: fair timing, the run's own peak memory, and a crash or
  out-of-memory kill that takes down only that run (the next run gets a fresh worker). The worker sends its
  events over a queue; the driver records them (a worker never opens the store).
- :class:`InlineExecutor`: in this process, reusing the datasets the preflight loaded (faster start; for tests,
  debugging and notebooks; timing and peak memory are then less clean).

A new executor (a cluster) implements :class:`Executor`: ``run(jobs, sink)`` returns when every job has
ended, and every job ends with exactly one RunEnded event (synthesised by the executor when the run's process
died without sending one).
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import multiprocessing.connection as mp_connection
import os
import queue as queue_mod
import signal
import sys
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from trainlab.data import DatasetCache
from trainlab.engine.events import Event, RunDispatched, RunEnded, RunOutcome, Sink
from trainlab.engine.loop import execute_run
from trainlab.engine.worker import WorkerSlot, worker_main
from trainlab.errors import ConfigError
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


@dataclass
class _Worker:
    """The driver's handle on one worker process (see ``trainlab.engine.worker``)."""

    slot: WorkerSlot
    proc: Any
    inbox: Any  # driver -> worker: a RunJob, or None to stop
    events: Any  # worker -> driver: the job's events; one queue per worker, so a killed worker locks no other
    job: RunJob | None = None
    ended: bool = False  # the current job's RunEnded has arrived
    runs: int = 0


class SubprocessExecutor:
    """Runs in warm worker processes (``jobs`` of them side by side, each pinned to its own CPUs when more than
    one), one run at a time per worker; a worker is reused for the next run unless it died or its run failed.

    ``jobs``: runs side by side (default 1). ``cpus``: the CPUs to share out (default: this process's
    affinity), ``len(cpus) // jobs`` per worker. ``gpus``: CUDA device ids, one per worker in turn (default:
    none set; the runs see what this process sees). ``runs_per_worker``: retire a worker after this many runs
    (None: never; 1: a fresh process for every run, the strictest isolation, at ~4 s per run)."""

    name = "subprocess"

    def __init__(
        self,
        jobs: int = 1,
        *,
        cpus: Sequence[int] | None = None,
        gpus: Sequence[str] | None = None,
        runs_per_worker: int | None = None,
    ) -> None:
        self.jobs = jobs
        self.cpus = sorted(cpus) if cpus is not None else _affinity()
        self.gpus = list(gpus or [])
        self.runs_per_worker = runs_per_worker
        self.slots = plan_slots(jobs, self.cpus, self.gpus)

    def run(self, jobs: Sequence[RunJob], sink: Sink) -> None:
        pending = deque(jobs)
        workers: dict[int, _Worker] = {}
        try:
            while pending or any(w.job is not None for w in workers.values()):
                for slot in self.slots:
                    if not pending:
                        break
                    w = workers.get(slot.index)
                    if w is not None and w.job is None and not w.proc.is_alive():  # died while idle
                        _stop(w)
                        w = None
                    if w is None:
                        w = workers[slot.index] = _start(slot)
                    if w.job is None:
                        job = pending.popleft()
                        sink.event(job.spec, RunDispatched(job.index, job.total, job.resuming))
                        w.job, w.ended = job, False
                        w.inbox.put(job)
                busy = [w for w in workers.values() if w.job is not None]
                # Sleep until a worker sends something or dies (its sentinel). Queue._reader is the pipe a
                # Queue reads from; waiting on it is how a multiprocessing Queue is multiplexed.
                mp_connection.wait([w.events._reader for w in busy] + [w.proc.sentinel for w in busy], timeout=1.0)
                for w in busy:
                    if self._drain(w, sink):
                        workers.pop(w.slot.index)
        except BaseException:  # Ctrl-C, or a sink that failed (a full disk): the runs must not go on unrecorded
            for w in workers.values():
                w.proc.terminate()
            for w in workers.values():
                w.proc.join()
            raise
        finally:
            for w in workers.values():
                _stop(w)

    def _drain(self, w: _Worker, sink: Sink) -> bool:
        """Deliver what ``w`` sent; True when the worker is gone or retired (the slot needs a fresh one)."""
        job = w.job
        assert job is not None
        while True:
            try:
                ev: Event = w.events.get_nowait()
            except queue_mod.Empty:
                break
            if isinstance(ev, RunEnded):
                w.job, w.ended = None, True
                w.runs += 1
                sink.event(job.spec, ev)
                retire = ev.outcome.status == "failed" or (
                    self.runs_per_worker is not None and w.runs >= self.runs_per_worker
                )
                if retire:
                    _stop(w)
                return retire
            sink.event(job.spec, ev)
        if w.proc.is_alive():
            return False
        # Died mid-run. What it sent before dying may still be in the pipe: deliver it, then the death.
        with contextlib.suppress(queue_mod.Empty, OSError, EOFError):
            while (ev := w.events.get(timeout=0.2)) is not None:
                if isinstance(ev, RunEnded):
                    w.ended = True
                sink.event(job.spec, ev)
        w.proc.join()
        if not w.ended:
            sink.event(job.spec, RunEnded(RunOutcome("failed", error=_death_reason(w.proc.exitcode))))
        w.job = None
        w.events.close()
        return True


def plan_slots(jobs: int, cpus: Sequence[int], gpus: Sequence[str] = ()) -> list[WorkerSlot]:
    """``jobs`` worker slots: with one, no pinning (the run may use every CPU, as a study always could); with
    more, ``len(cpus) // jobs`` CPUs each, consecutive (the last few CPUs of an uneven split stay free for the
    driver), and the GPUs dealt out in turn."""
    if jobs < 1:
        raise ConfigError(f"--jobs must be at least 1, not {jobs}")
    if jobs > 1 and jobs > len(cpus):
        raise ConfigError(
            f"--jobs {jobs} is more runs side by side than the {len(cpus)} CPUs this process may use: each run"
            f" needs a CPU of its own for its timing to be its own; use --jobs {len(cpus)} or fewer"
        )
    per = len(cpus) // jobs
    return [
        WorkerSlot(
            i,
            tuple(cpus[i * per : (i + 1) * per]) if jobs > 1 else None,
            gpus[i % len(gpus)] if gpus else None,
        )
        for i in range(jobs)
    ]


def _affinity() -> list[int]:
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return list(range(os.cpu_count() or 1))


def _start(slot: WorkerSlot) -> _Worker:
    ctx = mp.get_context("spawn")
    inbox, events = ctx.Queue(), ctx.Queue()
    proc = ctx.Process(target=worker_main, args=(slot, inbox, events), name=f"trainlab-worker-{slot.index}")
    with _main_not_reimported():
        proc.start()
    return _Worker(slot, proc, inbox, events)


def _stop(w: _Worker) -> None:
    """Ask an idle worker to exit; one that does not within a few seconds is terminated."""
    if w.proc.is_alive():
        with contextlib.suppress(OSError, ValueError):
            w.inbox.put(None)
        w.proc.join(timeout=5)
        if w.proc.is_alive():
            w.proc.terminate()
            w.proc.join()
    for q in (w.inbox, w.events):
        with contextlib.suppress(OSError, ValueError):
            q.close()
            q.cancel_join_thread()


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
