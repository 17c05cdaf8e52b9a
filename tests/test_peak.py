"""The peak FLOP/s probe: rounds, the value used and the spread, the cache, the MFU's bounds and their display.

The probe's rates are monkeypatched (no test depends on this machine's speed); the one real probe runs at tiny
sizes and round times.
"""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path

import pytest
import torch
from sample_study import sample_config, write_sample_store

from trainlab.engine.figures import utilisation
from trainlab.measure import peak as peak_mod
from trainlab.measure.metrics import PEAK_SPREAD_SHOWN, PEAK_SPREAD_UNCERTAIN
from trainlab.measure.peak import PeakFigures, Probe
from trainlab.report.machine import machine_info
from trainlab.report.study import StudyView
from trainlab.report.tables import comparison_table

CPU = torch.device("cpu")
RATES = [3e9, 5e9, 4e9, 1e9, 2e9]


@pytest.fixture
def scripted(monkeypatch) -> list[float]:
    """The probe's rounds return RATES in turn; no sleeping, a fixed small size; the pauses are recorded."""
    rates = iter(RATES)
    pauses: list[float] = []
    monkeypatch.setattr(peak_mod, "_round_rate", lambda *_a: next(rates))
    monkeypatch.setattr(peak_mod, "_cpu_size", lambda *_a: 32)
    monkeypatch.setattr(peak_mod.time, "sleep", pauses.append)
    return pauses


def test_a_probe_keeps_every_round_uses_the_fastest_and_states_the_spread(scripted) -> None:
    p = peak_mod.measure_peak(CPU, "matmul", "fp32")
    assert p.rates == tuple(RATES) and len(p.rates) == peak_mod.ROUNDS == 5
    assert scripted == [peak_mod.ROUND_PAUSE_S] * 4  # a pause between rounds, none before the first
    assert peak_mod.PEAK_STAT == "max" and p.value == max(RATES) == peak_mod.used_value(RATES)
    assert (p.low, p.high) == (1e9, 5e9)
    assert p.spread == pytest.approx((5e9 - 1e9) / 5e9)
    assert p.size == 32 and p.seconds is not None and p.seconds >= 0


def test_the_value_used_follows_the_stated_statistic(monkeypatch) -> None:
    monkeypatch.setattr(peak_mod, "PEAK_STAT", "median")
    assert peak_mod.used_value(RATES) == 3e9
    assert peak_mod.spread(RATES) == pytest.approx(4e9 / 3e9)
    assert peak_mod.spread([2e9, 2e9]) == 0.0


def test_the_real_probe_returns_its_rounds_quickly_at_small_sizes(monkeypatch) -> None:
    for name, value in (("CPU_MATMUL_N", 64), ("CPU_CONV_BATCH", 2), ("ROUND_TIME_S", 0.005),
                        ("ROUND_PAUSE_S", 0.0), ("SIZE_TRIAL_S", 0.002)):  # fmt: skip
        monkeypatch.setattr(peak_mod, name, value)
    for kind in ("matmul", "conv"):
        p = peak_mod.measure_peak(CPU, kind, "fp32", rounds=3)
        assert len(p.rates) == 3 and all(r > 0 for r in p.rates), kind
        assert p.value == max(p.rates) and 0.0 <= p.spread < 1.0
        assert p.size in ((8, 16, 32, 64) if kind == "matmul" else (1, 2))


