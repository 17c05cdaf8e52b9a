"""Peak memory net of the process's baseline: ``peak_mem_net_mb`` = ``peak_mem_mb`` - ``mem_baseline_mb``.

On a CPU the gross peak is mostly the process itself (the interpreter, torch, the data and the model); the net
figure is what training added. See trainlab.measure.memory and docs/measurements.md.
"""

from __future__ import annotations

import csv

from helpers import tiny_study

from trainlab.api import run
from trainlab.models import ModelConfig, build_model


def _results(tmp_path, hidden: list[int], **kwargs) -> dict:
    # No profile: its one counted training step on a copy of the model frees gradient-sized memory just before the
    # meter starts, which training then reuses without growing the resident set (the net figure would read low).
    study = tiny_study(model={"name": "mlp", "hidden": hidden}, measure={"profile": False})
    # Each run in its own fresh process (the default executor): inside a test process that earlier tests grew to
    # gigabytes, training reuses freed pages and the resident set does not grow (the net figure would read 0).
    result = run(study, out=tmp_path, **kwargs)
    record = result.records[0]
    assert record.status == "done", record.error
    return record.results


def test_net_peak_is_the_gross_peak_less_the_baseline(tmp_path) -> None:
    res = _results(tmp_path, [16], write_report=False)
    if not res["peak_rss_reset"]:  # pragma: no cover - a kernel without /proc/self/clear_refs
        assert res["peak_mem_net_mb"] is None and res["mem_baseline_mb"] is None
        return
    gross, base, net = res["peak_mem_mb"], res["mem_baseline_mb"], res["peak_mem_net_mb"]
    assert 0 <= net <= gross
    assert base > 0 and abs(base + net - gross) < 1e-6
    assert net < base  # a tiny model's training adds little to the process (interpreter, torch, data, model)


def test_a_larger_model_adds_more_memory_in_training(tmp_path) -> None:
    tiny = _results(tmp_path / "tiny", [16], write_report=False)
    big = _results(tmp_path / "big", [2048, 2048], write_report=False)
    if not big["peak_rss_reset"]:  # pragma: no cover
        return
    # Training the big MLP adds its gradients and SGD momentum buffers (2 x size_mb, ~33 MiB; measured 32 MiB
    # against under 1 MiB for the tiny one). The resident set can understate it: the allocator may hand training
    # pages it already holds (freed earlier in the process), so only half a model's size is required.
    model = build_model(ModelConfig(name="mlp", hidden=[2048, 2048]), (1, 8, 8), 3)  # tiny_study's data
    size_mb = sum(p.numel() * p.element_size() for p in model.parameters()) / 2**20
    figures = {k: (tiny[k], big[k]) for k in ("peak_mem_mb", "mem_baseline_mb", "peak_mem_net_mb")}
    assert big["peak_mem_net_mb"] > tiny["peak_mem_net_mb"] + 0.5 * size_mb, (figures, size_mb)


def test_net_peak_is_in_results_csv_and_the_comparison_table(tmp_path) -> None:
    res = _results(tmp_path, [16])
    rows = list(csv.DictReader((tmp_path / "results.csv").open()))
    assert {"peak_mem_mb", "peak_mem_net_mb", "mem_baseline_mb"} <= set(rows[0])
    if res["peak_mem_net_mb"] is not None:
        assert abs(float(rows[0]["peak_mem_net_mb"]) - res["peak_mem_net_mb"]) < 1e-3
    md = (tmp_path / "report.md").read_text()
    comparison = md.split("## Comparison", 1)[1].split("\n## ", 1)[0]
    header = next(line for line in comparison.splitlines() if line.startswith("| Variant"))
    cells = [c.strip() for c in header.strip("|").split("|")]
    assert cells.index("Peak mem net (MiB)") == cells.index("Peak mem (MiB)") + 1  # beside the gross figure
