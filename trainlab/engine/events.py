"""What a run tells the rest of the world: typed records and events, and the sinks that receive them.

A run (``trainlab.engine.loop``) emits events through one callable; an executor carries them to the driver
process, where a :class:`Fanout` hands each to every sink in order: the store first (so an epoch is committed
before anything else sees it), then the terminal display, then any tracker. Events are plain dataclasses of
plain data, so they cross process boundaries (a queue today, a Ray object store tomorrow) unchanged.

::

    RunDispatched  the driver sends a run to an executor (index k of n; resuming or fresh)
    RunStarted     set-up done: device, batches per epoch, environment, profile, and the epochs already done
    BatchProgress  a running loss inside an epoch (CPU only: reading it on CUDA would synchronise)
    EpochEnded     one completed epoch's row (training phase timed, then evaluation)
    RunEnded       the outcome: status, per-run figures, or the reason it failed
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from trainlab.study import RunSpec

# Statuses of a run's outcome. "skipped": the run cannot happen here (e.g. no CUDA) and is not an error.
STATUSES = ("done", "diverged", "failed", "skipped")
# RunOutcome.detail of a run that failed because the disk filled up: the driver stops the study (a rerun resumes).
DISK_FULL = "disk full"


@dataclass
class EpochRow:
    """One completed epoch. Times in seconds; losses are data losses (no L2 penalty); accuracies are fractions.

    ``train_*`` are running means over the epoch's batches in training mode; ``test_*`` are computed after the
    epoch in eval mode (absent from an epoch that diverged before evaluation). The keys and their definitions
    are the per-epoch entries of ``trainlab.measure.metrics.EPOCH_METRICS``.
    """

    epoch: int  # 1-based
    train_loss: float
    train_acc: float | None  # None for regression
    epoch_time_s: float
    data_time_s: float
    compute_time_s: float
    steps: int
    samples: int
    lr: float
    test_loss: float | None = None
    test_acc: float | None = None
    test_mae: float | None = None  # regression only
    test_r2: float | None = None  # regression only
    data_gpu_time_s: float | None = None  # CUDA only: batch preparation on the GPU timeline
    data_startup_s: float | None = None  # the wait for the first batch (worker start-up), part of data_time_s
    cpu_cores: float | None = None  # cores the run's process tree kept busy (CPU s / wall s)
    other_cores: float | None = None  # cores other work kept busy on the run's CPUs meanwhile
    cores: int | None = None  # CPUs the run may use (its affinity)
    evaluated: bool = False

    def to_record(self) -> dict[str, Any]:
        """The row as stored: test figures only when evaluated, regression figures only for regression."""
        d = asdict(self)
        del d["evaluated"]
        if not self.evaluated:
            for key in ("test_loss", "test_acc", "test_mae", "test_r2"):
                del d[key]
        else:
            for key in ("test_mae", "test_r2"):
                if d[key] is None:
                    del d[key]
        for key in ("data_gpu_time_s", "data_startup_s", "cpu_cores", "other_cores", "cores"):
            if d[key] is None:
                del d[key]
        return d

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> EpochRow:
        """Inverse of :meth:`to_record` (a stored row, e.g. from a checkpoint)."""
        known = {k: record[k] for k in cls.__dataclass_fields__ if k in record and k != "evaluated"}
        return cls(**known, evaluated="test_loss" in record)


@dataclass
class RunOutcome:
    """What a run produced: its status, per-run figures (keys of the metric catalogue and the run's context),
    and, on failure, the reason (``error``) and a traceback for failures that are not the user's input."""

    status: str  # one of STATUSES
    results: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    detail: str | None = None

    @property
    def disk_full(self) -> bool:
        """The run failed because the disk filled up (not for its own reasons)."""
        return self.status == "failed" and self.detail == DISK_FULL


@dataclass
class RunDispatched:
    index: int  # 1-based position in the study's plan
    total: int
    resuming: bool  # a checkpoint exists: the run continues from its last completed epoch


@dataclass
class RunStarted:
    epochs: int
    batches: int  # training batches per epoch
    start_epoch: int
    device: str
    env: dict[str, Any]
    profile: dict[str, Any] | None
    history: list[EpochRow] = field(default_factory=list)  # epochs completed before this start (resume)
    notes: list[str] = field(default_factory=list)  # what the user should know, e.g. a checkpoint set aside


@dataclass
class BatchProgress:
    epoch: int
    batch: int  # 1-based
    loss: float  # running mean over the epoch so far


@dataclass
class EpochEnded:
    row: EpochRow


@dataclass
class RunEnded:
    outcome: RunOutcome


Event = RunDispatched | RunStarted | BatchProgress | EpochEnded | RunEnded
Emit = Callable[[Event], None]


class Sink(Protocol):
    """Receives a run's events in the driver process, in the order the run emitted them."""

    def event(self, spec: RunSpec, event: Event) -> None: ...


class Fanout:
    """Hands each event to every sink in order. ``required`` sinks (the store) fail the study when they fail;
    a best-effort sink (a tracker) that raises is reported once on stderr and then left out."""

    def __init__(self, required: Sequence[Sink], best_effort: Sequence[Sink] = ()) -> None:
        self.required = list(required)
        self.best_effort = list(best_effort)

    def event(self, spec: RunSpec, event: Event) -> None:
        for sink in self.required:
            sink.event(spec, event)
        for sink in list(self.best_effort):
            try:
                sink.event(spec, event)
            except Exception as exc:  # a tracker's failure must not fail the study: say so once, drop it
                print(
                    f"warning: {type(sink).__name__} failed and is disabled: {type(exc).__name__}: {exc}",
                    file=sys.stderr,
                )
                self.best_effort.remove(sink)
