"""The epoch clock: wall time of an epoch's training phase, split into data time and compute time.

Definitions (docs/measurements.md):
- data time: how long the loop waits for ``next(loader)`` (the loader's own work, e.g. the resident loader's
  gather + normalise, or a DataLoader's collation); the copy to the device is not data time.
- data start-up: the wait for the epoch's first batch, part of data time. With DataLoader workers it holds
  the workers' start-up (process launch, dataset hand-over, the first ``prefetch_factor`` batches), a cost per
  epoch (per run with persistent workers) that steady-state data time (data time minus start-up) does not.
- compute time: from a batch in hand to the optimizer step done (copy to device, forward, loss, backward,
  step). On CUDA it is measured with a pair of CUDA events per step, read once at the end of the epoch, so
  the loop never synchronises inside an epoch.
- epoch time: wall time from the start of the epoch's first ``next`` to the end of its last step, with CUDA
  synchronised at both boundaries.
- data GPU time (CUDA only): the resident loader prepares batches on the GPU (gather, convert, normalise,
  augment), so its host-side ``next`` returns as soon as that work is queued; a pair of CUDA events around each
  ``next`` measures the preparation on the GPU timeline, where it competes with the steps.
All times are seconds.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TypeVar

import torch

T = TypeVar("T")


@dataclass
class EpochTimes:
    """One epoch's training-phase timings, in seconds."""

    epoch_time_s: float
    data_time_s: float
    compute_time_s: float
    steps: int
    data_gpu_time_s: float | None = None  # CUDA: batch preparation on the GPU timeline
    data_startup_s: float = 0.0  # the wait for the first batch (included in data_time_s)


def synchronize(device: torch.device) -> None:
    """Wait for queued work on ``device`` (a no-op on CPU) so a host clock read means what it says."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class EpochClock:
    """Times one epoch at a time: ``start()``, ``batches(loader)``, ``compute_start()/compute_end()``, ``stop()``."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.cuda = device.type == "cuda"
        self._reset()

    def _reset(self) -> None:
        self.data_s = 0.0
        self.startup_s = 0.0
        self.compute_s = 0.0
        self.steps = 0
        self._events: list[tuple[torch.cuda.Event, torch.cuda.Event]] = []
        self._data_events: list[tuple[torch.cuda.Event, torch.cuda.Event]] = []
        self._c0 = 0.0
        self._t0 = 0.0

    def start(self) -> None:
        """Begin an epoch: synchronise, then start the wall clock."""
        self._reset()
        synchronize(self.device)
        self._t0 = time.perf_counter()

    def batches(self, loader: Iterable[T]) -> Iterator[T]:
        """Iterate ``loader``, adding the time spent waiting in ``next`` to data time."""
        first = True
        t0 = time.perf_counter()
        it = iter(loader)  # a DataLoader with workers starts them here: part of the first wait
        while True:
            if not first:
                t0 = time.perf_counter()
            if self.cuda:
                begin = torch.cuda.Event(enable_timing=True)
                begin.record()
            try:
                batch = next(it)
            except StopIteration:
                return
            if self.cuda:
                ready = torch.cuda.Event(enable_timing=True)
                ready.record()
                self._data_events.append((begin, ready))
            waited = time.perf_counter() - t0
            if first:
                self.startup_s, first = waited, False
            self.data_s += waited
            yield batch

    def compute_start(self) -> None:
        """Mark a batch in hand: compute time starts."""
        if self.cuda:
            start = torch.cuda.Event(enable_timing=True)
            start.record()
            self._events.append((start, start))
        else:
            self._c0 = time.perf_counter()

    def compute_end(self) -> None:
        """Mark the optimizer step done: compute time stops."""
        if self.cuda:
            end = torch.cuda.Event(enable_timing=True)
            end.record()
            self._events[-1] = (self._events[-1][0], end)
        else:
            self.compute_s += time.perf_counter() - self._c0
        self.steps += 1

    def stop(self) -> EpochTimes:
        """End the epoch: synchronise, read the wall clock, and (CUDA) sum the step events."""
        synchronize(self.device)
        epoch = time.perf_counter() - self._t0
        data_gpu = None
        if self.cuda:
            self.compute_s = sum(s.elapsed_time(e) for s, e in self._events) / 1000.0  # ms -> s
            data_gpu = sum(s.elapsed_time(e) for s, e in self._data_events) / 1000.0
        return EpochTimes(epoch, self.data_s, self.compute_s, self.steps, data_gpu, self.startup_s)
