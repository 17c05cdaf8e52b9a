"""The verdict answers the study's question first; advice agrees with the study's evidence; warnings merge;
performance-only factors are not credited with accuracy differences; regression findings never use % across 0."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from trainlab.records import RunRecord
from trainlab.report.findings import study_findings
from trainlab.report.study import RunView, StudyView
from trainlab.report.verdict import performance_only

_n = 0


def _set(d: dict[str, Any], key: str, value: Any) -> None:
    *path, last = key.split(".")
    for p in path:
        d = d.setdefault(p, {})
    d[last] = value


def _run(variant: str, settings: dict[str, Any], seed: int = 0, epochs: list[dict] | None = None,
         **results: Any) -> RunView:  # fmt: skip
    global _n
    _n += 1
    config: dict[str, Any] = {"train": {"epochs": 5, "lr": 0.1, "loss": "cross_entropy"}}
    for k, v in settings.items():
        _set(config, k, v)
    record = {
        "run_id": f"v{_n:04d}", "study": "s", "variant": variant, "repeat": seed, "seed": seed, "status": "done",
        "error": None, "config": config, "overrides": settings, "results": results, "env": {}, "profile": None,
    }  # fmt: skip
    return RunView(RunRecord(**record), epochs or [])


def _study(runs: list[RunView], swept: list[str], columns: list[str] | None = None) -> StudyView:
    meta: dict[str, Any] = {"study": {"name": "s"}}
    if columns:
        meta["study"]["columns"] = columns
    return StudyView(Path("."), meta, runs[0].variant, swept, None, runs, "2026-01-01T00:00:00+00:00")


def _one(findings: list, kind: str):
    found = [f for f in findings if f.kind == kind]
    assert len(found) == 1, [f.text for f in findings]
    return found[0]


def test_a_monotonic_numeric_sweep_says_which_way_and_that_it_beats_the_noise() -> None:
    runs = [
        _run(f"lr={lr}", {"train.lr": lr}, seed=s, test_acc=acc + 0.002 * s, train_time_s=10.0)
        for lr, acc in ((0.01, 0.80), (0.1, 0.86), (1.0, 0.91))
        for s in range(3)
    ]
    findings = study_findings(_study(runs, ["train.lr"]))
    assert findings[0].kind == "verdict"  # the answer comes first
    v = findings[0]
    assert v.text.startswith("Test acc rises at every step as lr grows: 80.2% at lr=0.01 → 91.2% at lr=1 (+11.0 pp)")
    # issue 22: the seeds are shared, so the verdict reads the paired, Holm-adjusted comparison (it said Welch)
    assert "best: lr=1" in v.text and "larger than the noise (paired t-test p" in v.text
    assert v.figures["test_acc_shape"] == "monotonic" and v.figures["test_acc_exceeds_noise"] is True
    assert v.figures["test_acc_best"] == 1.0


def test_a_sweep_with_an_optimum_names_the_best_inner_setting() -> None:
    runs = [
        _run(f"wd={wd}", {"train.weight_decay": wd}, test_acc=acc, train_time_s=10.0)
        for wd, acc in ((0.0, 0.90), (1e-4, 0.93), (1e-3, 0.92), (1e-2, 0.85))
    ]
    v = study_findings(_study(runs, ["train.weight_decay"]))[0]
    assert v.kind == "verdict"
    assert v.text.startswith("Test acc is best at weight_decay=0.0001 (93.0%), an optimum inside the range")
    assert "one seed per setting, so the run-to-run noise was not measured" in v.text
    assert v.figures["test_acc_shape"] == "optimum"


def test_a_categorical_sweep_ranks_and_says_how_many_times_faster() -> None:
    runs = [
        _run("cpu", {"train.device": "cpu"}, epoch_time_mean_s=35.0, test_acc=0.91),
        _run("cuda", {"train.device": "cuda"}, epoch_time_mean_s=1.0, test_acc=0.90),
    ]
    findings = study_findings(_study(runs, ["train.device"], columns=["epoch_time_mean_s", "test_acc"]))
    v = _one(findings, "verdict")
    assert v.text.startswith("cuda is 35× faster than cpu by epoch time (cuda 1.00 s, cpu 35.0 s)")
    # the device cannot change the arithmetic: accuracy is judged as nondeterminism, never as its effect
    assert "test_acc_shape" not in v.figures
    nd = _one(findings, "nondeterminism")
    assert "The factor device cannot change what is computed" in nd.text and "not an effect of device" in nd.text
    assert not [f for f in findings if f.kind == "best" and "test acc" in f.text.lower()]


def test_a_performance_only_factor_reports_accuracy_differences_as_nondeterminism() -> None:
    assert performance_only("data.num_workers") and performance_only("measure.latency_repeats")
    assert not performance_only("model.dropout") and not performance_only("train.precision")
    runs = [
        _run(
            f"num_workers={w}",
            {"data.num_workers": w},
            test_acc=acc,
            test_loss=1.5,
            data_time_s=d,
            data_startup_s=0.05 * w,
            train_time_s=d + 5.0,
        )
        for w, acc, d in ((0, 0.451, 3.1), (1, 0.390, 4.0), (4, 0.415, 4.8), (8, 0.410, 5.2))
    ]
    cols = ["data_time_s", "compute_time_s", "epoch_time_mean_s", "data_share", "test_acc"]
    findings = study_findings(_study(runs, ["data.num_workers"], columns=cols))
    nd = _one(findings, "nondeterminism")
    assert "test acc 39.0% (num_workers=1) to 45.1% (num_workers=0), a spread of 6.1 pp" in nd.text
    assert "the batches are identical for every worker count" in nd.text
    assert "run-to-run nondeterminism" in nd.text
    assert not any(f.text.startswith("Highest test acc") for f in findings)
    v = _one(findings, "verdict")
    # steady-state data time (data time minus the first-batch wait) is what the verdict reads
    assert v.text.startswith("Steady data time rises at every step as num_workers grows")
    assert "best: num_workers=0" in v.text and "worker start-up" in v.text


def test_data_bound_advice_is_withdrawn_when_more_workers_were_measured_slower() -> None:
    runs = [
        _run(f"num_workers={w}", {"data.num_workers": w}, data_time_s=d, train_time_s=d + 2.0, test_acc=0.5)
        for w, d in ((0, 3.0), (2, 4.0), (4, 5.0))
    ]
    findings = study_findings(_study(runs, ["data.num_workers"]))
    bound = _one(findings, "data_bound")  # one finding for the three variants
    assert bound.text.startswith("3 variants are data-bound")
    assert "more DataLoader workers would shorten" not in bound.text
    assert "More DataLoader workers are no cure here" in bound.text
    # ... and kept where the study did not measure more workers to be worse
    helped = [
        _run(f"num_workers={w}", {"data.num_workers": w}, data_time_s=d, train_time_s=d + 2.0, test_acc=0.5)
        for w, d in ((0, 5.0), (2, 3.0))
    ]
    f = _one(study_findings(_study(helped, ["data.num_workers"])), "data_bound")
    assert "more DataLoader workers would shorten" in f.text


def _falling_epochs(n: int, start: float, end: float) -> list[dict]:
    return [
        {"epoch": e + 1, "train_loss": start + (end - start) * e / (n - 1) + 0.05,
         "test_loss": start + (end - start) * e / (n - 1), "train_acc": 0.3, "test_acc": 0.3}
        for e in range(n)
    ]  # fmt: skip


def test_duplicated_warnings_merge_into_one_finding_naming_the_variants() -> None:
    runs = [
        _run(f"m{i}", {"model.width": w}, train_acc=0.3, test_acc=0.3, epochs=_falling_epochs(8, 2.0, 1.5))
        for i, w in enumerate((8, 16, 32))
    ]
    findings = study_findings(_study(runs, ["model.width"]))
    under = _one(findings, "underfitting")
    assert under.text.startswith("3 variants underfit: m0 (train acc 30.0%); m1 (train acc 30.0%); m2")
    assert under.figures["variants"] == ["m0", "m1", "m2"]
    slow = _one(findings, "not_converged")
    assert slow.text.startswith("3 variants have not converged")


def test_regression_uses_absolute_differences_and_says_worse_than_the_mean_and_not_converged() -> None:
    base = _run("mlp_8", {"model.hidden": [8]}, test_r2=-0.048, test_loss=1.02, test_mae=0.8,
                epochs=_falling_epochs(200, 2.0, 1.02))  # fmt: skip
    big = _run("mlp_256_128_64", {"model.hidden": [256, 128, 64]}, test_r2=0.391, test_loss=0.6, test_mae=0.5,
               epochs=_falling_epochs(200, 1.0, 0.6))  # fmt: skip
    for r in (base, big):  # regression epochs: R² instead of accuracies
        for e in r.epochs:
            e.train_acc = e.test_acc = None
            e.test_r2 = 0.0
    findings = study_findings(_study([base, big], ["model.hidden"]))
    # The verdict states the best R² (absolute difference, no relative change across zero); no second sentence.
    assert _one(findings, "verdict").ranks["test_r2"] == ("mlp_256_128_64",)
    assert not [f for f in findings if f.kind == "best" and f.metric == "test_r2"]
    worse = _one(findings, "worse_than_mean")
    assert worse.variant == "mlp_8" and "worse than predicting the mean" in worse.text
    slow = _one(findings, "not_converged")  # both still falling: merged, each with its slope
    assert "mlp_8 (test loss" in slow.text and "/epoch over epochs 151–200" in slow.text
    assert "Training longer would lower it further" in slow.text
    assert not [f for f in findings if f.kind == "fit"]  # no "no overfitting" where "not converged" is the news
    v = _one(findings, "verdict")
    assert "+0.439" in v.text and "%" not in v.text.replace("% ", "")  # no relative change across zero


def test_a_list_of_unlike_variants_is_ranked_variant_by_variant() -> None:
    # mnist_cnn_regularization-like: each variant changes a different key, so no key is a factor on its own
    runs = [
        _run("plain", {}, test_acc=0.990, train_time_s=10.0),
        _run("dropout_0.2", {"model.dropout": 0.2}, test_acc=0.992, train_time_s=10.5),
        _run("l2_1e-4", {"train.l2": 1e-4}, test_acc=0.989, train_time_s=10.2),
    ]
    v = _one(study_findings(_study(runs, ["model.dropout", "train.l2"])), "verdict")
    assert v.figures["factor"] == "variant"
    assert v.text.startswith(
        "By test acc: dropout_0.2 99.2%, plain 99.0%, l2_1e-4 98.9% — dropout_0.2 is best, +0.3 pp"
    )


def test_a_study_of_one_variant_answers_with_its_own_figures() -> None:
    epochs = [{"epoch": e, "train_loss": 0.3, "test_loss": 0.3} for e in (1, 2, 3)]
    runs = [_run("logreg", {}, epochs=epochs, test_acc=0.923, train_time_s=2.9, infer_ms_per_image=0.01)]
    v = _one(study_findings(_study(runs, [], columns=["test_acc", "train_time_s", "infer_ms_per_image"])), "verdict")
    assert v.text == "logreg, after 3 epochs: test acc 92.3%, train time 2.90 s, infer / image 0.0100 ms."


def test_one_noise_rule_for_single_seed_timings_in_the_verdict_the_findings_and_the_table() -> None:
    from trainlab.report.tables import NOISE_MARK, comparison_table

    # 11 epochs whose times vary by ~10% (cv over epochs 2..11): a total over 10 epochs varies by ~3.2%.
    times = [1.5, 0.9, 1.1, 0.9, 1.1, 0.9, 1.1, 0.9, 1.1, 0.9, 1.1]
    epochs = [{"epoch": i + 1, "epoch_time_s": t, "train_loss": 0.5, "test_loss": 0.5} for i, t in enumerate(times)]
    runs = [
        _run("a", {"model.width": "a"}, epochs=epochs, train_time_s=11.0, latency_p50_ms=1.00, test_acc=0.9),
        _run("b", {"model.width": "b"}, epochs=epochs, train_time_s=12.1, latency_p50_ms=1.10, test_acc=0.9),
    ]
    view = _study(runs, ["model.width"], columns=["train_time_s", "latency_p50_ms"])
    cv = view.timing_noise.cv_median
    assert view.timing_noise_of("train_time_s") == cv / 10**0.5 and view.timing_noise_of("latency_p50_ms") == cv
    assert view.within_timing_noise("train_time_s", 11.0, 12.1) is False  # 9% > 2 x 3.2%
    assert view.within_timing_noise("latency_p50_ms", 1.0, 1.1) is True  # 9% < 2 x 10%
    findings = study_findings(view)
    v = _one(findings, "verdict")
    assert "a is 1.1× faster than b by train time" in v.text and "larger than the timing noise" in v.text
    lat = next(f for f in findings if f.kind == "best" and f.text.startswith("Lowest latency p50"))
    assert "within the timing noise" in lat.text
    table = comparison_table(view)
    marks = {m.key: row.cells[i].mark for row in table.rows if row.name == "b" for i, m in enumerate(table.metrics)}
    assert marks.get("train_time_s") != NOISE_MARK and marks.get("latency_p50_ms") == NOISE_MARK
