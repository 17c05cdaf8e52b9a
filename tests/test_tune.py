"""[tune] end to end: every variant gets exactly ``trials`` trials, no trial reads the test split (the loader is
sealed, and a trial that reads it fails), each variant's runs use its best trial's settings, a killed tuning
study resumes without repeating a trial and with the sampler's sequence intact; and the search's pieces."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from helpers import assert_user_error

from trainlab.api import run
from trainlab.data.sealed import SealedSplit, SealedSplitRead, seal_test
from trainlab.engine.events import RunEnded, RunStarted
from trainlab.errors import ConfigError
from trainlab.study import load_study
from trainlab.study.recipes import smoke_overrides
from trainlab.tune import Range, Trial, TuneConfig, at_edge, best_trial
from trainlab.tune.prune import PruneRule, median_bar, stops_at
from trainlab.tune.search import rounds, settings_for, sobol_points


def _study(tune: dict[str, Any], repeats: int = 1, val: float | None = 0.25) -> dict[str, Any]:
    data = {"name": "synthetic", "shape": [8], "train_size": 96, "test_size": 48, "batch_size": 32, "num_classes": 3}
    if val is not None:
        data["val_fraction"] = val
    return {
        "study": {"name": "tuned"},
        "repeats": repeats,
        "data": data,
        "model": {"name": "mlp", "hidden": [8]},
        "train": {"epochs": 1, "threads": 1, "device": "cpu"},
        "measure": {"latency_repeats": 2, "throughput_time_s": 0.001, "infer_limit": 4, "mfu": False},
        "tune": tune,
        "variant": [{"name": "sgd", "train.optimizer": "sgd"}, {"name": "adam", "train.optimizer": "adam"}],
    }  # fmt: skip


LR = {"low": 1e-3, "high": 1.0, "log": True}


class Events:
    """A sink that keeps every event, by type name, with the run it is about."""

    def __init__(self, stop_after_ends: int | None = None) -> None:
        self.seen: list[tuple[str, Any]] = []
        self.stop_after_ends = stop_after_ends

    def event(self, spec: Any, event: Any) -> None:
        self.seen.append((type(event).__name__, spec))
        ends = sum(kind == "RunEnded" for kind, _ in self.seen)
        if isinstance(event, RunEnded) and self.stop_after_ends is not None and ends >= self.stop_after_ends:
            raise KeyboardInterrupt  # the user's Ctrl-C after this run was stored (the store is the first sink)

    def started(self) -> list[Any]:
        return [spec for kind, spec in self.seen if kind == RunStarted.__name__]


def test_every_variant_gets_exactly_its_trials_and_runs_at_its_best_setting(tmp_path: Path) -> None:
    result = run(_study({"train.lr": LR, "trials": 4}, repeats=2), out=tmp_path, executor="inline", write_report=False)
    assert sorted((t.variant, t.trial) for t in result.trials) == [(v, i) for v in ("adam", "sgd") for i in range(4)]
    assert all(t.status == "done" and t.seed == 0 for t in result.trials)  # trials run at the variant's first seed
    for t in result.trials:
        assert t.figure("val_acc") is not None and t.figure("test_acc") is None and t.figure("test_loss") is None
    # quasirandom: every variant is tried at the same settings (a paired design), spread over the log range
    lrs = {v: [t.tuned["train.lr"] for t in result.trials if t.variant == v] for v in ("sgd", "adam")}
    assert lrs["sgd"] == lrs["adam"] and len(set(lrs["sgd"])) == 4
    assert all(1e-3 <= lr <= 1.0 for lr in lrs["sgd"])
    # the study's runs: each variant at its best trial's lr, at the study's seeds, scored on test
    assert sorted((r.variant, r.seed) for r in result.records) == [("adam", 0), ("adam", 1), ("sgd", 0), ("sgd", 1)]
    for name in ("sgd", "adam"):
        trials = [t for t in result.trials if t.variant == name]
        best = max(trials, key=lambda t: (t.figure("val_acc"), -t.trial))
        for r in (r for r in result.records if r.variant == name):
            assert r.tuned == best.tuned and r.config["train"]["lr"] == best.tuned["train.lr"]
            assert r.figure("test_acc") is not None
            assert "train.lr" not in r.overrides  # a tuned value is not a factor of the study
    assert result.exit_code == 0


def test_a_trial_never_reads_the_test_split_checked_through_the_loader(tmp_path: Path, monkeypatch: Any) -> None:
    # The control: were the engine to build a trial's test loader anyway, reading the sealed split raises and
    # the trial fails with the reason; nothing is chosen on test, and with no trial left the study stops.
    import trainlab.data.loaders as loaders

    monkeypatch.setattr(loaders, "is_sealed", lambda split: False)
    with pytest.raises(ConfigError, match="no variant has a trial"):
        run(_study({"train.lr": LR, "trials": 2}), out=tmp_path, executor="inline", write_report=False)
    from trainlab.store import Store

    trials = [r for r in Store(tmp_path / "trainlab.db", readonly=True).runs() if r.trial is not None]
    assert len(trials) == 4 and all(t.status == "failed" for t in trials)
    assert all("read the test split, which is sealed" in (t.error or "") for t in trials)


def test_a_sealed_split_keeps_its_size_and_refuses_every_read() -> None:
    from trainlab.data import DataConfig, load_dataset

    ds = load_dataset(DataConfig.model_validate({"name": "digits", "val_fraction": 0.2}))
    sealed = seal_test(ds)
    assert isinstance(sealed.test, SealedSplit) and len(sealed.test) == len(ds.test)
    for read in (lambda: sealed.test.x, lambda: sealed.test.y, lambda: sealed.test.head(3).x):
        with pytest.raises(SealedSplitRead, match="sealed"):
            read()
    assert ds.test.x is not None and sealed.val is ds.val  # the shared dataset itself is untouched
    with pytest.raises(Exception, match="validation split"):
        seal_test(load_dataset(DataConfig.model_validate({"name": "digits"})))


def test_a_killed_tuning_study_resumes_without_repeating_a_trial_and_keeps_the_sequence(tmp_path: Path) -> None:
    # TPE (told each finished trial) over 5 trials: a start-up round of 2, then one trial per round.
    spec = _study({"train.lr": LR, "trials": 5, "sampler": "tpe", "seed": 3})
    whole = run(spec, out=tmp_path / "whole", executor="inline", write_report=False)
    killed = Events(stop_after_ends=5)  # after 5 of the 10 trials
    with pytest.raises(KeyboardInterrupt):
        run(spec, out=tmp_path / "resumed", executor="inline", write_report=False, sinks=[killed])
    again = Events()
    resumed = run(spec, out=tmp_path / "resumed", executor="inline", write_report=False, sinks=[again])

    def sequence(result: Any) -> list[tuple[str, int, float]]:
        return sorted((t.variant, t.trial, t.tuned["train.lr"]) for t in result.trials)

    assert sequence(resumed) == sequence(whole)  # the same trials, asked in the same order from the same history
    ended_before = {s.run_id for kind, s in killed.seen if kind == "RunEnded"}
    rerun_trials = [s for s in again.started() if s.trial is not None]
    assert len(rerun_trials) == 10 - 5 and not ended_before & {s.run_id for s in rerun_trials}
    assert [r.tuned for r in resumed.records] == [r.tuned for r in whole.records]


def test_trials_run_side_by_side_in_worker_processes_as_they_do_inline(tmp_path: Path) -> None:
    spec = _study({"train.lr": LR, "trials": 3})
    side = run(spec, out=tmp_path / "jobs", jobs=2, write_report=False)
    inline = run(spec, out=tmp_path / "inline", executor="inline", write_report=False)
    assert [t.status for t in side.trials] == ["done"] * 6, [t.error for t in side.trials]
    assert [(t.tuned, t.figure("val_acc")) for t in side.trials] == [(t.tuned, t.figure("val_acc")) for t in
                                                                    inline.trials]  # fmt: skip
    # a finished trial keeps no checkpoint (its figures and epochs are in the store): only the runs' files remain
    kept = {p.name.split(".")[0] for p in (tmp_path / "jobs" / "checkpoints").glob("*")}
    assert kept == {r.run_id for r in side.records}


def test_tune_needs_a_validation_split(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"data\.val_fraction"):
        run(_study({"train.lr": LR, "trials": 2}, val=None), out=tmp_path, executor="inline", write_report=False)


@pytest.mark.parametrize(
    ("tune", "says"),
    [
        ({"trials": 3}, "names no key to tune"),
        ({"train.lr": {"low": 1.0, "high": 0.1}}, "low (1.0) must be below high (0.1)"),
        ({"train.lr": {"low": 0.0, "high": 0.1, "log": True}}, "log = true needs low > 0"),
        ({"train.lr": {"low": 0.1, "high": 1.0, "lg": True}}, "unknown key 'lg' (did you mean 'log'?)"),
        ({"train.lr": LR, "metric": "test_acc"}, "a trial never reads the test split"),
        ({"train.lr": LR, "sampler": "grid"}, "quasirandom"),
        ({"train.lr": LR, "trails": 3}, "did you mean 'trials'?"),
        ({"lr": LR}, "unknown key 'tune.lr'"),
        ({"optim.lr": LR}, "must be written section.key"),
        ({"data.batch_size": {"low": 8, "high": 64}}, "add integer = true"),
    ],
)
def test_a_wrong_tune_section_is_refused_with_the_key(tune: dict[str, Any], says: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_study(_study(tune))
    assert says in str(err.value)


def test_a_key_both_swept_and_tuned_is_refused() -> None:
    spec = _study({"train.lr": LR}) | {"sweep": {"train.lr": [0.1, 0.2]}}
    with pytest.raises(ConfigError, match="both swept"):
        load_study(spec)


def test_the_cli_names_a_tune_mistake_without_a_traceback(tmp_path: Path) -> None:
    import subprocess
    import sys

    from helpers import to_toml

    path = tmp_path / "s.toml"
    path.write_text(to_toml(_study({"train.lr": {"low": 1.0, "high": 0.1}})))
    out = subprocess.run([sys.executable, "-m", "trainlab", "check", str(path)], capture_output=True, text=True)
    assert_user_error(out.returncode, out.stderr, "train.lr")
    ok = subprocess.run([sys.executable, "-m", "trainlab", "check", str(path), "--set", "tune.train.lr.low=0.01"],
                        capture_output=True, text=True)  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert "after 2 x 16 tuning trials (quasirandom, on the validation split only): train.lr 0.01 to 0.1" in ok.stdout


def test_unquoted_dotted_keys_are_the_same_as_quoted_ones() -> None:
    quoted = TuneConfig.model_validate({"train.lr": LR, "model.hidden": [[8], [16]]})
    nested = TuneConfig.model_validate({"train": {"lr": LR}, "model": {"hidden": [[8], [16]]}})
    assert quoted == nested and list(quoted.params) == ["train.lr", "model.hidden"]


def test_a_smoke_run_of_a_tuned_recipe_tunes_with_two_trials() -> None:
    assert smoke_overrides("recipe:mnist_optimizers_tuned", [])["tune.trials"] == 2


# ---- the search --------------------------------------------------------------------------------------------
def test_sobol_settings_are_a_stable_prefix_spread_over_the_range() -> None:
    tune = TuneConfig.model_validate({"train.lr": LR, "data.batch_size": {"low": 8, "high": 64, "integer": True},
                                      "model.hidden": [[8], [16], [32]], "trials": 16})  # fmt: skip
    points = sobol_points(tune, 16)
    assert points[:5] == sobol_points(tune, 5)  # the n-th trial does not depend on the budget
    assert [settings_for(tune, i, []) for i in range(16)] == points
    logs = sorted(math.log10(p["train.lr"]) for p in points)
    assert logs[0] < -2.5 and logs[-1] > -0.5  # spread evenly in log space over 1e-3..1
    assert all(isinstance(p["data.batch_size"], int) and 8 <= p["data.batch_size"] <= 64 for p in points)
    assert {tuple(p["model.hidden"]) for p in points} == {(8,), (16,), (32,)}
    other = TuneConfig.model_validate({"train.lr": LR, "trials": 16, "seed": 1})
    assert sobol_points(other, 4) != sobol_points(TuneConfig.model_validate({"train.lr": LR}), 4)


def test_tpe_asks_the_same_setting_from_the_same_history_and_learns_from_it() -> None:
    tune = TuneConfig.model_validate({"train.lr": LR, "model.hidden": [[8], [16]], "trials": 12, "sampler": "tpe"})
    assert rounds(tune) == [[0, 1, 2, 3], [4], [5], [6], [7], [8], [9], [10], [11]]
    history = [(settings_for(tune, i, []), None, None) for i in range(4)]
    # a figure that peaks at lr = 0.01: TPE's next asks move towards it
    history = [(s, -abs(math.log10(s["train.lr"]) + 2), None) for s, _, _ in history]
    first = settings_for(tune, 4, history)
    assert first == settings_for(tune, 4, history) and first["model.hidden"] in ([8], [16])
    for i in range(4, 12):
        s = settings_for(tune, i, history)
        history.append((s, -abs(math.log10(s["train.lr"]) + 2), None))
    best = max(history, key=lambda h: h[1])[0]["train.lr"]
    assert 10**-2.5 < best < 10**-1.5


def test_best_trial_and_the_edge_of_a_range() -> None:
    trials = [Trial(0, {"x": 1}, 0.5), Trial(1, {"x": 2}, 0.9), Trial(2, {"x": 3}, 0.9), Trial(3, {"x": 4}, None)]
    assert best_trial(trials).index == 1  # the earliest of equal figures
    assert best_trial(trials, higher_is_better=False).index == 0
    assert best_trial([Trial(0, {}, None)]) is None
    lr = Range.model_validate(LR)
    assert at_edge(lr, 0.9) == "high" and at_edge(lr, 1.2e-3) == "low" and at_edge(lr, 0.03) is None
    assert at_edge(Range(low=0, high=10), 9.5) == "high" and at_edge(Range(low=0, high=10), 5) is None
    assert at_edge([16, 32, 64], 64) == "high" and at_edge([16, 32, 64], 32) is None
    assert at_edge(["relu", "gelu"], "relu") is None  # names have no edge


def test_a_tuning_study_killed_by_sigkill_resumes_with_its_trials_intact(tmp_path: Path) -> None:
    """The whole process group killed (a machine gone) in the middle of the trials: the rerun plans the same
    trials, keeps every finished one (its finished_at unchanged) and ends as the uninterrupted study does."""
    import os
    import signal
    import sqlite3
    import subprocess
    import sys
    import time

    from helpers import to_toml

    from trainlab.store import Store

    spec = _study({"train.lr": LR, "trials": 5, "sampler": "tpe"})
    spec["train"] |= {"epochs": 3, "deterministic": True}
    spec["data"]["train_size"] = 3000  # ~0.1 s per epoch: time to kill between trials
    path = tmp_path / "tuned.toml"
    path.write_text(to_toml(spec))
    whole = run(spec, out=tmp_path / "whole", executor="inline", write_report=False)

    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "trainlab", "run", str(path), "--out", str(out), "--quiet"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    deadline, done = time.time() + 120, 0
    while time.time() < deadline and done < 4:
        try:
            con = sqlite3.connect(out / "trainlab.db", timeout=1)
            done = con.execute("SELECT COUNT(*) FROM runs WHERE trial IS NOT NULL AND status = 'done'").fetchone()[0]
            con.close()
        except sqlite3.Error:
            pass
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL and done >= 4
    before = {r.run_id: r.finished_at for r in Store(out / "trainlab.db").runs(plan_only=False) if r.status == "done"}
    assert len(before) < 10 + 4  # killed before the end

    again = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
    assert again.returncode == 0, again.stderr
    after = Store(out / "trainlab.db", readonly=True).runs(plan_only=False)
    assert {r.run_id: r.finished_at for r in after if r.run_id in before} == before  # no finished trial repeated
    trials = sorted((r.variant, r.trial, r.tuned["train.lr"]) for r in after if r.trial is not None)
    assert trials == sorted((t.variant, t.trial, t.tuned["train.lr"]) for t in whole.trials)
    assert sorted(r.tuned["train.lr"] for r in after if r.trial is None) == sorted(
        r.tuned["train.lr"] for r in whole.records
    )


def test_the_median_rule_is_a_bar_per_epoch_from_earlier_trials() -> None:
    curves = [[0.5, 0.7, 0.8], [0.3, 0.5], [0.9, None, 0.95]]
    assert median_bar(curves, 3) == (0.5, 0.6, 0.875)
    assert median_bar(curves[:1], 3) == (None, None, None)  # one trial is no median
    rule = PruneRule("val_acc", running=False, higher=True, bar=(0.5, 0.6, 0.875))
    assert stops_at(rule, [0.4], 3) and not stops_at(rule, [0.5], 3)  # worse than the median stops; equal goes on
    assert not stops_at(rule, [0.6, 0.7, 0.1], 3)  # the last epoch: the trial is complete, never pruned
    assert stops_at(rule, [None], 3)  # no figure at all is as bad as it gets
    loss = PruneRule("val_loss", running=False, higher=False, bar=(1.0, 0.5))
    assert stops_at(loss, [1.2], 3) and not stops_at(loss, [0.9], 3)
    warm = PruneRule("val_acc", running=False, higher=True, bar=(0.5, 0.6, 0.875), warmup=1)
    assert not stops_at(warm, [0.1], 3) and stops_at(warm, [0.1, 0.2], 3)  # the warm-up epoch always runs
    best = PruneRule("val_acc", running=True, higher=True)
    assert best.curve([0.5, 0.4, 0.7, None]) == [0.5, 0.5, 0.7, 0.7]  # best_val_acc: the best so far


def test_pruning_runs_quasirandom_trials_in_two_rounds() -> None:
    tune = TuneConfig.model_validate({"train.lr": LR, "trials": 6, "prune": "median"})
    assert rounds(tune) == [[0, 1], [2, 3, 4, 5]]
    assert rounds(TuneConfig.model_validate({"train.lr": LR, "trials": 6})) == [[0, 1, 2, 3, 4, 5]]
    assert rounds(TuneConfig.model_validate({"train.lr": LR, "trials": 2, "prune": "median"})) == [[0, 1]]
    with pytest.raises(ValueError, match="prune"):
        TuneConfig.model_validate({"train.lr": LR, "prune": "hyperband"})


def _pruned_study(sampler: str = "quasirandom") -> dict[str, Any]:
    """SGD without momentum on the embedded digits, lr from 1e-4 (learns nothing in 4 epochs) to 1: the first
    round's two trials set a bar the slow later trials fall below after their first epoch."""
    return {
        "study": {"name": "pruned"},
        "data": {"name": "digits", "batch_size": 64, "val_fraction": 0.2},
        "model": {"name": "mlp", "hidden": [32]},
        "train": {"epochs": 4, "threads": 1, "device": "cpu", "momentum": 0.0, "checkpoint": True},
        "measure": {"latency_repeats": 2, "throughput_time_s": 0.001, "infer_limit": 4, "mfu": False},
        "tune": {"train.lr": {"low": 1e-4, "high": 1.0, "log": True}, "trials": 6, "prune": "median",
                 "sampler": sampler},
        "variant": [{"name": "sgd"}],
    }  # fmt: skip


