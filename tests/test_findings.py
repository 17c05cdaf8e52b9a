"""Findings: each rule fires on the records that show it, stays quiet on those that do not, and states figures."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from trainlab.records import RunRecord
from trainlab.report import anchors
from trainlab.report import finding as fnd  # the thresholds
from trainlab.report.findings import Finding, pareto_front, run_findings, study_findings
from trainlab.report.study import RunView, StudyView


def _epochs(test_loss: list[float], train_loss: list[float] | None = None, **cols: list[float]) -> list[dict]:
    n = len(test_loss)
    train_loss = train_loss or [1.0 / (e + 1) for e in range(n)]
    rows = []
    for i in range(n):
        row = {
            "epoch": i + 1,
            "train_loss": train_loss[i],
            "test_loss": test_loss[i],
            "train_acc": 0.9,
            "test_acc": 0.88,
            "epoch_time_s": 1.0,
            "data_time_s": 0.1,
            "compute_time_s": 0.85,
        }
        for k, vals in cols.items():
            row[k] = vals[i]
        rows.append(row)
    return rows


_n = 0


def _run(variant: str, epochs: list[dict] | None = None, status: str = "done", seed: int = 0,
         error: str | None = None, **results: Any) -> RunView:  # fmt: skip
    global _n
    _n += 1
    record = {
        "run_id": f"r{_n:04d}",
        "study": "s",
        "variant": variant,
        "repeat": 0,
        "seed": seed,
        "status": status,
        "error": error,
        "config": {"train": {"epochs": len(epochs or []) or 5, "lr": 0.1, "loss": "cross_entropy"}},
        "overrides": {},
        "results": results,
        "env": {},
        "profile": None,
    }
    return RunView(RunRecord(**record), epochs or [])


def _study(*runs: RunView, baseline: str | None = None) -> StudyView:
    return StudyView(
        out_dir=Path("."),
        meta_study={"study": {"name": "s"}},
        baseline_name=baseline or runs[0].variant,
        swept_keys=[],
        study_path=None,
        runs=list(runs),
        generated_at="2025-01-01T00:00:00+00:00",
    )


def _kinds(fs: list[Finding]) -> list[str]:
    return [f.kind for f in fs]


# ---- per run ------------------------------------------------------------------------------------------------


def test_overfitting_names_the_best_epoch_and_the_gap_after_it() -> None:
    test_loss = [0.8, 0.5, 0.35, 0.30, 0.36, 0.42, 0.5]  # lowest at epoch 4, then up 67%
    train_loss = [0.9, 0.5, 0.3, 0.2, 0.12, 0.08, 0.05]
    train_acc = [0.7, 0.8, 0.9, 0.95, 0.97, 0.99, 1.0]
    test_acc = [0.68, 0.77, 0.85, 0.88, 0.87, 0.87, 0.86]
    run = _run("wide", _epochs(test_loss, train_loss, train_acc=train_acc, test_acc=test_acc), train_acc=1.0)
    [f] = [f for f in run_findings(run) if f.kind == "overfitting"]
    assert f.severity == "warning" and f.anchor == anchors.CURVES and f.variant == "wide"
    assert f.figures["best_epoch"] == 4 and f.figures["min_test_loss"] == pytest.approx(0.30)
    assert f.figures["last_test_loss"] == pytest.approx(0.5)
    gap = sum(a - b for a, b in zip(train_acc[3:], test_acc[3:])) / 4 * 100
    assert f.figures["acc_gap_after_best_pp"] == pytest.approx(gap, rel=1e-2)
    assert "epoch 4" in f.text and "67%" in f.text and f"{gap:.1f} pp" in f.text


def test_no_overfitting_for_falling_loss_a_last_epoch_blip_or_a_small_rise() -> None:
    falling = _run("a", _epochs([0.8, 0.5, 0.4, 0.35, 0.3, 0.28]))
    blip = _run("b", _epochs([0.8, 0.5, 0.4, 0.35, 0.3, 0.45]))  # one bad epoch at the end: noise
    rise = 1 + fnd.OVERFIT_LOSS_RISE * 0.5  # below the threshold
    small = _run("c", _epochs([0.8, 0.5, 0.4, 0.3, 0.3 * rise, 0.3 * rise]))
    both_up = _run("d", _epochs([0.8, 0.5, 0.3, 0.5, 0.6, 0.7], [0.9, 0.5, 0.3, 0.5, 0.6, 0.7]))  # unstable
    for run in (falling, blip, small, both_up):
        assert "overfitting" not in _kinds(run_findings(run)), run.variant


def test_a_good_fit_gets_its_own_verdict() -> None:
    levelled = _run("a", _epochs([0.8, 0.5, 0.4, 0.35, 0.3, 0.301, 0.3, 0.3]))
    [f] = [f for f in run_findings(levelled) if f.kind == "fit"]
    assert f.severity == "info" and "no overfitting within 8 epochs" in f.text
    assert f.figures["best_epoch"] == 5 and f.figures["min_test_loss"] == pytest.approx(0.3)
    # Still falling steeply at the end: "not converged" is the useful sentence, not "no overfitting".
    falling = _run("b", _epochs([0.8, 0.5, 0.4, 0.35, 0.3, 0.28]))
    assert "fit" not in _kinds(run_findings(falling)) and "not_converged" in _kinds(run_findings(falling))
    small = _run("c", _epochs([0.8, 0.5, 0.4, 0.3, 0.31, 0.31]))
    [g] = [f for f in run_findings(small) if f.kind == "fit"]
    assert "lowest at epoch 4" in g.text and g.figures["test_loss_rise"] == pytest.approx(0.0333, rel=1e-2)
    overfit = _run("o", _epochs([0.8, 0.5, 0.35, 0.30, 0.36, 0.42, 0.5], [0.9, 0.5, 0.3, 0.2, 0.12, 0.08, 0.05]))
    assert "fit" not in _kinds(run_findings(overfit))  # the overfitting warning says it instead


def test_underfitting_when_training_mode_loss_stays_far_above_test_loss() -> None:
    # A run with no dropout or augmentation recorded: train loss 0.33 against test loss 0.146 after 25 epochs
    test_loss = [0.4, 0.3, 0.25, 0.2, 0.17, 0.146]
    train_loss = [1.2, 0.7, 0.5, 0.4, 0.35, 0.33]
    [f] = [f for f in run_findings(_run("p0.8", _epochs(test_loss, train_loss))) if f.kind == "underfitting"]
    assert f.figures["train_over_test"] == pytest.approx(0.33 / 0.146, rel=1e-3)
    assert "2.3x its test loss" in f.text
    ok = _run("p0.5", _epochs(test_loss, [1.0, 0.5, 0.3, 0.22, 0.18, 0.15]))
    assert "underfitting" not in _kinds(run_findings(ok))


def test_no_underfitting_advice_from_training_mode_figures_that_dropout_or_augmentation_distort() -> None:
    # The same curves as above, but the run's own dropout (or augmentation) is what keeps its training-mode loss
    # up: reading that as underfitting, and advising less regularisation, would be circular (issue 22).
    test_loss = [0.4, 0.3, 0.25, 0.2, 0.17, 0.146]
    train_loss = [1.2, 0.7, 0.5, 0.4, 0.35, 0.33]
    for extra in ({"model": {"name": "mlp", "dropout": 0.8}}, {"data": {"augment": {"hflip": True}}}):
        run = _run("p0.8", _epochs(test_loss, train_loss), train_acc=0.5)
        run.record.config.update(extra)
        assert "underfitting" not in _kinds(run_findings(run)), extra
        assert not any("less regularisation" in f.text for f in run_findings(run))
    plain = _run("plain", _epochs(test_loss, train_loss))
    plain.record.config["model"] = {"name": "mlp", "dropout": 0.0}  # dropout off: the figures are the model's
    assert "underfitting" in _kinds(run_findings(plain))


def test_underfitting_low_train_accuracy_or_a_flat_train_loss() -> None:
    low_acc = _run("tiny", _epochs([1.0] * 5), train_acc=fnd.UNDERFIT_TRAIN_ACC - 0.1)
    [f] = [f for f in run_findings(low_acc) if f.kind == "underfitting"]
    assert f.figures["train_acc"] == pytest.approx(fnd.UNDERFIT_TRAIN_ACC - 0.1)
    flat = _run("flat", _epochs([1.0] * 5, [1.0, 0.99, 0.98, 0.97, 0.96]), train_acc=0.9)
    [f] = [f for f in run_findings(flat) if f.kind == "underfitting"]
    assert f.figures["loss_drop"] == pytest.approx(0.04) and "4%" in f.text
    good = _run("good", _epochs([1.0] * 5, [1.0, 0.5, 0.3, 0.2, 0.1]), train_acc=0.95)
    assert "underfitting" not in _kinds(run_findings(good))


def test_divergence_from_status_and_from_the_losses() -> None:
    diverged = _run("hot", _epochs([0.5, 0.4], [0.5, math.nan]), status="diverged", error="loss became nan")
    [f] = run_findings(diverged)
    assert f.kind == "diverged" and f.severity == "problem" and "loss became nan" in f.text
    assert f.figures["lr"] == 0.1 and f.anchor == anchors.run(diverged.run_id)
    exploding = _run("boom", _epochs([1.0] * 4, [1.0, 5.0, 20.0, fnd.EXPLODING_LOSS_FACTOR * 1.5]))
    assert "diverged" in _kinds(run_findings(exploding))
    nan_loss = _run("nan", _epochs([1.0] * 3, [1.0, None, None]))  # the store keeps NaN as null
    assert "diverged" in _kinds(run_findings(nan_loss))


def test_failed_and_skipped_runs_say_why() -> None:
    [f] = run_findings(_run("x", status="failed", error="RuntimeError: boom"))
    assert f.kind == "failed" and f.severity == "problem" and "RuntimeError: boom" in f.text
    [s] = run_findings(_run("y", status="skipped", error="no cuda"))
    assert s.kind == "skipped" and "no cuda" in s.text


def test_data_bound_above_the_stated_share() -> None:
    share = fnd.DATA_BOUND_SHARE + 0.15
    run = _run("loader", _epochs([0.5] * 3), data_time_s=share * 10, train_time_s=10.0)
    [f] = [f for f in run_findings(run) if f.kind == "data_bound"]
    assert f.figures["data_share"] == pytest.approx(share) and f.anchor == anchors.TIME_SPLIT
    assert f"{share * 100:.0f}%" in f.text and f"{fnd.DATA_BOUND_SHARE * 100:.0f}%" in f.text
    ok = _run("resident", _epochs([0.5] * 3), data_time_s=1.0, train_time_s=10.0)
    assert "data_bound" not in _kinds(run_findings(ok))


def test_low_utilisation_only_when_mfu_is_known() -> None:
    low = _run("small", _epochs([0.5] * 3), mfu=0.02, train_flops_per_s=2e9, peak_flops=1e11, device="cuda")
    [f] = [f for f in run_findings(low) if f.kind == "low_utilisation"]
    assert f.figures["mfu"] == pytest.approx(0.02) and "uses 2% of cuda's" in f.text and "(2 of 100 GFLOP/s)" in f.text
    assert "low_utilisation" not in _kinds(run_findings(_run("big", _epochs([0.5] * 3), mfu=0.4)))
    assert "low_utilisation" not in _kinds(run_findings(_run("unknown", _epochs([0.5] * 3))))


def test_low_utilisation_of_several_variants_is_one_finding() -> None:
    runs = [_run(f"v{i}", _epochs([0.5] * 3), mfu=m, test_acc=0.9) for i, m in enumerate((0.00008, 0.03, 0.5))]
    [f] = [f for f in study_findings(_study(*runs)) if f.kind == "low_utilisation"]
    assert f.text.startswith("2 variants use less than 10%") and "v0 (MFU 0.008%)" in f.text
    assert "v1 (MFU 3%)" in f.text
    assert f.figures == {"variants": ["v0", "v1"], "mfu_v0": 0.00008, "mfu_v1": 0.03}


# ---- per study ----------------------------------------------------------------------------------------------


def test_pareto_front() -> None:
    pts = [("a", 1.0, 0.90), ("b", 2.0, 0.95), ("c", 3.0, 0.93), ("d", 2.0, 0.95), ("e", 0.5, 0.80)]
    # c is dominated by b (cheaper and more accurate); b and d tie (neither dominates the other).
    assert pareto_front(pts) == ["e", "a", "b", "d"]
    assert pareto_front([("only", 1.0, 1.0)]) == ["only"]


def test_best_variant_tradeoff_and_single_seed_noise() -> None:
    runs = [
        _run("logreg", _epochs([0.5] * 4), test_acc=0.90, macs=100, train_time_s=1.0, test_loss=0.4),
        _run("mlp", _epochs([0.5] * 4), test_acc=0.95, macs=1000, train_time_s=2.0, test_loss=0.2),
        _run("fat", _epochs([0.5] * 4), test_acc=0.93, macs=5000, train_time_s=5.0, test_loss=0.3),
    ]
    fs = study_findings(_study(*runs))
    best = [f for f in fs if f.kind == "best"]
    # The verdict states the best test accuracy (and the fastest training): no second sentence repeats it.
    verdict = fs[0]
    assert verdict.kind == "verdict" and verdict.ranks == {"test_acc": ("mlp",), "train_time_s": ("logreg",)}
    assert "mlp 95.0%" in verdict.text and "logreg" in verdict.text and "+5.0 pp" in verdict.text
    assert not [f for f in best if f.metric in ("test_acc", "train_time_s")]
    [loss] = best  # the other figure's winner is stated
    assert loss.metric == "test_loss" and loss.variant == "mlp" and loss.figures["test_loss"] == pytest.approx(0.2)
    tradeoffs = [f for f in fs if f.kind == "tradeoff"]
    assert len(tradeoffs) == 2
    assert all(f.figures["front"] == ["logreg", "mlp"] and f.figures["dominated"] == ["fat"] for f in tradeoffs)
    [noise] = [f for f in fs if f.kind == "noise"]
    assert "one seed" in noise.text and noise.figures["repeats"] == 1
    assert noise.figures["timing_cv_median"] == 0.0  # every epoch took 1.0 s here: CV 0, measured
    assert _kinds(fs).index("best") < _kinds(fs).index("noise")  # the answer first


def test_repeats_compare_with_the_baseline_by_welch() -> None:
    runs = []
    for seed, (a, b) in enumerate([(0.90, 0.95), (0.91, 0.96), (0.905, 0.955)]):
        runs.append(_run("base", _epochs([0.5] * 4), seed=seed, test_acc=a, train_time_s=1.0 + seed * 0.01))
        runs.append(_run("new", _epochs([0.5] * 4), seed=seed, test_acc=b, train_time_s=1.0 + seed * 0.012))
    fs = study_findings(_study(*runs, baseline="base"))
    [sig] = [f for f in fs if f.kind == "significance"]
    assert sig.variant == "new" and sig.figures["p_test_acc"] < 0.05 and "larger than the noise" in sig.text
    assert "paired t-test" in sig.text and sig.anchor == anchors.STATISTICS  # the same seeds: paired
    assert "95% bootstrap CI 95.0–95.8% vs 90.0–90.8%" in sig.text
    [noise] = [f for f in fs if f.kind == "noise"]
    assert "3 seeds" in noise.text and "Welch" in noise.text and "Holm" in noise.text
    best = next(f for f in fs if f.kind == "best" and "test acc" in f.text)
    assert "mean ± 95% CI of 3 seeds" in best.text and "p_vs_baseline" in best.figures
    # Other seeds for the variant: nothing to pair, so Welch's test, with Hedges' g as the effect size.
    for r in runs:
        if r.variant == "new":
            r.record.seed += 10
    [sig] = [f for f in study_findings(_study(*runs, baseline="base")) if f.kind == "significance"]
    assert "Welch p = " in sig.text and "g = " in sig.text


def test_holm_adjusts_the_family_and_few_seeds_say_how_many_are_needed() -> None:
    base = [0.900, 0.905, 0.898]
    runs = [_run("base", _epochs([0.5] * 4), seed=s, test_acc=a) for s, a in enumerate(base)]
    # Three variants, each a little above the baseline with a noisy spread.
    offsets = {"v1": (0.012, -0.006, 0.006), "v2": (0.015, -0.004, 0.007), "v3": (0.030, 0.031, 0.029)}
    for name, offs in offsets.items():
        for s, (a, d) in enumerate(zip(base, offs)):
            runs.append(_run(name, _epochs([0.5] * 4), seed=s, test_acc=a + d))
    view = _study(*runs, baseline="base")
    from scipy import stats as sps

    from trainlab.measure.stats import holm

    raw = []
    for name in ("v1", "v2", "v3"):
        vals = [r.value("test_acc") for r in runs if r.variant == name]
        raw.append(sps.ttest_rel(vals, base).pvalue)
    expected = holm(raw)
    got = [view.compare(v, "test_acc") for v in view.variants[1:]]
    assert [c.p for c in got] == pytest.approx(raw) and [c.p_adjusted for c in got] == pytest.approx(expected)
    assert all(c.paired and c.family == 3 for c in got)
    sig = {f.variant: f for f in study_findings(view) if f.kind == "significance"}
    assert "Holm-adjusted" in sig["v1"].text
    assert "seeds per variant to be detected 80% of the time (this study has 3)" in sig["v1"].text
    assert sig["v1"].figures["seeds_needed_test_acc"] > 3


def test_per_run_findings_merge_over_seeds() -> None:
    test_loss = [0.8, 0.5, 0.3, 0.4, 0.5, 0.6]
    runs = [_run("wide", _epochs(test_loss), seed=s, test_acc=0.9) for s in range(3)]
    [f] = [f for f in study_findings(_study(*runs)) if f.kind == "overfitting"]
    assert f.figures["runs_flagged"] == 3 and "3 of 3 seeds" in f.text


def test_a_running_study_says_so_first() -> None:
    runs = [
        _run("a", _epochs([0.5] * 3), test_acc=0.9),
        _run("b", _epochs([0.5] * 2), status="running"),
        _run("c", status="pending"),
    ]
    fs = study_findings(_study(*runs))
    assert fs[0].kind == "progress" and "1 of 3 runs finished" in fs[0].text
    assert fs[0].figures == {"done": 1, "running": 1, "pending": 1}


def test_every_finding_has_the_documented_fields() -> None:
    runs = [_run("a", _epochs([0.8, 0.5, 0.3, 0.4, 0.5, 0.6]), test_acc=0.9, macs=1, train_time_s=1.0)]
    runs.append(_run("b", status="failed", error="boom"))
    for f in study_findings(_study(*runs)):
        assert f.kind and f.severity in ("problem", "warning", "info") and f.text.endswith((".", ")"))
        assert isinstance(f.figures, dict) and f.anchor


def test_launch_bound_names_the_figures_and_the_remedy() -> None:
    slow = _run("b128", _epochs([0.5] * 3), gpu_busy_share=0.3, step_wall_ms=9.5, step_kernel_ms=2.85, device="cuda")
    [f] = [f for f in run_findings(slow) if f.kind == "launch_bound"]
    assert f.severity == "warning" and "30%" in f.text and "2.85 ms of kernels in a 9.5 ms step" in f.text
    assert 'train.compile = "cuda-graph"' in f.text and f.figures["gpu_busy_share"] == pytest.approx(0.3)
    graphed = _run(
        "g", _epochs([0.5] * 3), gpu_busy_share=0.3, step_wall_ms=3.0, step_kernel_ms=0.9, compile="cuda-graph"
    )
    [g] = [f for f in run_findings(graphed) if f.kind == "launch_bound"]
    assert "larger batch" in g.text and 'cuda-graph")' not in g.text
    busy = _run("b512", _epochs([0.5] * 3), gpu_busy_share=0.9)
    assert "launch_bound" not in _kinds(run_findings(busy))
    assert "launch_bound" not in _kinds(run_findings(_run("cpu", _epochs([0.5] * 3), gpu_busy_share=None)))


def test_an_unstated_mfu_says_why() -> None:
    r = _run("x", _epochs([0.5] * 3), mfu_unchecked=1.4, mfu_note="achieved 72 exceeds the probed peak 51")
    [f] = [f for f in run_findings(r) if "no MFU is stated" in f.text]
    assert "exceeds the probed peak" in f.text and f.severity == "info"


def test_rankings_a_busy_machine_spoiled_are_one_warning_and_plain_winners_one_sentence() -> None:
    busy = {"cpu_cores": [1.0] * 4, "other_cores": [1.5] * 4, "cores": [2] * 4}  # every epoch competed
    runs = [
        _run("a", _epochs([0.5] * 4, **busy), test_acc=0.90, test_loss=0.3, train_time_s=1.0, latency_p50_ms=1.0,
             infer_busy=1),
        _run("b", _epochs([0.5] * 4), test_acc=0.92, test_loss=0.4, train_time_s=2.0, latency_p50_ms=2.0),
    ]  # fmt: skip
    fs = study_findings(_study(*runs))
    best = [f for f in fs if f.kind == "best"]
    [spoiled] = [f for f in best if f.severity == "warning"]
    assert spoiled.text.startswith("Train time and latency p50 cannot be compared: a was timed")
    assert spoiled.figures["machine_affected"] == ["a"]
    [plain] = [f for f in best if f.severity == "info"]
    assert plain.metric == "test_loss" and plain.variant == "a"  # the only plain winner: its own sentence
    assert sum(f.kind == "busy_machine" for f in fs) == 1
