"""Worker processes of the default executor, started and stopped from the driver: where each runs (its slot),
how one is spawned, and workers started ahead of need.

This module imports neither torch nor the rest of trainlab's engine, so the command line can start the first
worker before the driver imports torch (:func:`prestart`): a worker pays about 4–5 s to become warm (Python,
torch, ``torch._dynamo``, trainlab; ``trainlab.engine.worker``), the driver about 3 s to import trainlab and
check the study, and on a machine with two cores the two overlap instead of adding up. The executor takes a
pre-started worker of the slot it needs (:func:`take`) and starts the others itself; what nobody took is
terminated (:func:`discard`, also at exit) — it never received a job, so nothing is lost.
"""

from __future__ import annotations

import atexit
import contextlib
import multiprocessing as mp
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trainlab.engine.runtime import die_with_parent
from trainlab.errors import ConfigError
from trainlab.measure.load import usable_cpus


@dataclass(frozen=True)
class WorkerSlot:
    """Where a worker runs: its CPUs (None: every CPU this study may use) and its GPU (None: what it inherits)."""

    index: int
    cpus: tuple[int, ...] | None = None
    gpu: str | None = None  # one CUDA_VISIBLE_DEVICES entry, set before CUDA starts in the worker


@dataclass
class WorkerHandle:
    """The driver's handle on one worker process (see ``trainlab.engine.worker``)."""

    slot: WorkerSlot
    proc: Any
    inbox: Any  # driver -> worker: a RunJob, or None to stop
    events: Any  # worker -> driver: the job's events; one queue per worker, so a killed worker locks no other
    job: Any = None  # the RunJob it is running
    ended: bool = False  # the current job's RunEnded has arrived
    runs: int = 0


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


def worker_entry(slot: WorkerSlot, inbox: Any, events: Any) -> None:
    """A spawned worker's first code: it imports the worker side (torch and all) only here, in the child."""
    die_with_parent()  # before the slow imports: a driver killed meanwhile leaves no worker behind
    from trainlab.engine.worker import worker_main  # deferred: as above

    worker_main(slot, inbox, events)
    # Asked to stop, so every event has been delivered (the driver stops only idle workers). Without Python's
    # teardown of torch and the runs' objects (~1 s, which the driver would wait for at the end of a study):
    events.close()
    events.join_thread()  # the queue's feeder thread has written everything
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def start_worker(slot: WorkerSlot) -> WorkerHandle:
    """Spawn a worker for ``slot``; it warms up on its own and then waits for its first job."""
    ctx = mp.get_context("spawn")
    inbox, events = ctx.Queue(), ctx.Queue()
    proc = ctx.Process(target=worker_entry, args=(slot, inbox, events), name=f"trainlab-worker-{slot.index}")
    with _main_not_reimported():
        proc.start()
    return WorkerHandle(slot, proc, inbox, events)


def stop_worker(w: WorkerHandle, *, wait: bool = True) -> None:
    """Ask an idle worker to exit (``wait``: up to a few seconds, then it is terminated); without ``wait`` it is
    terminated at once (one that never got a job, still warming up: nothing of it is needed)."""
    if w.proc.is_alive():
        if wait:
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


# Workers started ahead of need (prestart), not yet taken by an executor.
_WARM: list[WorkerHandle] = []


def prestart(slots: Sequence[WorkerSlot]) -> None:
    """Start a worker for each of ``slots`` that has none waiting, so that it warms up while the driver gets
    ready; the executor then :func:`take` s it."""
    global _exit_hook
    for slot in slots:
        if not any(w.slot == slot for w in _WARM):
            _WARM.append(start_worker(slot))
    if not _exit_hook:
        # atexit runs last-registered first. Registered here, after starting a process has registered
        # multiprocessing's own exit hook, which joins every non-daemon child: a worker still waiting for a
        # job would make it wait forever, so discard must run before it.
        atexit.register(discard)
        _exit_hook = True


def prestart_for_command(jobs: int | str) -> None:
    """What ``trainlab run`` starts before it imports torch: the workers of ``--jobs`` (an int or its text), when
    their slots are known without torch. Not for ``auto`` (it depends on the study's ``train.threads``), nor for
    several jobs on a machine with several NVIDIA GPUs (the slots' GPUs are counted through torch); the executor
    starts those itself. A value that is not a number is left for the command to report."""
    try:
        n = int(jobs)
    except (TypeError, ValueError):
        return
    if n < 1 or (n > 1 and _nvidia_gpus() > 1):
        return
    try:
        slots = plan_slots(n, usable_cpus())
    except ConfigError:  # more jobs than CPUs: the command reports it
        return
    prestart(slots)


def take(slot: WorkerSlot) -> WorkerHandle | None:
    """A pre-started worker of ``slot`` (removed from the waiting ones), or None; one that died is dropped."""
    for w in list(_WARM):
        if w.slot == slot:
            _WARM.remove(w)
            if w.proc.is_alive():
                return w
            stop_worker(w, wait=False)
    return None


def discard() -> None:
    """Terminate every pre-started worker no executor took (it never received a job)."""
    while _WARM:
        stop_worker(_WARM.pop(), wait=False)


_exit_hook = False  # discard is registered to run at exit (see prestart)


def _nvidia_gpus() -> int:
    """NVIDIA GPUs the kernel driver lists (without CUDA or torch); 0 where there is no such driver."""
    with contextlib.suppress(OSError):
        return len(list(Path("/proc/driver/nvidia/gpus").iterdir()))
    return 0


@contextlib.contextmanager
def _main_not_reimported() -> Iterator[None]:
    """While a worker is spawned, the parent's ``__main__`` looks like it has no file or module name, so the
    child does not import it again.

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


__all__ = [
    "WorkerHandle",
    "WorkerSlot",
    "discard",
    "plan_slots",
    "prestart",
    "prestart_for_command",
    "start_worker",
    "stop_worker",
    "take",
]
