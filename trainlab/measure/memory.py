"""Peak memory during training.

- CUDA: ``torch.cuda.max_memory_allocated`` (tensors) and ``max_memory_reserved`` (the caching allocator's
  pool), reset at the start of training.
- CPU: the run process's peak resident set size (``VmHWM`` in ``/proc/self/status``). It is reset at the start
  of training by writing 5 to ``/proc/self/clear_refs`` (Linux >= 4.0), so it covers training only; its
  value before training (``VmRSS``) is reported for reference. Each run has its own process, so imports and
  data loading of other runs never count.

The gross peak (``peak_mem_mb``) includes what the process held before training: on a CPU the interpreter,
torch's libraries (about 400 MiB), the loaded data and the model; on CUDA the model's parameters and buffers and
any resident data. So each run also records its *baseline* (``mem_baseline_mb``): the same measure taken when the
meter starts, after the model, optimizer, data and loaders are set up and just before the first training step
(CPU: the resident set right after the peak's reset, i.e. the value ``VmHWM`` restarts from; CUDA:
``torch.cuda.memory_allocated`` when its peak is reset). ``peak_mem_net_mb`` = ``peak_mem_mb`` -
``mem_baseline_mb`` is what training itself added: activations, gradients, optimizer state, batches (and, on a
CPU, any other growth of the process during training, e.g. allocator caches). Both peaks start from their
baseline, so the net figure is >= 0. Where the CPU peak could not be reset the gross peak covers the process's
whole life (data loading included), so no baseline or net figure is given (None).
All values are MiB (2^20 bytes).
"""

from __future__ import annotations

from pathlib import Path

import torch

MIB = 2**20


def _status_kb(field: str) -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return float(line.split()[1])  # kB
    except OSError:
        pass
    return None


def _reset_peak_rss() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def current_rss_mb() -> float | None:
    """The process's resident set size now, MiB (None where /proc is unavailable)."""
    kb = _status_kb("VmRSS")
    return kb / 1024.0 if kb is not None else None


class MemoryMeter:
    """``start()`` before training, ``stop()`` after: returns the peak-memory figures of that interval."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.rss_before_mb: float | None = None
        self.rss_reset = False
        self.baseline_mb: float | None = None

    def start(self) -> None:
        self.rss_before_mb = current_rss_mb()
        self.rss_reset = _reset_peak_rss()
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)  # the peak restarts from what is allocated now
            self.baseline_mb = torch.cuda.memory_allocated(self.device) / MIB
        elif self.rss_reset:
            hwm = _status_kb("VmHWM")  # just reset: the resident set the peak restarts from
            self.baseline_mb = hwm / 1024.0 if hwm is not None else None

    def stop(self) -> dict[str, float | bool | None]:
        """Peak figures (MiB). ``peak_mem_mb`` is the DESIGN's figure for the training device."""
        hwm = _status_kb("VmHWM")
        out: dict[str, float | bool | None] = {
            "peak_rss_mb": hwm / 1024.0 if hwm is not None else None,
            "rss_before_mb": self.rss_before_mb,
            "peak_rss_reset": self.rss_reset,
        }
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            out["peak_mem_mb"] = torch.cuda.max_memory_allocated(self.device) / MIB
            out["peak_reserved_mb"] = torch.cuda.max_memory_reserved(self.device) / MIB
        else:
            out["peak_mem_mb"] = out["peak_rss_mb"]
            out["peak_reserved_mb"] = None
        peak, base = out["peak_mem_mb"], self.baseline_mb
        out["mem_baseline_mb"] = base
        out["peak_mem_net_mb"] = max(0.0, peak - base) if isinstance(peak, float) and base is not None else None
        return out
