"""The Ray executor: a study's runs as Ray tasks on a cluster, fault-tolerant, with the driver the store's writer.

Each run is one Ray task with its resources: ``train.threads`` CPUs (1 when unset), and one GPU (or the
fraction ``gpus_per_run``) when the run's device is cuda — or auto on a cluster that has GPUs; Ray sets
``CUDA_VISIBLE_DEVICES`` for the task. Runs start as resources free up.

Events: a task sends each event of its run to a queue actor (``ray.util.queue.Queue``); the driver drains it and
hands the events to its sink, so the study's SQLite store is written by the driver alone, epoch by epoch, as with
the other executors, and ``trainlab report`` works while the study runs.

Faults: a task whose worker process or node dies is retried by Ray (``max_retries`` times, system failures
only); the retry finds the run's checkpoint — in a folder every node can reach (``storage``, default the
study's output folder) — and continues after its last completed epoch; the store's epoch rows are set to the
checkpoint's (``RunStarted.history``), so no finished epoch is lost or recorded twice. A run that fails for its
own reasons (NaN, out of memory, a bad model) returns a failed outcome: Ray sees a successful task and does not
retry it. A run whose retries are exhausted is recorded as failed with Ray's reason. Ctrl-C (or a sink that
fails, e.g. on a full disk) cancels the tasks still running or queued and re-raises; a rerun skips the finished
runs and resumes the others. If the queue actor itself dies (its node lost, killed by hand), the events in it are
lost: the tasks still running or queued are cancelled and their runs recorded as failed with that reason — never
a traceback — and a rerun resumes them from their checkpoints.

An explicit cluster address (``host:port`` or ``ray://host:port``) is probed before anything is written: a port
with nothing listening, or one that accepts and never answers, is a ConfigError within seconds (``ray.init``
itself would retry for minutes). ``auto``, ``local`` and no address are left to Ray's own rules.

``ray`` is an optional extra (``pip install 'trainlab[ray]'``), imported only when this executor runs.
"""

from __future__ import annotations

import contextlib
import functools
import socket
import uuid
from collections.abc import Sequence
from typing import Any

from trainlab.engine.events import Event, RunDispatched, RunEnded, RunOutcome, Sink
from trainlab.engine.executors import RunJob
from trainlab.engine.loop import execute_run
from trainlab.engine.runtime import tune_allocator
from trainlab.engine.worker import GlobalState, release_memory
from trainlab.errors import ConfigError
from trainlab.measure.profile_cache import ProfileCache

POLL_S = 0.1  # how often the driver drains the event queue while tasks run
PROBE_S = 3.0  # how long the address probe waits to connect, then for an answer (s); a live GCS answers in ms
# The HTTP/2 client connection preface and an empty SETTINGS frame: Ray's GCS and Ray Client servers speak gRPC,
# which answers it with its own SETTINGS frame (a TLS server closes the connection: an answer too).
H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
QUEUE_NAME = "trainlab-events"  # the queue actor's name prefix (`ray list actors` shows it)


def import_ray() -> Any:
    """The ``ray`` module, or a ConfigError naming the extra that provides it."""
    try:
        import ray  # deferred: an optional extra (trainlab[ray]), ~1 s to import
    except ImportError:
        raise ConfigError(
            "the ray executor needs Ray, an optional extra: pip install 'trainlab[ray]' (or pip install ray)"
        ) from None
    return ray


def host_port(address: str | None) -> tuple[str, int] | None:
    """The ``(host, port)`` of an explicit ``host:port`` or ``ray://host:port`` address (``[::1]:6379`` too);
    None for ``auto``, ``local``, no address or anything else, which Ray's own rules handle."""
    if not address:
        return None
    rest = address.strip().removeprefix("ray://")
    host, sep, port = rest.rpartition(":")
    host = host.strip("[]")  # an IPv6 literal
    if not sep or not host or not port.isdigit() or "/" in rest:
        return None
    return host, int(port)


def probe_address(address: str | None, timeout_s: float = PROBE_S) -> None:
    """Raise a ConfigError naming ``address`` when nothing there answers within ``timeout_s`` (nothing
    listening, an unknown host, or a socket that accepts and stays silent); return when something answers.

    ``ray.init`` would retry a dead address for minutes, silently; this takes at most 2 x ``timeout_s``."""
    target = host_port(address)
    if target is None:
        return
    hint = "start one with `ray start --head --port=6379`, or check --address / RAY_ADDRESS"
    try:
        sock = socket.create_connection(target, timeout=timeout_s)
    except OSError as exc:  # refused, unreachable, unknown host, or no connection within timeout_s
        why = "no answer" if isinstance(exc, TimeoutError) else (exc.strerror or type(exc).__name__)
        raise ConfigError(f"no Ray cluster at address '{address}' ({why}): {hint}") from None
    with sock:
        try:
            sock.sendall(H2_PREFACE)
            sock.recv(1)  # any byte, or the connection closed: something answers; Ray says whether it is Ray
        except TimeoutError:
            raise ConfigError(
                f"no Ray cluster at address '{address}': it accepts connections but does not answer within"
                f" {timeout_s:g} s; {hint}"
            ) from None
        except OSError:  # reset by the other side: it answered, if rudely; Ray will say what it is
            pass