@pytest.mark.parametrize("sampler", ["quasirandom", "tpe"])
def test_a_trial_worse_than_the_median_stops_and_is_never_chosen(tmp_path: Path, sampler: str) -> None:
    result = run(_pruned_study(sampler), out=tmp_path, executor="inline", write_report=False)
    trials = sorted(result.trials, key=lambda t: t.trial)
    assert len(trials) == 6 and all(t.status == "done" for t in trials)  # pruned trials count against the budget
    pruned = [t for t in trials if t.results.get("pruned_epoch") is not None]
    assert pruned, [(t.tuned, t.results.get("prune_curve")) for t in trials]
    assert all(t.trial >= 2 for t in pruned)  # the first round has no bar to fall below
    for t in pruned:
        stop = t.results["pruned_epoch"]
        assert 1 <= stop < 4 and t.results["epochs"] == stop and len(t.results["prune_curve"]) == stop
    for t in trials[:2]:
        assert t.results["pruned_epoch"] is None and len(t.results["prune_curve"]) == 4
    (r,) = result.records
    chosen = next(t for t in trials if t.tuned == r.tuned)
    assert chosen.results["pruned_epoch"] is None  # only a complete trial is ever chosen
    again = run(_pruned_study(sampler), out=tmp_path, executor="inline", write_report=False)  # resume: nothing new
    assert [t.finished_at for t in sorted(again.trials, key=lambda t: t.trial)] == [t.finished_at for t in trials]


def test_the_report_counts_pruned_trials_apart(tmp_path: Path) -> None:
    run(_pruned_study(), out=tmp_path, executor="inline")
    from trainlab.report.study import StudyView
    from trainlab.report.tuning import tuning

    t = tuning(StudyView.load(tmp_path))
    assert t is not None
    (v,) = t.variants
    n = sum(r.pruned_at is not None for r in v.trials)
    assert n and v.counts_text == f"{6 - n} done, {n} pruned"
    page = (tmp_path / "report.html").read_text()
    assert "pruned" in (tmp_path / "report.md").read_text() and "A pruned trial stopped early" in page
    assert page.count('<span class="status pruned">pruned</span>') == n and "worse than its median" in page
