"""The device's peak FLOP/s, measured in the precision a run's FLOPs really run in, per operation kind.

MFU (model FLOPs utilisation) = achieved training FLOP/s / the peak the same work could reach. The peak must
be of the same numerics: on an H100, cuDNN runs fp32 convolutions in TF32 by default (238 TFLOP/s measured for a
3x3 256-channel convolution) while fp32 matmuls run exactly (51 TFLOP/s); dividing a ResNet's convolution FLOPs
by the fp32 matmul peak printed an MFU of 72% for a run that used about 9% of the TF32 peak.

So a run's peak is probed for each operation kind its model computes with (matmul; convolution for a CNN) in
the precision that kind runs in (fp32, tf32, bf16, fp16 — see ``trainlab.engine.precision``), and combined by
the model's own mix: the effective peak is the rate at which the run's FLOPs would complete if every kind ran at
its probed peak, ``1 / (conv_share / conv_peak + (1 - conv_share) / matmul_peak)`` FLOP/s. Probes are the best
rate of repeated calls (matmul: square, n = 2048 CPU / 8192 CUDA; convolution: 3x3, 256 channels, 32x32 (CPU:
64 channels)), cached per machine, device, thread count, torch version, precision and kind in
``$TRAINLAB_CACHE`` (default ``~/.cache/trainlab``)/``peak_flops.json``. The datasheet's dense peak of known
GPUs is reported beside it (never used as the denominator: a measured peak is what this software stack
reaches).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
from torch.nn import functional as F

from trainlab.measure.clock import synchronize
from trainlab.measure.hardware import cpu_model

KINDS = ("matmul", "conv")
DTYPE = {"fp32": torch.float32, "tf32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}

# Dense (no sparsity) peak TFLOP/s from NVIDIA's datasheets, by the name torch reports; the longest matching
# key wins ("A100" before "A10"). fp32 here is the CUDA-core rate; tf32/bf16/fp16 the tensor-core rates.
DATASHEET_TFLOPS: dict[str, dict[str, float]] = {
    "H100 PCIe": {"fp32": 51.2, "tf32": 378.0, "bf16": 756.0, "fp16": 756.0},
    "H100": {"fp32": 67.0, "tf32": 494.5, "bf16": 989.5, "fp16": 989.5},  # SXM5 / HBM3
    "H200": {"fp32": 67.0, "tf32": 494.5, "bf16": 989.5, "fp16": 989.5},
    "A100": {"fp32": 19.5, "tf32": 156.0, "bf16": 312.0, "fp16": 312.0},
    "A10": {"fp32": 31.2, "tf32": 62.5, "bf16": 125.0, "fp16": 125.0},
    "L4": {"fp32": 30.3, "tf32": 60.0, "bf16": 121.0, "fp16": 121.0},
}


def cache_file() -> Path:
    """Where measured peaks are cached."""
    root = os.environ.get("TRAINLAB_CACHE")
    return (Path(root).expanduser() if root else Path.home() / ".cache" / "trainlab") / "peak_flops.json"


def tf32_state() -> tuple[bool, bool]:
    """(matmul TF32 on, convolution TF32 on) as torch's CUDA backends are set now."""
    return bool(torch.backends.cuda.matmul.allow_tf32), bool(torch.backends.cudnn.allow_tf32)


def set_tf32(matmul: bool, conv: bool) -> None:
    """Switch TF32 for CUDA matmuls and cuDNN convolutions (torch >= 2.9: the fp32_precision settings)."""
    mm = getattr(torch.backends.cuda.matmul, "fp32_precision", None)
    conv_backend = getattr(torch.backends.cudnn, "conv", None)
    if mm is not None and conv_backend is not None and hasattr(conv_backend, "fp32_precision"):
        torch.backends.cuda.matmul.fp32_precision = "tf32" if matmul else "ieee"
        conv_backend.fp32_precision = "tf32" if conv else "ieee"
    else:  # older torch: the legacy flags
        torch.backends.cuda.matmul.allow_tf32 = matmul
        torch.backends.cudnn.allow_tf32 = conv


@contextlib.contextmanager
def tf32(matmul: bool, conv: bool) -> Iterator[None]:
    """TF32 set as given inside the block, restored after it."""
    saved = tf32_state()
    set_tf32(matmul, conv)
    try:
        yield
    finally:
        set_tf32(*saved)


def _device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_model()


def _key(device: torch.device, kind: str, precision: str) -> str:
    threads = "" if device.type == "cuda" else f"|threads={torch.get_num_threads()}"
    return f"{device.type}|{_device_name(device)}|{kind}|{precision}{threads}|torch {torch.__version__}"


def _best_rate(device: torch.device, call: Callable[[], object], flops: float, min_time_s: float, rounds: int) -> float:
    call()  # warm-up: library initialisation, workspace allocation, algorithm choice
    best = 0.0
    for _ in range(rounds):
        synchronize(device)
        t0 = time.perf_counter()
        calls = 0
        while True:
            call()
            calls += 1
            if calls % 4 == 0 or device.type == "cpu":
                synchronize(device)
                elapsed = time.perf_counter() - t0
                if elapsed >= min_time_s:
                    break
        best = max(best, flops * calls / elapsed)
    return best


