"""An untuned comparison says so: variants that differ in a key moving the best learning rate but share one
learning rate get the caveat in the verdict; variants with their own rates, or factors that only change speed,
do not."""

from __future__ import annotations

from test_verdict import _run, _study

from trainlab.report.fairness import moves_best_lr
from trainlab.report.findings import study_findings


def _texts(runs, swept):
    return [f.text for f in study_findings(_study(runs, swept))]


def test_optimizers_at_one_learning_rate_get_the_caveat_in_the_verdict() -> None:
    runs = [_run(opt, {"train.optimizer": opt}, seed=s, test_acc=acc + 0.002 * s)
            for opt, acc in (("sgd", 0.80), ("adam", 0.30)) for s in range(3)]  # fmt: skip
    findings = study_findings(_study(runs, ["train.optimizer"]))
    verdict = findings[0]
    assert verdict.kind == "verdict"
    assert "one learning rate (train.lr = 0.1)" in verdict.text and "train.optimizer" in verdict.text
    # the remedy is a [tune] section: the same tuning budget for every variant on the validation split
    assert 'add a [tune] section, e.g. "train.lr" = { low = 1e-4, high = 1.0, log = true },' in verdict.text
    assert "every variant gets the same tuning budget on the validation split" in verdict.text
    assert verdict.figures["lr_moving_keys"] == ["train.optimizer"]
    assert not any(f.kind == "untuned" for f in findings)  # told inside the verdict, not on its own


def test_variants_with_their_own_learning_rates_get_no_caveat() -> None:
    runs = [_run(opt, {"train.optimizer": opt, "train.lr": lr}, seed=s, test_acc=0.8 + 0.002 * s)
            for opt, lr in (("sgd", 0.1), ("adam", 0.001)) for s in range(3)]  # fmt: skip
    assert not any("one learning rate" in t for t in _texts(runs, ["train.optimizer", "train.lr"]))


def test_a_learning_rate_sweep_across_the_variants_gets_no_caveat() -> None:
    runs = [_run(f"{opt} lr={lr}", {"train.optimizer": opt, "train.lr": lr}, seed=1, test_acc=0.5 + lr)
            for opt in ("sgd", "adam") for lr in (0.001, 0.1)]  # fmt: skip
    assert not any("one learning rate" in t for t in _texts(runs, ["train.optimizer", "train.lr"]))


def _tuned(runs, tune: dict) -> list[str]:
    study = _study(runs, ["train.optimizer"])
    study.meta_study["tune"] = {"params": tune, "trials": 4}
    return [f.text for f in study_findings(study)]


def test_a_tuned_learning_rate_gets_no_caveat_even_where_the_variants_best_rates_agree() -> None:
    # [tune] tried the same rates for both (quasirandom) and both chose 0.1: tuned, not one rate for all
    runs = [_run(opt, {"train.optimizer": opt}, seed=s, test_acc=acc + 0.002 * s)
            for opt, acc in (("sgd", 0.80), ("adam", 0.78)) for s in range(3)]  # fmt: skip
    texts = _tuned(runs, {"train.lr": {"low": 1e-3, "high": 1.0, "log": True}})
    assert not any("one learning rate" in t for t in texts)


def test_a_tune_section_without_the_learning_rate_is_told_to_add_it() -> None:
    runs = [_run(opt, {"train.optimizer": opt}, seed=s, test_acc=acc + 0.002 * s)
            for opt, acc in (("sgd", 0.80), ("adam", 0.30)) for s in range(3)]  # fmt: skip
    (verdict, *_) = _tuned(runs, {"train.weight_decay": {"low": 1e-5, "high": 1e-2, "log": True}})
    assert "one learning rate (train.lr = 0.1)" in verdict
    assert (
        'add train.lr to the study\'s [tune] section ("train.lr" = { low = 1e-4, high = 1.0, log = true })' in verdict
    )


def test_factors_that_only_change_speed_get_no_caveat() -> None:
    runs = [_run(f"t{t}", {"train.threads": t}, seed=s, test_acc=0.8, train_time_s=10.0 / t)
            for t in (1, 2) for s in range(2)]  # fmt: skip
    assert not any("one learning rate" in t for t in _texts(runs, ["train.threads"]))


def test_which_keys_move_the_best_learning_rate() -> None:
    assert moves_best_lr("train.optimizer") and moves_best_lr("data.batch_size") and moves_best_lr("model.hidden")
    assert not moves_best_lr("train.threads") and not moves_best_lr("data.num_workers")
    assert not moves_best_lr("train.seed") and not moves_best_lr("train.epochs")
