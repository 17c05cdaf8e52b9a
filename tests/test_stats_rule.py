"""One comparison rule (issue 22): the verdict, the tables' marks and the significance findings read the same
paired/Welch + Holm result; no ± from fewer than 3 seeds; equal whole numbers are no evidence; identical inference
networks are not ranked on inference."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from trainlab.measure.metrics import BY_KEY
from trainlab.records import RunRecord
from trainlab.report.compare import _cell
from trainlab.report.comparison import compare_groups, family_of, judge
from trainlab.report.finding import rounded
from trainlab.report.findings import study_findings
from trainlab.report.study import RunView, StudyView
from trainlab.report.tables import build_table, table_latex, table_markdown
from trainlab.report.verdict import identical_inference

_n = 0


def _run(variant: str, settings: dict[str, Any], seed: int, **results: Any) -> RunView:
    global _n
    _n += 1
    config: dict[str, Any] = {"train": {"epochs": 5, "lr": 0.1, "loss": "cross_entropy"}}
    for key, value in settings.items():
        node = config
        *path, last = key.split(".")
        for p in path:
            node = node.setdefault(p, {})
        node[last] = value
    record = RunRecord(run_id=f"q{_n:04d}", study="s", variant=variant, repeat=seed, seed=seed, status="done",
                       config=config, overrides=settings, results=results)  # fmt: skip
    return RunView(record, [])


def _study(runs: list[RunView], swept: list[str]) -> StudyView:
    return StudyView(Path("."), {"study": {"name": "s"}}, runs[0].variant, swept, None, runs, "2026-01-01T00:00:00")


def _dropout_study(seeds: int, accs: dict[float, list[float]], **fixed: Any) -> StudyView:
    runs = []
    for d, values in accs.items():
        for s in range(seeds):
            res = {"test_acc": values[s], "train_time_s": 10.0 + 0.3 * s + d, **fixed}
            runs.append(_run(f"dropout={d:g}", {"model.dropout": d}, s, **res))
    return _study(runs, ["model.dropout"])


def test_the_rule_pairs_shared_seeds_else_welch_and_holm_adjusts_the_family() -> None:
    a, b = {0: 1.0, 1: 2.0, 2: 3.5}, {0: 0.5, 1: 1.1, 2: 2.0}
    paired = compare_groups(a, b)
    assert paired is not None and paired.paired and paired.family == 1
    welch = compare_groups(a, {10: 0.5, 11: 1.1, 12: 2.0})
    assert welch is not None and not welch.paired
    fam = judge({"x": (a, b), "y": (a, {0: 1.0, 1: 2.1, 2: 3.4})})
    assert fam["x"].family == 2 and fam["x"].p_adjusted >= fam["x"].p
    # equal whole numbers in every seed on both sides: no test at all
    assert compare_groups({0: 3, 1: 3}, {0: 2, 1: 2}, quantised=True) is None
    assert compare_groups({0: 3, 1: 3}, {0: 2, 1: 2}) is not None  # (a continuous figure keeps its test)


def test_verdict_and_significance_findings_read_the_same_test_and_p() -> None:
    # 3 variants x 3 seeds, seeds shared; the baseline (dropout=0) is the worst, so best vs worst is a baseline pair
    view = _dropout_study(3, {0.0: [0.900, 0.912, 0.905], 0.2: [0.915, 0.917, 0.921], 0.5: [0.930, 0.925, 0.941]})
    fs = study_findings(view)
    verdict = next(f for f in fs if f.kind == "verdict")
    sig = {f.variant: f for f in fs if f.kind == "significance"}
    best = family_of(view, "test_acc").vs_baseline("dropout=0.5")
    assert best is not None and best.paired and best.family == 2
    assert verdict.figures["test_acc_p"] == sig["dropout=0.5"].figures["p_test_acc"] == rounded(best.p, 3)
    assert verdict.figures["test_acc_p_adjusted"] == sig["dropout=0.5"].figures["p_adjusted_test_acc"]
    assert best.p_text in verdict.text and best.p_text in sig["dropout=0.5"].text
    word = "larger than the noise" if best.significant else "within the noise"
    assert f"{word} ({best.p_text}, best vs worst)" in verdict.text
    # the table's mark reads the same result
    table = build_table(view, [BY_KEY["test_acc"]], "t", "T")
    cell = table.rows[2].cells[0]
    assert cell.p == best.p_adjusted and cell.mark == ("*" if best.significant else "")


def test_best_vs_worst_outside_the_baseline_is_in_the_figures_family() -> None:
    # baseline in the middle: best vs worst is one more comparison, Holm-adjusted with the baseline pairs
    view = _dropout_study(3, {0.2: [0.915, 0.917, 0.921], 0.0: [0.900, 0.912, 0.905], 0.5: [0.930, 0.925, 0.941]})
    fam = family_of(view, "test_acc")
    pair = fam.pair("dropout=0.5", "dropout=0")
    assert pair is not None and pair.family == 3 and fam.vs_baseline("dropout=0.5").family == 3
    verdict = next(f for f in study_findings(view) if f.kind == "verdict")
    assert verdict.figures["test_acc_p"] == rounded(pair.p, 3) and pair.p_text in verdict.text


def test_two_seeds_print_no_plus_minus_but_n_and_the_range() -> None:
    view = _dropout_study(2, {0.0: [0.90, 0.91], 0.5: [0.93, 0.95]}, throughput_ips=12000.0)
    runs = view.variants[1].runs
    runs[0].record.results["throughput_ips"], runs[1].record.results["throughput_ips"] = 11900.0, 13300.0
    table = build_table(view, [BY_KEY["test_acc"], BY_KEY["throughput_ips"]], "t", "T")
    md, tex = table_markdown(table), table_latex(table, "c")
    assert "±" not in md and r"\pm" not in tex
    assert "12,600 (n = 2: 11,900–13,300)" in md
    assert "94.0 (n = 2: 93.0–95.0)" in md
    fs = study_findings(view)
    best = next(f for f in fs if f.kind == "best" and "test acc" in f.text)
    assert "±" not in best.text and "n = 2: 93.0–95.0%" in best.text
    assert "±" not in _cell(view.variants[1], BY_KEY["test_acc"])


def test_a_quantised_figure_with_zero_spread_gets_no_mark_or_noise_sentence() -> None:
    runs = []
    for s in range(3):
        runs.append(_run("base", {"model.dropout": 0.0}, s, test_acc=0.9, epochs_to_target=2))
        runs.append(_run("slow", {"model.dropout": 0.5}, s, test_acc=0.9, epochs_to_target=3))
    view = _study(runs, ["model.dropout"])
    view.meta_study["study"]["columns"] = ["epochs_to_target"]
    table = build_table(view, [BY_KEY["epochs_to_target"]], "t", "T")
    cell = table.rows[1].cells[0]
    assert cell.delta == "+50.0%" and cell.mark == "" and cell.p is None
    assert family_of(view, "epochs_to_target").vs_baseline("slow") is None
    fs = study_findings(view)
    assert not [f for f in fs if f.kind != "noise" and "larger than the noise" in f.text]
    verdict = next(f for f in fs if f.kind == "verdict")
    assert "every seed gave the same whole number" in verdict.text and "epochs_to_target_p" not in verdict.figures


def _same_network(wide_params: int = 1000) -> StudyView:
    runs = []
    for s in range(3):
        for d, lat, params in ((0.0, 1.0, 1000), (0.5, 1.2, wide_params)):
            res = {"test_acc": 0.9 + d / 10 + s / 1000, "latency_p50_ms": lat + s / 100, "params": params, "macs": 5000}
            runs.append(_run(f"dropout={d:g}", {"model.dropout": d}, s, **res))
    return _study(runs, ["model.dropout"])


def test_identical_inference_networks_are_not_ranked_on_inference() -> None:
    view = _same_network()
    assert identical_inference(view)
    table = build_table(view, [BY_KEY["test_acc"], BY_KEY["latency_p50_ms"]], "t", "T")
    assert [r.cells[1].rank for r in table.rows] == [None, None]
    assert {r.cells[0].rank for r in table.rows} == {"best", "worst"}
    fs = study_findings(view)
    assert not [f for f in fs if f.kind == "best" and "latency" in f.text.lower()]
    # other parameter counts: another network, ranked again
    other = _same_network(wide_params=2000)
    assert not identical_inference(other)
    ranked = build_table(other, [BY_KEY["latency_p50_ms"]], "t", "T")
    assert {r.cells[0].rank for r in ranked.rows} == {"best", "worst"}