def test_the_cache_keeps_the_rounds_and_probes_an_old_entry_again(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("TRAINLAB_CACHE", str(tmp_path))
    probed: list[str] = []

    def fake(device, kind, precision, *_a, **_k) -> Probe:
        probed.append(kind)
        return Probe((9e9, 1e10, 8e9), 512, 1.2)

    monkeypatch.setattr(peak_mod, "measure_peak", fake)
    first, key = peak_mod.peak(CPU, "matmul", "fp32")
    again, _ = peak_mod.peak(CPU, "matmul", "fp32")
    assert probed == ["matmul"] and again == first == Probe((9e9, 1e10, 8e9), 512, 1.2)
    stored = json.loads((tmp_path / "peak_flops.json").read_text())
    assert stored[key] == {"rounds": [9e9, 1e10, 8e9], "size": 512, "probe_s": 1.2}

    for old in (1.5e11, {"value": 1.5e11}, {"rounds": []}, {"rounds": ["fast"]}):  # no usable rounds
        stored[key] = old
        (tmp_path / "peak_flops.json").write_text(json.dumps(stored))
        probe, _ = peak_mod.peak(CPU, "matmul", "fp32")
        assert probe.rates == (9e9, 1e10, 8e9), old
    assert probed == ["matmul"] * 5
    assert json.loads((tmp_path / "peak_flops.json").read_text())[key]["rounds"] == [9e9, 1e10, 8e9]
    peak_mod.peak(CPU, "matmul", "fp32", refresh=True)
    assert len(probed) == 6


def test_the_run_peak_states_its_spread_rounds_and_bounds(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("TRAINLAB_CACHE", str(tmp_path))
    key = peak_mod._key
    cache = {key(CPU, "matmul", "fp32"): {"rounds": [1e11, 8e10, 9e10, 1e11, 9.5e10]},
             key(CPU, "conv", "fp32"): {"rounds": [4e10, 2e10, 3e10, 4e10, 3e10]}}  # fmt: skip
    (tmp_path / "peak_flops.json").write_text(json.dumps(cache))
    p = peak_mod.peak_flops(CPU, "fp32", "fp32", conv_share=0.5)
    mix = peak_mod._mix
    assert p["peak_matmul_flops"] == 1e11 and p["peak_conv_flops"] == 4e10
    assert p["peak_flops"] == pytest.approx(mix(0.5, 1e11, 4e10))
    assert p["peak_flops_min"] == pytest.approx(mix(0.5, 8e10, 2e10))
    assert p["peak_flops_max"] == pytest.approx(p["peak_flops"])  # the fastest rounds are the values used
    assert p["peak_flops_spread"] == pytest.approx((p["peak_flops_max"] - p["peak_flops_min"]) / p["peak_flops"])
    assert p["peak_flops_rounds"] == 5 and p["peak_flops_stat"] == "max"
    mm_only = peak_mod.peak_flops(CPU, "fp32", "fp32")
    assert mm_only["peak_flops_spread"] == pytest.approx(0.2) and "peak_conv_flops" not in mm_only


def test_the_run_peak_reads_back_typed_with_a_field_for_every_figure(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("TRAINLAB_CACHE", str(tmp_path))
    key = peak_mod._key
    cache = {key(CPU, "matmul", "fp32"): {"rounds": [1e11, 9e10]}, key(CPU, "conv", "fp32"): {"rounds": [4e10, 3e10]}}
    (tmp_path / "peak_flops.json").write_text(json.dumps(cache))
    p = peak_mod.peak_flops(CPU, "fp32", "fp32", conv_share=0.5)
    assert set(p) <= {f.name for f in fields(PeakFigures)}  # no figure the report could not read
    typed = PeakFigures.from_results({**p, "test_acc": 0.9})  # a run's other results are left out
    assert typed.peak_flops == p["peak_flops"] and typed.peak_conv_flops == 4e10 and typed.peak_flops_rounds == 2
    old = PeakFigures.from_results({"peak_flops": 2e11})  # probed by a trainlab that kept no rounds
    assert old.peak_flops == 2e11 and old.peak_flops_rounds is None and PeakFigures.from_results(None) == PeakFigures()


def test_utilisation_bounds_the_mfu_by_the_probes_spread() -> None:
    narrow = utilisation(1e10, 1e11, 9.5e10, 1e11)
    assert narrow["mfu_low"] <= narrow["mfu"] <= narrow["mfu_high"]
    assert narrow["mfu"] == pytest.approx(0.1) and narrow["mfu_high"] == pytest.approx(1e10 / 9.5e10)
    assert narrow["mfu_uncertain"] is False and "mfu_uncertain_note" not in narrow and "mfu_note" not in narrow
    # a median-like peak inside the rounds' range: the bounds sit on both sides
    mid = utilisation(1e10, 1e11, 9e10, 1.1e11)
    assert mid["mfu_low"] < mid["mfu"] < mid["mfu_high"]
    assert utilisation(5e9, 1e10) == {"mfu": 0.5}  # no rounds known (an old probe): no bounds


def test_a_large_spread_marks_the_mfu_uncertain_without_dropping_it() -> None:
    busy = utilisation(1e10, 1e11, 5e10, 1e11)  # the slowest round at half the fastest: spread 50%
    assert busy["mfu"] == pytest.approx(0.1) and busy["mfu_low"] == pytest.approx(0.1)
    assert busy["mfu_high"] == pytest.approx(0.2)
    assert busy["mfu_uncertain"] is True and "mfu_note" not in busy  # mfu_note means "no MFU stated"
    note = busy["mfu_uncertain_note"]
    assert "varied by 50%" in note and "between 10% and 20%" in note
    edge = utilisation(1e10, 1e11, 1e11 * (1 - PEAK_SPREAD_UNCERTAIN), 1e11)  # at the threshold: not above it
    assert edge["mfu_uncertain"] is False
    over = utilisation(2e11, 1e11, 5e10, 1e11)  # above the fastest round: still not stated
    assert "mfu" not in over and "mfu_low" not in over and over["mfu_unchecked"] == 2.0


def _study(tmp_path: Path, low_high: dict[str, tuple[float, float]], spread: float) -> StudyView:
    variants = [{"name": "small", "model.name": "mlp", "model.hidden": [16]},
                {"name": "large", "model.name": "mlp", "model.hidden": [64]}]  # fmt: skip
    write_sample_store(tmp_path, sample_config(variants=variants))
    study = StudyView.load(tmp_path)
    for r in study.runs:
        res = r.record.results
        low, high = low_high[r.variant]
        res.update(mfu=low, mfu_low=low, mfu_high=high, peak_flops=2e11, peak_flops_max=2e11,
                   peak_flops_min=2e11 * (1 - spread), peak_flops_spread=spread, peak_flops_rounds=5,
                   peak_flops_stat="max", peak_precision="fp32 matmul")  # fmt: skip
    return study


def test_the_report_shows_the_peaks_rounds_spread_and_the_mfu_range(tmp_path: Path) -> None:
    study = _study(tmp_path, {"small": (0.10, 0.25), "large": (0.30, 0.31)}, spread=0.6)
    peak = dict(machine_info(study))["Measured peak"]
    assert peak.startswith("200 GFLOP/s (fastest of 5 rounds, spread 60%: 80–200 GFLOP/s")
    assert "busy" in peak and "probed: fp32 matmul" in peak
    table = comparison_table(study)
    col = [m.key for m in table.metrics].index("mfu")
    cells = {r.name: r.cells[col] for r in table.rows}
    assert cells["small"].text == "10.0 (10.0–25.0)"  # wider than PEAK_SPREAD_SHOWN of the MFU: the range shown
    assert PEAK_SPREAD_SHOWN > (0.31 - 0.30) / 0.30
    assert cells["large"].text == "30.0"  # a narrow range: the value only
    assert cells["large"].rank == "best" and cells["small"].rank == "worst"


def test_a_peak_probed_without_rounds_is_shown_as_before(tmp_path: Path) -> None:
    study = _study(tmp_path, {"small": (0.1, 0.1), "large": (0.1, 0.1)}, spread=0.0)
    for r in study.runs:
        for k in ("peak_flops_spread", "peak_flops_rounds", "peak_flops_min", "peak_flops_max", "mfu_low", "mfu_high"):
            del r.record.results[k]
    assert dict(machine_info(study))["Measured peak"] == "200 GFLOP/s (probed: fp32 matmul; per machine)"
    table = comparison_table(study)
    assert table.rows[0].cells[[m.key for m in table.metrics].index("mfu")].text == "10.0"
