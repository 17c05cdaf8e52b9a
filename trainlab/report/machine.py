"""Where and when a study ran, as the report's header states it: the machine, the measured peak, the dates."""

from __future__ import annotations

from typing import Any

from trainlab.measure.metrics import PEAK_SPREAD_UNCERTAIN
from trainlab.measure.peak import PeakFigures
from trainlab.report.study import StudyView, is_number


def _flops_text(v: Any) -> str | None:
    if not is_number(v):
        return None
    return f"{v / 1e12:.3g} TFLOP/s" if v >= 1e12 else f"{v / 1e9:.3g} GFLOP/s"


_PEAK_STAT_WORDS = {"max": "fastest", "median": "median"}


def peak_text(study: StudyView) -> str:
    """The measured peak FLOP/s as the machine info states it, from the first run that probed it: the value used,
    how it was taken from the probe's rounds and their spread (with the rounds' range), and what was probed:
    ``182 GFLOP/s (fastest of 5 rounds, spread 19%: 148-182 GFLOP/s; probed: fp32 matmul; per machine)``."""
    peak = next((p for r in study.runs if is_number((p := PeakFigures.from_results(r.results)).peak_flops)), None)
    if peak is None:
        return "not measured"
    parts = []
    rounds, spread, low, high = peak.peak_flops_rounds, peak.peak_flops_spread, peak.peak_flops_min, peak.peak_flops_max
    if is_number(rounds) and is_number(spread):  # probed by a trainlab that keeps the rounds
        stat = peak.peak_flops_stat
        how = f"{_PEAK_STAT_WORDS.get(stat, stat or 'best')} of {rounds:.0f} rounds, spread {spread:.0%}"
        if is_number(low) and is_number(high) and high > low:
            scale, unit = (1e12, "TFLOP/s") if high >= 1e12 else (1e9, "GFLOP/s")
            how += f": {low / scale:.3g}–{high / scale:.3g} {unit}"
        if spread > PEAK_SPREAD_UNCERTAIN:
            how += " — the machine was busy while it was probed, so MFU is uncertain"
        parts.append(how)
    parts += [f"probed: {peak.peak_precision or 'fp32 matmul'}", "per machine"]
    sheet = _flops_text(peak.datasheet_peak_flops)
    if sheet:
        parts.append(f"datasheet {sheet}")
    return f"{_flops_text(peak.peak_flops)} ({'; '.join(parts)})"


def machine_info(study: StudyView) -> list[tuple[str, str]]:
    """(label, text) pairs describing where the study ran, from the runs' environments and figures."""
    env = study.environment
    if env is None:
        return [("Machine", "not recorded yet (no run has started)")]
    rows: list[tuple[str, str]] = []
    cores, usable = env.cpu_count, env.cpu_affinity
    core_text = f"{cores} cores" if cores else "cores unknown"
    if usable and usable != cores:
        core_text += f" ({usable} usable by this process)"
    if env.torch_threads:
        core_text += f", {env.torch_threads} torch threads"
    rows.append(("CPU", f"{env.cpu or 'unknown'}, {core_text}"))
    if env.gpu:
        gpu = str(env.gpu)
        if is_number(env.gpu_memory_mb):
            gpu += f", {env.gpu_memory_mb / 1024:.0f} GiB"  # MiB -> GiB
        extra = [f"driver {env.gpu_driver}" if env.gpu_driver else None,
                 f"CUDA {env.cuda}" if env.cuda else None,
                 f"cuDNN {env.cudnn}" if env.cudnn else None]  # fmt: skip
        rows.append(("GPU", gpu + "".join(f", {e}" for e in extra if e)))
    else:
        rows.append(("GPU", "none used" if not env.cuda_available else "available, not used by this run"))
    rows.append(("Device", str(env.device or "unknown")))
    rows.append(("Measured peak", peak_text(study)))
    precision = study.first_value("precision_effective")
    if precision:
        rows.append(("Numerics", str(precision)))
    versions = ", ".join(
        f"{name} {version}"
        for name, version in (("Python", env.python), ("torch", env.torch), ("numpy", env.numpy),
                              ("trainlab", env.trainlab)) if version
    )  # fmt: skip
    rows.append(("Versions", versions or "unknown"))
    if env.git_commit:
        rows.append(("Code", f"git {env.git_commit}"))
    if env.platform:
        rows.append(("Platform", str(env.platform)))
    hosts = study.hosts
    if len(hosts) > 1:
        rows.append(
            ("Hosts", f"runs executed on {len(hosts)} machines: {', '.join(hosts)} — compare timings with care")
        )
    elif hosts:
        rows.append(("Host", hosts[0]))
    return rows


def run_dates(study: StudyView) -> str:
    """'2025-01-02 10:00 → 10:05 UTC' from the first start to the last finish (or 'not started')."""
    starts = sorted(r.record.started_at for r in study.runs if r.record.started_at)
    ends = sorted(r.record.finished_at for r in study.runs if r.record.finished_at)
    if not starts:
        return "not started"
    first = starts[0].replace("T", " ")[:16]
    if not ends or not study.finished:
        return f"started {first} UTC, still running"
    last = ends[-1].replace("T", " ")[:16]
    last = last[11:] if last[:10] == first[:10] else last
    return f"{first} → {last} UTC"


__all__ = ["machine_info", "peak_text", "run_dates"]