# Ray reuses a worker process for the next task of the same function, as the subprocess executor reuses its
# workers: a model's profile is counted once there, and after each run torch's global settings are put back and
# freed memory goes back to the kernel (engine.worker), so the next run starts from the same state and baseline.
_PROFILES = ProfileCache()


@functools.cache
def _initial_state() -> GlobalState:
    """torch's global settings as this process had them before its first run."""
    return GlobalState.capture()


def _run_task(job: RunJob, queue: Any) -> RunOutcome:
    """A run on a Ray worker: every event goes to the driver's queue, tagged with the run id."""
    state = _initial_state()
    tune_allocator()  # the worker process is the run's own while it runs (see engine.runtime)

    def emit(event: Event) -> None:
        queue.put((job.spec.run_id, event))

    try:
        return execute_run(
            job.spec,
            emit=emit,
            checkpoint_path=job.checkpoint,
            weights_path=job.weights,
            study_path=job.study_path,
            profiles=_PROFILES,
        )
    finally:
        state.restore()
        release_memory()


class RayExecutor:
    """Runs jobs as Ray tasks, all at once as resources allow; events come back through a queue actor."""

    name = "ray"

    def __init__(self, address: str | None = None, max_retries: int = 3, gpus_per_run: float = 1.0) -> None:
        self.address = address
        self.max_retries = max_retries
        self.gpus_per_run = gpus_per_run
        self.ray = import_ray()
        probe_address(address)  # before the study writes anything: a dead address fails now, not in 5 minutes

    def _connect(self) -> None:
        if not self.ray.is_initialized():
            # address None: Ray's own rules (RAY_ADDRESS, a running local cluster, else a new local one).
            self.ray.init(address=self.address, include_dashboard=False, log_to_driver=False)

    def _resources(self, job: RunJob) -> dict[str, float]:
        tc = job.spec.config.train
        cpus = float(tc.threads or 1)
        gpu = tc.device == "cuda" or (tc.device == "auto" and self.ray.cluster_resources().get("GPU", 0) > 0)
        return {"num_cpus": cpus, "num_gpus": self.gpus_per_run if gpu else 0}

    def close(self) -> None:
        """Nothing to release: the cluster and its workers are Ray's (``ray.shutdown`` is the caller's)."""

    def run(self, jobs: Sequence[RunJob], sink: Sink) -> None:
        if not jobs:
            return
        self._connect()
        from ray.exceptions import RayActorError  # deferred with ray itself
        from ray.util.queue import Queue  # deferred with ray itself

        name = f"{QUEUE_NAME}-{uuid.uuid4().hex[:12]}"  # unique: several studies may share a cluster
        queue = Queue(actor_options={"num_cpus": 0, "name": name})
        task = self.ray.remote(_run_task)
        by_id = {job.spec.run_id: job for job in jobs}
        pending: dict[Any, RunJob] = {}
        for job in jobs:
            sink.event(job.spec, RunDispatched(job.index, job.total, job.resuming))
            ref = task.options(max_retries=self.max_retries, retry_exceptions=False, **self._resources(job)).remote(
                job, queue
            )
            pending[ref] = job
        try:
            while pending:
                ready, _ = self.ray.wait(list(pending), num_returns=1, timeout=POLL_S)
                self._drain(queue, by_id, sink)
                for ref in ready:
                    try:
                        outcome = self.ray.get(ref)
                    except Exception as exc:  # retries exhausted: the worker or node kept dying
                        outcome = RunOutcome("failed", error=f"Ray task failed after retries: {type(exc).__name__}")
                    self._drain(queue, by_id, sink)  # the task's last events are in the queue before it returns
                    job = pending.pop(ref)  # only now: were the queue gone, this run would still be pending
                    sink.event(job.spec, RunEnded(outcome))
        except RayActorError as exc:  # the queue actor died: its events are lost, the runs cannot report
            self._cancel(pending)
            error = (
                f"the study's event queue (Ray actor {name}) died ({type(exc).__name__}), so this run's events"
                " could not reach the driver; run the same command again to resume it from its checkpoint"
            )
            for job in sorted(pending.values(), key=lambda j: j.index):
                sink.event(job.spec, RunEnded(RunOutcome("failed", error=error)))
        except BaseException:  # Ctrl-C, or a sink that failed (a full disk): no task may go on unheard
            self._cancel(pending)
            raise
        finally:
            with contextlib.suppress(Exception):  # the cluster may be gone already: nothing to clean up then
                self.ray.kill(queue.actor)

    def _cancel(self, pending: dict[Any, RunJob]) -> None:
        """Cancel the tasks still running or queued (force: their workers are killed, their checkpoints kept)."""
        for ref in pending:
            with contextlib.suppress(Exception):  # a task that finished meanwhile cannot be cancelled: fine
                self.ray.cancel(ref, force=True)

    @staticmethod
    def _drain(queue: Any, by_id: dict[str, RunJob], sink: Sink) -> None:
        """Hand every queued event to the sink, in the order the runs sent them."""
        while True:
            n = queue.qsize()
            if n == 0:
                return
            for run_id, event in queue.get_nowait_batch(n):
                sink.event(by_id[run_id].spec, event)


__all__ = ["RayExecutor", "host_port", "import_ray", "probe_address"]
