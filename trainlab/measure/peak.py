"""The device's peak matmul throughput (FLOP/s), measured once per machine and cached.

MFU (model FLOPs utilisation) = achieved training FLOP/s / this peak. The peak is *measured*, not read from a
spec sheet: the best rate of repeated float32 square matmuls (n = 2048 on CPU, 8192 on CUDA), which is what
this machine's BLAS or cuBLAS actually delivers at the thread count the run uses. Cached in
``$TRAINLAB_CACHE`` (default ``~/.cache/trainlab``)/``peak_flops.json`` keyed by device, CPU/GPU model,
thread count and torch version.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import torch

from trainlab.measure.clock import synchronize
from trainlab.measure.hardware import cpu_model


def cache_file() -> Path:
    root = os.environ.get("TRAINLAB_CACHE")
    return (Path(root).expanduser() if root else Path.home() / ".cache" / "trainlab") / "peak_flops.json"


def _key(device: torch.device) -> str:
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        tf32 = torch.backends.cuda.matmul.allow_tf32
        return f"cuda|{name}|tf32={tf32}|torch {torch.__version__}"
    return f"cpu|{cpu_model()}|threads={torch.get_num_threads()}|torch {torch.__version__}"


def measure_peak_flops(device: torch.device, n: int | None = None, min_time_s: float = 0.3, rounds: int = 3) -> float:
    """Best float32 matmul FLOP/s over ``rounds`` timed rounds of at least ``min_time_s`` each (2 n^3 per call)."""
    n = n or (8192 if device.type == "cuda" else 2048)
    g = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=g).to(device)
    b = torch.randn(n, n, generator=g).to(device)
    torch.mm(a, b)  # warm-up: library initialisation, workspace allocation
    best = 0.0
    for _ in range(rounds):
        synchronize(device)
        t0 = time.perf_counter()
        calls = 0
        while True:
            torch.mm(a, b)
            calls += 1
            if calls % 4 == 0 or device.type == "cpu":
                synchronize(device)
                elapsed = time.perf_counter() - t0
                if elapsed >= min_time_s:
                    break
        best = max(best, 2.0 * n**3 * calls / elapsed)
    return best


def peak_flops(device: torch.device, refresh: bool = False) -> dict[str, float | str]:
    """``{"peak_flops": FLOP/s, "peak_flops_key": ...}`` from the cache, measuring it on first use."""
    key = _key(device)
    path = cache_file()
    cache: dict[str, float] = {}
    try:
        cache = json.loads(path.read_text())
    except (OSError, ValueError):
        cache = {}
    if refresh or key not in cache:
        cache[key] = measure_peak_flops(device)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(cache, indent=1))
            tmp.replace(path)
        except OSError:
            pass  # an unwritable cache only costs a re-measurement next time
    return {"peak_flops": float(cache[key]), "peak_flops_key": key}
