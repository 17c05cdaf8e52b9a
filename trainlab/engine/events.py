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

``EpochRow`` and ``RunOutcome`` (and the run statuses) are defined in :mod:`trainlab.records` and re-exported.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

# The typed records live below the store (trainlab.records) so the report and trackers read them too; events
# carry them, and these names stay importable from here.
from trainlab.records import DISK_FULL, OUTCOMES, EpochRow, RunOutcome

if TYPE_CHECKING:
    from trainlab.study import RunSpec


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


__all__ = [
    "DISK_FULL",
    "OUTCOMES",
    "BatchProgress",
    "Emit",
    "EpochEnded",
    "EpochRow",
    "Event",
    "Fanout",
    "RunDispatched",
    "RunEnded",
    "RunOutcome",
    "RunStarted",
    "Sink",
]
