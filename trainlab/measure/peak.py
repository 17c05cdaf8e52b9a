"""The device's peak FLOP/s, measured in the precision a run's FLOPs really run in, per operation kind.

MFU (model FLOPs utilisation) = achieved training FLOP/s / the peak the same work could reach. The peak must
be of the same numerics: on an H100, cuDNN runs fp32 convolutions in TF32 by default (238 TFLOP/s measured for a
3x3 256-channel convolution) while fp32 matmuls run exactly (51 TFLOP/s); dividing a ResNet's convolution FLOPs
by the fp32 matmul peak printed an MFU of 72% for a run that used about 9% of the TF32 peak.

So a run's peak is probed for each operation kind its model computes with (matmul; convolution for a CNN) in
the precision that kind runs in (fp32, tf32, bf16, fp16 — see ``trainlab.engine.precision``), and combined by
the model's own mix: the effective peak is the rate at which the run's FLOPs would complete if every kind ran at
its probed peak, ``1 / (conv_share / conv_peak + (1 - conv_share) / matmul_peak)`` FLOP/s. Probes (matmul:
square, n = 8192 CUDA, up to 2048 CPU; convolution: 3x3, 256 channels, 32x32, batch 64 (CPU: 64 channels,
batch up to 8)) are cached per machine, device, thread count, torch version, precision and kind in
``$TRAINLAB_CACHE`` (default ``~/.cache/trainlab``)/``peak_flops.json``. The datasheet's dense peak of known
GPUs is reported beside it (never used as the denominator: a measured peak is what this software stack
reaches).

Rounds, the value used and the spread. A probe is :data:`ROUNDS` rounds of at least :data:`ROUND_TIME_S`
each, :data:`ROUND_PAUSE_S` apart; a round's rate is its fastest call (CUDA: fastest group of 4 calls), and
every round's rate is kept (in the cache too). The value used is the **fastest round** (``PEAK_STAT =
"max"``), not the median: other work on the machine only ever slows a call down — nothing makes a matmul run
faster than the hardware allows — so the noise is one-sided and the fastest round is the best estimate of what
the machine reaches, while the median falls with the first busy round past half of them. On a shared 2-core
machine (other test suites running) the median of 5 rounds of a 512 matmul moved between 11 and 184 GFLOP/s
from one probe to the next, the fastest round between 170 and 187; a convolution probe read rounds of 2, 3,
147, 3 and 3 GFLOP/s (median 3). The spread, ``(max - min) / value``, says how much the rounds disagreed: a
large spread means the machine was busy during the probe, and the MFU's bounds ``mfu_low``/``mfu_high``
(``trainlab.engine.figures.utilisation``) are taken against the fastest and the slowest round.

On a CPU the problem size is the one with the highest rate in a short trial of each size, doubling from an
eighth of the largest; a size whose call would take over :data:`CPU_SLOW_CALL_S` is not tried. Short calls are what
makes the fastest call of a round a clean one on a busy machine (a 1.5 ms matmul often runs while the other
work is descheduled, a 40 ms one rarely does), and a type without fast kernels (bf16 without AVX512-BF16/AMX
runs at well under 1 GFLOP/s) must not make a probe take minutes; a rate measured on a smaller problem is still
that type's rate.
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import torch
from torch.nn import functional as F

from trainlab.measure.clock import synchronize
from trainlab.measure.hardware import cpu_model

KINDS = ("matmul", "conv")
DTYPE = {"fp32": torch.float32, "tf32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}

ROUNDS = 5  # rounds per probe
ROUND_TIME_S = 0.15  # each round calls for at least this long; its rate is its fastest call
ROUND_PAUSE_S = 0.15  # sleep between rounds, so that one burst of other work is less likely to hit every round
PEAK_STAT = "max"  # the value used: the fastest round (see the module docstring)
CUDA_CALLS_PER_SYNC = 4  # CUDA: calls timed together between synchronisations
CPU_MATMUL_N = 2048  # CPU: the largest matmul tried (n x n)
CPU_CONV_BATCH = 8  # CPU: the largest convolution batch tried
CPU_SLOW_CALL_S = 0.025  # CPU: a size whose call would take longer than this is not tried
SIZE_TRIAL_S = 0.04  # CPU: how long each candidate size is timed when the size is chosen
CONV_HW = 32  # the convolution's input height and width

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


@dataclass(frozen=True)
class Probe:
    """One kind's peak probe: every round's rate (FLOP/s), the problem size, and how long the probe took."""

    rates: tuple[float, ...]
    size: int | None = None
    seconds: float | None = None

    @property
    def value(self) -> float:
        """The value used: the :data:`PEAK_STAT` of the rounds."""
        return used_value(self.rates)

    @property
    def low(self) -> float:
        """The slowest round."""
        return min(self.rates)

    @property
    def high(self) -> float:
        """The fastest round."""
        return max(self.rates)

    @property
    def spread(self) -> float:
        """(fastest - slowest round) / the value used."""
        return spread(self.rates)

    def to_json(self) -> dict[str, object]:
        return {"rounds": list(self.rates), "size": self.size, "probe_s": self.seconds}

    @classmethod
    def from_json(cls, entry: object) -> Probe | None:
        """The cached probe, or None when ``entry`` has no rounds (the old format stored one number): such an
        entry is probed again."""
        if not isinstance(entry, dict):
            return None
        rounds = entry.get("rounds")
        if not isinstance(rounds, list) or not rounds:
            return None
        if not all(isinstance(r, int | float) and not isinstance(r, bool) and r > 0 for r in rounds):
            return None
        size, seconds = entry.get("size"), entry.get("probe_s")
        return cls(
            tuple(float(r) for r in rounds),
            int(size) if isinstance(size, int) else None,
            float(seconds) if isinstance(seconds, int | float) else None,
        )


_STATS: dict[str, Callable[[list[float]], float]] = {"max": max, "median": statistics.median}


def used_value(rates: tuple[float, ...] | list[float]) -> float:
    """The value a probe's rounds stand for: their :data:`PEAK_STAT` (the fastest round)."""
    return float(_STATS[PEAK_STAT](list(rates)))


