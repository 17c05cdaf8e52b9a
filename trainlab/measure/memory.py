"""Peak memory during training.

- CUDA: ``torch.cuda.max_memory_allocated`` (tensors) and ``max_memory_reserved`` (the caching allocator's
  pool), reset at the start of training.
- CPU: the run process's peak resident set size (``VmHWM`` in ``/proc/self/status``). It is reset at the start
  of training by writing 5 to ``/proc/self/clear_refs`` (Linux >= 4.0), so it covers training only; its
  value before training (``VmRSS``) is reported for reference. Each run has its own process, so imports and
  data loading of other runs never count.
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

    def start(self) -> None:
        self.rss_before_mb = current_rss_mb()
        self.rss_reset = _reset_peak_rss()
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)

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
        return out
