"""Was the machine busy? CPU accounting of the run and of the machine over an interval (an epoch).

A timing comparison is only an effect of the variants when each was timed on the same, otherwise idle
machine. Over each epoch the loop records, from the operating system's CPU accounting (``psutil``):

- ``cpu_cores``: CPU seconds used by the run's process tree (the process, its DataLoader workers and any
  other child, live or already reaped) / wall seconds: the cores the run kept busy on average.
- ``other_cores``: CPU seconds the machine spent busy (user, nice, system, irq, softirq, steal) on the CPUs
  this process may run on, minus the run's own, / wall seconds: the cores something else kept busy (other
  jobs, other runs of a parallel executor, a hypervisor stealing time). Never below 0.
- ``cores``: the CPUs this process may run on (its affinity mask).

An epoch is *busy* when other work used at least :data:`BUSY_MIN_OTHER_CORES` cores and the run and the
others together saturated the CPUs (``cpu_cores + other_cores >= BUSY_SATURATION * cores``): only then did
the run compete for CPU time. A big machine with spare cores is not busy because someone else uses a few.
Where the accounting is unavailable (no ``/proc``, no affinity), the figures are None and nothing is marked.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

import psutil

# Other processes must have kept at least this many cores busy over the epoch (background daemons use a few
# hundredths; a competing job one or more).
BUSY_MIN_OTHER_CORES = 0.25
# ... and the run plus the others must have used this share of the CPUs: the run competed for CPU time.
BUSY_SATURATION = 0.85
# A run's training times are machine-affected when its busy epochs added more than this share to them (over the
# median quiet epoch): one busy epoch in 25 that took 30% longer moves the total by about 1%, inside the noise.
BUSY_EXCESS_SHARE = 0.02


@dataclass(frozen=True)
class LoadSample:
    """CPU use over one interval: wall seconds, and average cores used by the run and by everything else."""

    wall_s: float
    cpu_cores: float
    other_cores: float
    cores: int

    @property
    def busy(self) -> bool:
        """Other work competed with the run for the CPUs (see the module docstring)."""
        return is_busy(self.cpu_cores, self.other_cores, self.cores)


def is_busy(cpu_cores: float | None, other_cores: float | None, cores: int | None) -> bool:
    """The busy-machine rule on stored figures; False when any of them is missing."""
    if cpu_cores is None or other_cores is None or not cores:
        return False
    return other_cores >= BUSY_MIN_OTHER_CORES and cpu_cores + other_cores >= BUSY_SATURATION * cores


def usable_cpus() -> list[int]:
    """The CPUs this process may run on (its affinity; every CPU where there is none, as on macOS)."""
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux: every CPU
        return list(range(os.cpu_count() or 1))


_BUSY_FIELDS = ("user", "nice", "system", "irq", "softirq", "steal")


class LoadMeter:
    """Measures :class:`LoadSample` between :meth:`start` and :meth:`stop` (cheap: a few /proc reads)."""

    def __init__(self) -> None:
        self._cpus = usable_cpus()
        self._start: tuple[float, float, float] | None = None

    def _read(self) -> tuple[float, float, float] | None:
        """(wall s, own tree CPU s, machine busy CPU s on our CPUs), or None when unavailable."""
        if not self._cpus:
            return None
        try:
            wall = time.perf_counter()
            me = psutil.Process()
            t = me.cpu_times()
            own = t.user + t.system + t.children_user + t.children_system  # children: reaped ones
            for child in me.children(recursive=True):  # live ones (DataLoader workers)
                try:
                    ct = child.cpu_times()
                    own += ct.user + ct.system
                except psutil.Error:  # exited between listing and reading
                    continue
            per_cpu = psutil.cpu_times(percpu=True)
            busy = 0.0
            for i in self._cpus:
                if i < len(per_cpu):
                    busy += sum(getattr(per_cpu[i], f, 0.0) for f in _BUSY_FIELDS)
            return wall, own, busy
        except (OSError, psutil.Error):
            return None

    def start(self) -> None:
        """Begin an interval."""
        self._start = self._read()

    def stop(self) -> LoadSample | None:
        """End the interval; None when the accounting is unavailable or the interval too short to mean much."""
        end = self._read()
        if self._start is None or end is None or not self._cpus:
            return None
        wall = end[0] - self._start[0]
        if wall < 0.05:  # the OS counters tick at 10 ms: a shorter interval is mostly rounding
            return None
        own = max(0.0, end[1] - self._start[1]) / wall
        other = max(0.0, (end[2] - self._start[2]) / wall - own)
        return LoadSample(wall, own, other, len(self._cpus))


class TimedEpoch(Protocol):
    """What the busy-machine accounting reads of one stored epoch (``trainlab.records.EpochRow`` has it; this
    layer may not import it). Read-only, so a row whose field is narrower (``epoch_time_s: float``) fits."""

    @property
    def epoch_time_s(self) -> float | None: ...  # the epoch's wall time, seconds
    @property
    def cpu_cores(self) -> float | None: ...  # cores the run's process tree kept busy (CPU s / wall s)
    @property
    def other_cores(self) -> float | None: ...  # cores other work kept busy on the run's CPUs meanwhile
    @property
    def cores(self) -> int | None: ...  # CPUs the run may use (its affinity)


E = TypeVar("E", bound=TimedEpoch)


def busy_rows(epochs: Sequence[E]) -> list[E]:
    """The stored epoch rows that were timed on a busy machine."""
    return [e for e in epochs if is_busy(e.cpu_cores, e.other_cores, e.cores)]


def busy_excess(epochs: Sequence[TimedEpoch]) -> float:
    """The share of a run's training time its busy epochs added over its median quiet epoch (1 when no epoch was
    quiet, 0 when none was busy): how far other work can have moved the run's training times."""
    busy = busy_rows(epochs)
    if not busy:
        return 0.0
    marked = {id(e) for e in busy}  # by identity: two epochs with equal figures are still two epochs
    times = [(id(e), t) for e in epochs if isinstance(t := e.epoch_time_s, int | float)]
    quiet = [t for i, t in times if i not in marked]
    total = sum(t for _i, t in times)
    if not quiet or total <= 0:
        return 1.0
    typical = statistics.median(quiet)
    return sum(max(0.0, t - typical) for i, t in times if i in marked) / total


def describe_busy(epochs: Sequence[TimedEpoch]) -> str:
    """E.g. ``other work kept up to 1.0 of 2 CPUs busy in 3 of 5 epochs (+40% training time)``; "" when quiet."""
    busy = busy_rows(epochs)
    if not busy:
        return ""
    worst, cores, excess = max(e.other_cores or 0.0 for e in busy), busy[0].cores, busy_excess(epochs)
    if excess >= 1:
        added = "all epochs busy"
    elif excess >= 0.005:
        added = f"+{excess * 100:.0f}% training time"
    else:  # under half a percent would read as "+0%"
        added = "under 1% added to the training time"
    return f"other work kept up to {worst:.1f} of {cores} CPUs busy in {len(busy)} of {len(epochs)} epochs ({added})"


__all__ = [
    "BUSY_EXCESS_SHARE",
    "BUSY_MIN_OTHER_CORES",
    "BUSY_SATURATION",
    "LoadMeter",
    "LoadSample",
    "TimedEpoch",
    "busy_excess",
    "busy_rows",
    "describe_busy",
    "is_busy",
]