def spread(rates: tuple[float, ...] | list[float]) -> float:
    """How much the rounds disagreed, relative to the value used: ``(max - min) / value`` (0: all equal)."""
    value = used_value(rates)
    return (max(rates) - min(rates)) / value if value > 0 else 0.0


def _round_rate(device: torch.device, call: Callable[[], object], flops: float, min_time_s: float) -> float:
    """One round: calls for at least ``min_time_s``; the FLOP/s of its fastest call (CUDA: of its fastest group
    of :data:`CUDA_CALLS_PER_SYNC` calls between synchronisations)."""
    per = CUDA_CALLS_PER_SYNC if device.type == "cuda" else 1
    best = 0.0
    synchronize(device)
    start = time.perf_counter()
    while True:
        t0 = time.perf_counter()
        for _ in range(per):
            call()
        synchronize(device)
        t1 = time.perf_counter()
        if t1 > t0:
            best = max(best, flops * per / (t1 - t0))
        if t1 - start >= min_time_s:
            return best


def _rounds(
    device: torch.device, call: Callable[[], object], flops: float, rounds: int, round_time_s: float, pause_s: float
) -> list[float]:
    call()  # warm-up: library initialisation, workspace allocation, algorithm choice
    rates = []
    for i in range(rounds):
        if i and pause_s > 0:
            time.sleep(pause_s)
        rates.append(_round_rate(device, call, flops, round_time_s))
    return rates