def measure_peak(
    device: torch.device, kind: str = "matmul", precision: str = "fp32", min_time_s: float = 0.3, rounds: int = 3
) -> float:
    """Best FLOP/s of ``kind`` (matmul or conv) in ``precision`` on ``device`` over ``rounds`` timed rounds."""
    dtype = DTYPE[precision]
    g = torch.Generator().manual_seed(0)
    cuda = device.type == "cuda"
    use_tf32 = precision == "tf32"
    with tf32(use_tf32, use_tf32) if cuda else contextlib.nullcontext(), torch.no_grad():
        if kind == "matmul":
            n = 8192 if cuda else _cpu_size(lambda n: _matmul(n, dtype, g, device), 2048)
            call, flops = _matmul(n, dtype, g, device)
        else:
            batch = 64 if cuda else _cpu_size(lambda b: _conv(b, dtype, g, device, cuda), 8)
            call, flops = _conv(batch, dtype, g, device, cuda)
        return _best_rate(device, call, flops, min_time_s, rounds)


def _matmul(n: int, dtype: torch.dtype, g: torch.Generator, device: torch.device) -> tuple[Callable[[], object], float]:
    a = torch.randn(n, n, generator=g).to(device, dtype)
    b = torch.randn(n, n, generator=g).to(device, dtype)
    return (lambda: torch.mm(a, b)), 2.0 * n**3


def _conv(
    batch: int, dtype: torch.dtype, g: torch.Generator, device: torch.device, cuda: bool
) -> tuple[Callable[[], object], float]:
    c, hw = (256, 32) if cuda else (64, 32)
    fmt = torch.channels_last if dtype != torch.float32 else torch.contiguous_format
    x = torch.randn(batch, c, hw, hw, generator=g).to(device, dtype).contiguous(memory_format=fmt)
    w = torch.randn(c, c, 3, 3, generator=g).to(device, dtype).contiguous(memory_format=fmt)
    return (lambda: F.conv2d(x, w, padding=1)), 2.0 * batch * c * c * 9 * hw * hw  # padding 1: hw x hw out


def _cpu_size(make: Callable[[int], tuple[Callable[[], object], float]], largest: int) -> int:
    """The largest size (halving from ``largest``) whose one call takes at most ~50 ms on this CPU: a type the
    CPU has no fast kernels for (bf16 without AVX512-BF16/AMX runs at well under 1 GFLOP/s) must not make a
    probe take minutes, and a rate measured on a smaller problem is still that type's rate."""
    size = max(largest // 8, 1)
    while size < largest:
        call, _ = make(size * 2)
        t0 = time.perf_counter()
        call()
        if time.perf_counter() - t0 > 0.025:
            break
        size *= 2
    return size


def peak(device: torch.device, kind: str, precision: str, refresh: bool = False) -> tuple[float, str]:
    """(FLOP/s, cache key) of ``kind`` in ``precision`` on ``device``: cached, measured on first use."""
    key = _key(device, kind, precision)
    path = cache_file()
    try:
        cache: dict[str, float] = json.loads(path.read_text())
    except (OSError, ValueError):
        cache = {}
    if refresh or key not in cache:
        cache[key] = measure_peak(device, kind, precision)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(cache, indent=1))
            tmp.replace(path)
        except OSError:
            pass  # an unwritable cache only costs a re-measurement next time
    return float(cache[key]), key


def datasheet_tflops(device: torch.device, precision: str) -> float | None:
    """The datasheet's dense peak (TFLOP/s) of a known GPU in ``precision``, else None."""
    if device.type != "cuda":
        return None
    name = _device_name(device)
    for model in sorted(DATASHEET_TFLOPS, key=len, reverse=True):
        if model in name:
            return DATASHEET_TFLOPS[model].get(precision)
    return None


def _mix(conv_share: float, matmul: float, conv: float) -> float:
    """Effective peak of a FLOP mix: every kind at its own peak."""
    return 1.0 / (conv_share / conv + (1.0 - conv_share) / matmul) if conv_share > 0 else matmul


def peak_flops(
    device: torch.device, matmul_precision: str = "fp32", conv_precision: str = "fp32", conv_share: float = 0.0
) -> dict[str, float | str | None]:
    """The run's peak figures: ``peak_flops`` (effective, FLOP/s, the MFU denominator), the probes it is made
    of, the precisions they ran in, and the datasheet peak of the same mix where the GPU is known."""
    mm, mm_key = peak(device, "matmul", matmul_precision)
    out: dict[str, float | str | None] = {
        "peak_matmul_flops": mm,
        "peak_flops_key": mm_key,
        "peak_precision": matmul_precision if conv_share == 0 else f"matmul {matmul_precision}, conv {conv_precision}",
        "conv_share": conv_share,
    }
    conv = None
    if conv_share > 0:
        conv, _ = peak(device, "conv", conv_precision)
        out["peak_conv_flops"] = conv
    out["peak_flops"] = _mix(conv_share, mm, conv or mm)
    sheet_mm, sheet_conv = datasheet_tflops(device, matmul_precision), datasheet_tflops(device, conv_precision)
    if sheet_mm is not None and sheet_conv is not None:
        out["datasheet_peak_flops"] = _mix(conv_share, sheet_mm * 1e12, sheet_conv * 1e12)
    return out
