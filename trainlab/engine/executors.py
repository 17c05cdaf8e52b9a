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

import atexit
import contextlib
import multiprocessing.connection as mp_connection
import queue as queue_mod
import signal
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from trainlab.data import DatasetCache
from trainlab.engine.events import Event, RunDispatched, RunEnded, RunOutcome, Sink
from trainlab.engine.loop import execute_run
from trainlab.engine.pool import WorkerHandle, plan_slots, start_worker, stop_worker, take
from trainlab.measure.load import usable_cpus
from trainlab.measure.profile_cache import ProfileCache
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

    def close(self) -> None:
        """Release what the executor keeps between calls of :meth:`run` (a study runs in rounds: tuning
        trials, seeds added until settled); called once the study's last round has run."""
        ...


class InlineExecutor:
    """Every run in this process, one after the other."""

    name = "inline"

    def __init__(self, datasets: DatasetCache | None = None) -> None:
        self.datasets = datasets
        self.profiles = ProfileCache()  # a model's profile, counted once for all its runs here

    def close(self) -> None:
        """Nothing to release: the runs ran in this process."""

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
                profiles=self.profiles,
            )
            sink.event(spec, RunEnded(outcome))


class SubprocessExecutor:
    """Runs in warm worker processes (``jobs`` of them side by side, each pinned to its own CPUs when more than
    one), one run at a time per worker; a worker is reused for the next run unless it died or its run failed.

    ``jobs``: runs side by side (default 1). ``cpus``: the CPUs to share out (default: this process's
    affinity), ``len(cpus) // jobs`` per worker. ``gpus``: CUDA device ids, one per worker in turn (default:
    none set; the runs see what this process sees). ``runs_per_worker``: retire a worker after this many runs
    (None: never; 1: a fresh process for every run, the strictest isolation, at ~4 s per run).

    The workers outlive a call of :meth:`run`: a study that runs in rounds (tuning trials, one round per TPE
    trial; seeds added until settled) would otherwise start every worker again each round (~3 s each on a
    2-core machine: torch and ``torch._dynamo`` imported again). :meth:`close` stops them."""

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
        self.cpus = sorted(cpus) if cpus is not None else usable_cpus()
        self.gpus = list(gpus or [])
        self.runs_per_worker = runs_per_worker
        self.slots = plan_slots(jobs, self.cpus, self.gpus)
        self._workers: dict[int, WorkerHandle] = {}  # by slot index: idle between calls of run
        self._at_exit = False  # close registered to run at exit

    def close(self) -> None:
        """Stop the idle workers (each is asked to exit; one that does not within seconds is terminated)."""
        while self._workers:
            stop_worker(self._workers.popitem()[1])

    def run(self, jobs: Sequence[RunJob], sink: Sink) -> None:
        pending = deque(jobs)
        workers = self._workers
        try:
            while pending or any(w.job is not None for w in workers.values()):
                for slot in self.slots:
                    if not pending:
                        break
                    w = workers.get(slot.index)
                    if w is not None and w.job is None and not w.proc.is_alive():  # died while idle
                        stop_worker(w)
                        w = None
                    if w is None:  # a worker pre-started for this slot (pool.prestart), else a new one
                        w = workers[slot.index] = take(slot) or start_worker(slot)
                        if not self._at_exit:
                            # A caller that never calls close: at exit multiprocessing joins every child, and
                            # an idle worker would keep it waiting. Registered after a start, so it runs first.
                            atexit.register(self.close)
                            self._at_exit = True
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
            self.close()
            raise

    def _drain(self, w: WorkerHandle, sink: Sink) -> bool:
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
                    stop_worker(w)
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


def _death_reason(code: int | None) -> str:
    """Why a run's process ended without an outcome: a signal (e.g. the kernel's OOM killer) or a hard crash."""
    if code is not None and code < 0:
        name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else str(-code)
        why = f"run process killed by signal {name}"
        if name == "SIGKILL":
            why += " (out of memory, or killed by the user)"
        return why
    return f"run process exited with code {code} before recording a result"