def measure_peak(
    device: torch.device,
    kind: str = "matmul",
    precision: str = "fp32",
    rounds: int | None = None,
    round_time_s: float | None = None,
    pause_s: float | None = None,
) -> Probe:
    """Probe ``kind`` (matmul or conv) in ``precision`` on ``device``: ``rounds`` rounds (default
    :data:`ROUNDS`) of at least ``round_time_s`` (:data:`ROUND_TIME_S`), ``pause_s`` (:data:`ROUND_PAUSE_S`)
    apart, every round's rate kept."""
    rounds = ROUNDS if rounds is None else rounds
    round_time_s = ROUND_TIME_S if round_time_s is None else round_time_s
    pause_s = ROUND_PAUSE_S if pause_s is None else pause_s
    t0 = time.perf_counter()
    dtype = DTYPE[precision]
    g = torch.Generator().manual_seed(0)
    cuda = device.type == "cuda"
    use_tf32 = precision == "tf32"
    with tf32(use_tf32, use_tf32) if cuda else contextlib.nullcontext(), torch.no_grad():
        if kind == "matmul":
            size = 8192 if cuda else _cpu_size(lambda n: _matmul(n, dtype, g, device), _matmul_flops, CPU_MATMUL_N)
            call, flops = _matmul(size, dtype, g, device)
        else:
            c = _conv_channels(cuda)
            size = 64 if cuda else _cpu_size(lambda b: _conv(b, dtype, g, device, cuda), lambda b: _conv_flops(b, c),
                                             CPU_CONV_BATCH)  # fmt: skip
            call, flops = _conv(size, dtype, g, device, cuda)
        rates = _rounds(device, call, flops, rounds, round_time_s, pause_s)
    return Probe(tuple(rates), size, time.perf_counter() - t0)


def _matmul_flops(n: int) -> float:
    return 2.0 * n**3


def _matmul(n: int, dtype: torch.dtype, g: torch.Generator, device: torch.device) -> tuple[Callable[[], object], float]:
    a = torch.randn(n, n, generator=g).to(device, dtype)
    b = torch.randn(n, n, generator=g).to(device, dtype)
    return (lambda: torch.mm(a, b)), _matmul_flops(n)


def _conv_channels(cuda: bool) -> int:
    return 256 if cuda else 64


def _conv_flops(batch: int, c: int) -> float:
    return 2.0 * batch * c * c * 9 * CONV_HW * CONV_HW  # 3x3, padding 1: hw x hw out


def _conv(
    batch: int, dtype: torch.dtype, g: torch.Generator, device: torch.device, cuda: bool
) -> tuple[Callable[[], object], float]:
    c, hw = _conv_channels(cuda), CONV_HW
    fmt = torch.channels_last if dtype != torch.float32 else torch.contiguous_format
    x = torch.randn(batch, c, hw, hw, generator=g).to(device, dtype).contiguous(memory_format=fmt)
    w = torch.randn(c, c, 3, 3, generator=g).to(device, dtype).contiguous(memory_format=fmt)
    return (lambda: F.conv2d(x, w, padding=1)), _conv_flops(batch, c)


