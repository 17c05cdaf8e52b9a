"""repeats = "auto" end to end: seeds are added in rounds to the pair the verdict compares until the rule
settles; two names for one config end equivalent (with a margin) or unresolved (without), never different;
a clear difference settles at the first look; a rerun replays the rounds without training anything again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from trainlab.api import run
from trainlab.report.findings import study_findings
from trainlab.report.study import StudyView


def _study(variants: list[dict[str, Any]], margin: float, max_repeats: int = 5) -> dict[str, Any]:
    return {
        "study": {"name": "settle"},
        "repeats": "auto",
        "max_repeats": max_repeats,
        "margin": margin,
        "data": {"name": "synthetic", "shape": [8], "train_size": 96, "test_size": 48, "val_fraction": 0.25,
                 "batch_size": 32, "num_classes": 3},
        "model": {"name": "mlp", "hidden": [8]},
        "train": {"epochs": 1, "lr": 0.1, "threads": 1, "device": "cpu"},
        "measure": {"latency_repeats": 2, "throughput_time_s": 0.001, "infer_limit": 4, "mfu": False},
        "variant": variants,
    }  # fmt: skip


def _settled(out: Path) -> dict[str, Any]:
    (verdict,) = [f for f in study_findings(StudyView.load(out)) if f.kind == "verdict"]
    return verdict.figures | {"text": verdict.text}


def test_two_names_for_one_config_end_equivalent_within_the_margin(tmp_path: Path) -> None:
    result = run(_study([{"name": "a"}, {"name": "b"}], margin=0.02), out=tmp_path, executor="inline",
                 write_report=False)  # fmt: skip
    assert len(result.records) == 6  # the first look: 3 seeds each, and it settled there
    got = _settled(tmp_path)
    assert got["settle_outcome"] == "equivalent" and got["settle_seeds"] == 3
    assert "equivalent within ±2 points" in got["text"]


def test_without_a_margin_they_get_every_seed_and_end_unresolved(tmp_path: Path) -> None:
    spec = _study([{"name": "a"}, {"name": "b"}], margin=0.0)
    result = run(spec, out=tmp_path, executor="inline", write_report=False)
    assert sorted((r.variant, r.seed) for r in result.records) == [(v, s) for v in "ab" for s in range(5)]
    got = _settled(tmp_path)
    assert got["settle_outcome"] == "unresolved" and got["settle_seeds"] == 5
    assert "Unresolved after 5 seeds" in got["text"]
    again = run(spec, out=tmp_path, executor="inline", write_report=False)  # resume: the same rounds, replayed
    assert [r.finished_at for r in again.records] == [r.finished_at for r in result.records]


def test_a_clear_difference_settles_early_and_names_the_winner(tmp_path: Path) -> None:
    variants = [{"name": "trained", "train.lr": 0.5, "train.epochs": 6}, {"name": "untrained", "train.lr": 1e-6}]
    result = run(_study(variants, margin=0.0, max_repeats=7), out=tmp_path, executor="inline", write_report=False)
    got = _settled(tmp_path)
    assert got["settle_outcome"] == "different", got["text"]
    assert got["settle_pair"] == ["trained", "untrained"] and len(result.records) < 14
    assert "trained beats untrained" in got["text"]


def test_the_settled_pair_is_judged_by_the_rule_not_by_a_fixed_sample_test() -> None:
    # Nine seeds whose paired t-test alone gives p < 0.05, but which the rule, spending alpha over four looks,
    # leaves unresolved: every sentence of the report then reads the rule, so none contradicts the verdict.
    from test_verdict import _run

    from trainlab.report.comparison import family_of

    diffs = [0.010, 0.001, 0.012, 0.003, -0.002, 0.009, 0.011, -0.003, 0.006]
    base = [0.90 + 0.01 * (s % 3) for s in range(9)]
    runs = [_run("base", {}, seed=s, val_acc=v, test_acc=v, train_time_s=1.0) for s, v in enumerate(base)]
    runs += [_run("new", {"model.dropout": 0.2}, seed=s, val_acc=v + d, test_acc=v + d, train_time_s=1.0)
             for s, (v, d) in enumerate(zip(base, diffs))]  # fmt: skip
    meta = {"study": {"name": "s"}, "repeats": "auto", "max_repeats": 9, "margin": 0.0}
    view = StudyView(Path("."), meta, "base", ["model.dropout"], None, runs, "2026-01-01T00:00:00+00:00")
    c = family_of(view, "val_acc").pair("new", "base")
    assert c is not None and c.p < 0.05 and c.settled == "unresolved" and not c.significant
    found = study_findings(view)
    (verdict,) = [f for f in found if f.kind == "verdict"]
    assert "within the noise" in verdict.text and "Unresolved after 9 seeds" in verdict.text
    assert "larger than the noise" not in verdict.text
    (best,) = [f for f in found if f.kind == "best"]
    assert "not larger than the noise" in best.text and "seeds-until-settled rule: unresolved" in best.text


def test_check_says_how_many_runs_an_auto_study_may_take(tmp_path: Path, capsys) -> None:
    from trainlab.cli import main

    study = tmp_path / "s.toml"
    study.write_text('repeats = "auto"\nmax_repeats = 6\n[study]\nname = "s"\n[data]\nname = "digits"\n'
                     '[[variant]]\nname = "a"\n[[variant]]\nname = "b"\n')  # fmt: skip
    assert main(["check", str(study)]) == 0
    assert "6 to 12 runs (repeats = auto" in capsys.readouterr().out
    study.write_text('repeats = "often"\n[study]\nname = "s"\n[data]\nname = "digits"\n')
    assert main(["check", str(study)]) == 2
    assert "repeats: a number of seeds per variant (1 or more) or 'auto', not 'often'" in capsys.readouterr().err


def test_a_tuned_study_tunes_once_then_adds_seeds_at_the_tuned_settings(tmp_path: Path) -> None:
    """[tune] with repeats = "auto": the trials run once, before the first look; every later round adds seeds
    at each variant's best trial's settings, and the verdict says both how it was tuned and how it settled."""
    spec = _study([{"name": "a"}, {"name": "b"}], margin=0.0, max_repeats=5)
    spec["tune"] = {"train.lr": {"low": 0.01, "high": 0.5, "log": True}, "trials": 3}
    result = run(spec, out=tmp_path, executor="inline", write_report=False)
    assert sorted((t.variant, t.trial) for t in result.trials) == [(v, i) for v in "ab" for i in range(3)]
    assert sorted((r.variant, r.seed) for r in result.records) == [(v, s) for v in "ab" for s in range(5)]
    for name in "ab":
        best = max((t for t in result.trials if t.variant == name), key=lambda t: (t.figure("val_acc"), -t.trial))
        assert all(r.tuned == best.tuned for r in result.records if r.variant == name)
    got = _settled(tmp_path)
    assert got["settle_outcome"] in ("equivalent", "unresolved") and got["settle_seeds"] == 5, got["text"]
    assert "tuned with 3 trials on the validation split" in got["text"]
    again = run(spec, out=tmp_path, executor="inline", write_report=False)  # a rerun trains nothing again
    assert [t.finished_at for t in again.trials] == [t.finished_at for t in result.trials]
    assert [r.finished_at for r in again.records] == [r.finished_at for r in result.records]
