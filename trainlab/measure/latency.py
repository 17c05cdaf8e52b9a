"""Inference timing: the batch-1 pass over the test set, latency percentiles and throughput.

Only the forward call is timed; the model is in ``eval()`` under ``torch.inference_mode``; on CUDA the device
is synchronised before a clock is read. Warm-up calls are excluded and their count is reported.
"""

from __future__ import annotations

import statistics
import time

import torch
from torch import nn

from trainlab.measure.clock import synchronize


def _percentile(sorted_values: list[float], q: float) -> float:
    """Linear-interpolated percentile ``q`` in [0, 100] of already sorted values."""
    if len(sorted_values) == 1:
        return sorted_values[0]
    pos = (len(sorted_values) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


@torch.inference_mode()
def batch1_pass(model: nn.Module, images: torch.Tensor, device: torch.device) -> dict[str, float]:
    """Forward every image of ``images`` (N, ...) one at a time; sum the forward times.

    Returns ``infer_total_s`` (s) and ``infer_ms_per_image`` (ms) = total / N, and ``infer_images``.
    """
    was_training = model.training
    model.eval()
    total = 0.0
    n = len(images)
    try:
        for i in range(n):
            x = images[i : i + 1]
            synchronize(device)
            t0 = time.perf_counter()
            model(x)
            synchronize(device)
            total += time.perf_counter() - t0
    finally:
        model.train(was_training)
    return {"infer_total_s": total, "infer_ms_per_image": 1000.0 * total / max(n, 1), "infer_images": n}


@torch.inference_mode()
def latency_percentiles(
    model: nn.Module, sample: torch.Tensor, device: torch.device, warmup: int = 10, repeats: int = 100
) -> dict[str, float]:
    """Batch-1 forward latency (ms) after ``warmup`` calls: p50, p90, p99, mean and std over ``repeats`` calls."""
    was_training = model.training
    model.eval()
    x = sample[:1]
    times: list[float] = []
    try:
        for _ in range(warmup):
            model(x)
        for _ in range(repeats):
            synchronize(device)
            t0 = time.perf_counter()
            model(x)
            synchronize(device)
            times.append((time.perf_counter() - t0) * 1000.0)
    finally:
        model.train(was_training)
    s = sorted(times)
    return {
        "latency_p50_ms": _percentile(s, 50),
        "latency_p90_ms": _percentile(s, 90),
        "latency_p99_ms": _percentile(s, 99),
        "latency_mean_ms": statistics.fmean(s),
        "latency_std_ms": statistics.pstdev(s) if len(s) > 1 else 0.0,
        "latency_warmup": warmup,
        "latency_repeats": repeats,
    }


@torch.inference_mode()
def throughput(
    model: nn.Module, images: torch.Tensor, device: torch.device, batch: int = 256, min_time_s: float = 0.5
) -> dict[str, float]:
    """Images per second at batch size ``batch``: repeated forwards for at least ``min_time_s`` after warm-up.

    ``images`` is tiled up to ``batch`` samples when the test set is smaller.
    """
    was_training = model.training
    model.eval()
    reps = (batch + len(images) - 1) // len(images)
    x = images.repeat((reps,) + (1,) * (images.dim() - 1))[:batch]
    try:
        model(x)  # warm-up (allocations, lazy init)
        synchronize(device)
        calls = 0
        t0 = time.perf_counter()
        while True:
            model(x)
            calls += 1
            synchronize(device)
            elapsed = time.perf_counter() - t0
            if elapsed >= min_time_s and calls >= 3:
                break
    finally:
        model.train(was_training)
    return {"throughput_ips": calls * batch / elapsed, "throughput_batch": batch}