def _cpu_size(
    make: Callable[[int], tuple[Callable[[], object], float]], flops_of: Callable[[int], float], largest: int
) -> int:
    """The CPU problem size with the highest rate in a short trial (:data:`SIZE_TRIAL_S` each), doubling from
    an eighth of ``largest`` up to ``largest``; a size whose call would take over :data:`CPU_SLOW_CALL_S` at the
    best rate seen so far is not tried (nor any larger one)."""
    cpu = torch.device("cpu")
    size = max(largest // 8, 1)
    best_size, best_rate = size, 0.0
    while size <= largest:
        call, flops = make(size)
        call()  # warm-up: primitive creation, allocation
        rate = _round_rate(cpu, call, flops, SIZE_TRIAL_S)
        if rate > best_rate:
            best_size, best_rate = size, rate
        if best_rate <= 0 or flops_of(size * 2) / best_rate > CPU_SLOW_CALL_S:
            break
        size *= 2
    return best_size


def _read_cache(path: Path) -> dict[str, object]:
    try:
        cache = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return cache if isinstance(cache, dict) else {}


def peak(device: torch.device, kind: str, precision: str, refresh: bool = False) -> tuple[Probe, str]:
    """(probe, cache key) of ``kind`` in ``precision`` on ``device``: cached, measured on first use, and measured
    again when the cached entry has no rounds (written by an older trainlab)."""
    key = _key(device, kind, precision)
    path = cache_file()
    cache = _read_cache(path)
    probe = None if refresh else Probe.from_json(cache.get(key))
    if probe is None:
        probe = measure_peak(device, kind, precision)
        cache[key] = probe.to_json()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(cache, indent=1))
            tmp.replace(path)
        except OSError:
            pass  # an unwritable cache only costs a re-measurement next time
    return probe, key


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
) -> dict[str, float | int | str | None]:
    """The run's peak figures (read back by :class:`PeakFigures`): ``peak_flops`` (effective, FLOP/s, the MFU
    denominator: the mix of each kind's value used), ``peak_flops_min``/``peak_flops_max`` (the same mix of each
    kind's slowest/fastest round), ``peak_flops_spread`` ((max - min) / peak_flops), ``peak_flops_rounds`` and
    ``peak_flops_stat`` (how the value used is taken from the rounds), the probes it is made of, the precisions
    they ran in, and the datasheet peak of the same mix where the GPU is known."""
    mm, mm_key = peak(device, "matmul", matmul_precision)
    out: dict[str, float | int | str | None] = {
        "peak_matmul_flops": mm.value,
        "peak_flops_key": mm_key,
        "peak_precision": matmul_precision if conv_share == 0 else f"matmul {matmul_precision}, conv {conv_precision}",
        "conv_share": conv_share,
    }
    conv = mm
    if conv_share > 0:
        conv, _ = peak(device, "conv", conv_precision)
        out["peak_conv_flops"] = conv.value
    value = _mix(conv_share, mm.value, conv.value)
    low, high = _mix(conv_share, mm.low, conv.low), _mix(conv_share, mm.high, conv.high)
    out["peak_flops"] = value
    out["peak_flops_min"], out["peak_flops_max"] = low, high
    out["peak_flops_spread"] = (high - low) / value
    out["peak_flops_rounds"] = min(len(mm.rates), len(conv.rates))
    out["peak_flops_stat"] = PEAK_STAT
    sheet_mm, sheet_conv = datasheet_tflops(device, matmul_precision), datasheet_tflops(device, conv_precision)
    if sheet_mm is not None and sheet_conv is not None:
        out["datasheet_peak_flops"] = _mix(conv_share, sheet_mm * 1e12, sheet_conv * 1e12)
    return out


@dataclass(frozen=True)
class PeakFigures:
    """A run's peak figures as :func:`peak_flops` writes them into its results, read back (e.g. from the store).

    Every field is None when the results lack it: a run that probed no peak, or one probed by an older trainlab
    that kept no rounds (no ``peak_flops_rounds``/``_spread``/``_min``/``_max``/``_stat``). Values are as stored
    (not checked): a reader that formats a number checks it is one. Rates in FLOP/s.
    """

    peak_flops: float | None = None  # the effective peak of the run's FLOP mix: the MFU denominator
    peak_flops_min: float | None = None  # the same mix of each kind's slowest round
    peak_flops_max: float | None = None  # ... and of its fastest round
    peak_flops_spread: float | None = None  # (max - min) / peak_flops, a fraction
    peak_flops_rounds: int | None = None  # rounds per probe (the fewer of the kinds')
    peak_flops_stat: str | None = None  # how the value used is taken from the rounds (PEAK_STAT)
    peak_flops_key: str | None = None  # the matmul probe's cache key
    peak_precision: str | None = None  # what was probed: "fp32", or "matmul bf16, conv tf32"
    peak_matmul_flops: float | None = None  # the matmul probe's value
    peak_conv_flops: float | None = None  # the convolution probe's value (models with convolutions)
    conv_share: float | None = None  # the share of the model's FLOPs in convolutions, which weights the mix
    datasheet_peak_flops: float | None = None  # the datasheet's peak of the same mix (known GPUs)

    @classmethod
    def from_results(cls, results: Mapping[str, Any] | None) -> PeakFigures:
        """The peak figures among a run's results (other keys are left out; ``None``: every field None)."""
        results = results or {}
        return cls(**{f.name: results[f.name] for f in fields(cls) if f.name in results})
