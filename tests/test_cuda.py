"""CUDA paths: event timing, synchronisation, peak memory, a whole run on the GPU. Skipped without CUDA."""

from __future__ import annotations

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
    # Calibrate torch.cuda._sleep (a spin kernel): cycles per millisecond on this GPU, measured with CUDA events
    # after a warm-up. A cold GPU (clocks ramping, first-launch costs) read by a host clock gave a wrong rate:
    # 0.037 s measured for an expected 0.100 s on an H100, with the clock itself right.
    for _ in range(3):
        torch.cuda._sleep(10_000_000)
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    torch.cuda._sleep(50_000_000)
    end.record()
    torch.cuda.synchronize()
    cycles_per_ms = 50_000_000 / start.elapsed_time(end)

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


def _cnn_study(**train):
    return tiny_study(
        model={"name": "simple_cnn", "channels": [8, 16], "batch_norm": True},
        train={"device": "cuda", "epochs": 2, "deterministic": True, **train},
    )


def test_data_time_is_also_measured_on_the_gpu_timeline():
    out = execute_run(load_study(_cnn_study()).runs[0])
    assert out.status == "done", out.error
    assert out.results["data_gpu_time_s"] is not None and out.results["data_gpu_time_s"] >= 0
    assert 0 < out.results["gpu_busy_share"] <= 1 and out.results["step_wall_ms"] > 0


def test_default_precision_is_recorded_as_torch_runs_it_and_mfu_uses_that_peak():
    r = execute_run(load_study(_cnn_study()).runs[0]).results
    mm_tf32, conv_tf32 = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    assert r["matmul_precision"] == ("tf32" if mm_tf32 else "fp32")
    assert r["conv_precision"] == ("tf32" if conv_tf32 else "fp32")
    assert "mfu" not in r or 0 < r["mfu"] <= 1


@pytest.mark.parametrize("precision", ["fp32", "tf32", "bf16", "fp16"])
def test_each_precision_trains_on_cuda(precision):
    out = execute_run(load_study(_cnn_study(precision=precision)).runs[0])
    assert out.status == "done", out.error
    assert out.results["precision"] == precision and out.results["train_loss"] < 2.0


def test_cuda_graph_step_matches_eager_with_batchnorm_and_momentum():
    # No dropout: the graph and eager runs then see the same numbers (batch norm statistics and momentum
    # buffers updated inside the graph), up to kernel nondeterminism.
    eager = execute_run(load_study(_cnn_study(momentum=0.9)).runs[0])
    graph = execute_run(load_study(_cnn_study(momentum=0.9, compile="cuda-graph")).runs[0])
    assert graph.status == "done", graph.error
    assert graph.results["compile"] == "cuda-graph" and graph.results["compile_time_s"] > 0
    assert graph.results["train_loss"] == pytest.approx(eager.results["train_loss"], rel=1e-3)
    assert graph.results["test_acc"] == pytest.approx(eager.results["test_acc"], abs=0.05)


def test_cuda_graph_step_follows_a_per_batch_schedule():
    train = {"optimizer": "adamw", "lr": 0.01, "scheduler": "onecycle"}
    eager = execute_run(load_study(_cnn_study(**train)).runs[0])
    graph = execute_run(load_study(_cnn_study(**train, compile="cuda-graph")).runs[0])
    assert graph.status == "done", graph.error
    assert graph.results["train_loss"] == pytest.approx(eager.results["train_loss"], rel=1e-3)


def test_cuda_graph_recaptures_when_an_epoch_schedule_changes_the_rate(tmp_path):
    from trainlab.api import run
    from trainlab.store import Store

    train = {"epochs": 3, "lr": 0.05, "scheduler": "step", "step_size": 1, "gamma": 0.5}
    got = {}
    for mode in ("none", "cuda-graph"):
        rec = run(_cnn_study(**train, compile=mode), out=tmp_path / mode, executor="inline", write_report=False)
        r = rec.records[0]
        assert r.status == "done", r.error
        got[mode] = Store(tmp_path / mode / "trainlab.db").epochs(r.run_id)
    assert [e["lr"] for e in got["cuda-graph"]] == [e["lr"] for e in got["none"]]
    for g, e in zip(got["cuda-graph"], got["none"]):
        assert g["train_loss"] == pytest.approx(e["train_loss"], rel=1e-3)
