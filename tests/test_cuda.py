"""CUDA paths: event timing, synchronisation, peak memory, a whole run on the GPU. Skipped without CUDA."""

from __future__ import annotations

import time

import pytest
import torch
from helpers import tiny_study

from trainlab.engine.loop import execute_run
from trainlab.measure.clock import EpochClock
from trainlab.measure.memory import MemoryMeter
from trainlab.study import load_study

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (none on this machine)"),
]


def test_compute_time_uses_events_for_asynchronous_kernels():
    dev = torch.device("cuda")
    torch.cuda.synchronize()
    # Calibrate torch.cuda._sleep (a spin kernel): cycles per millisecond on this GPU.
    t0 = time.perf_counter()
    torch.cuda._sleep(10_000_000)
    torch.cuda.synchronize()
    cycles_per_ms = 10_000_000 / ((time.perf_counter() - t0) * 1000)

    clock = EpochClock(dev)
    clock.start()
    for _ in clock.batches(range(5)):
        clock.compute_start()
        torch.cuda._sleep(int(20 * cycles_per_ms))  # ~20 ms of GPU work, returns at once on the host
        clock.compute_end()
    t = clock.stop()
    # Host-side the steps took microseconds; the events see the GPU's ~100 ms.
    assert t.compute_time_s == pytest.approx(0.100, rel=0.10)
    assert t.epoch_time_s >= t.compute_time_s  # stop() synchronised before reading the wall clock


def test_peak_memory_is_the_allocator_peak_during_the_interval():
    dev = torch.device("cuda")
    meter = MemoryMeter(dev)
    meter.start()
    x = torch.empty(64 * 2**20, dtype=torch.uint8, device=dev)  # 64 MiB
    del x
    mem = meter.stop()
    assert mem["peak_mem_mb"] >= 64
    assert mem["peak_reserved_mb"] >= mem["peak_mem_mb"]


def test_a_run_on_cuda(tmp_path):
    spec = load_study(tiny_study(train={"device": "cuda", "epochs": 2})).runs[0]
    out = execute_run(spec)
    assert out.status == "done", out.error
    r = out.results
    assert r["device"].startswith("cuda")
    assert r["peak_mem_mb"] > 0 and r["peak_reserved_mb"] >= r["peak_mem_mb"]
    assert r["compute_time_s"] > 0 and r["latency_p50_ms"] > 0
    assert 0 < r["mfu"] < 1
