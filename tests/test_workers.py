"""The default executor's warm workers: reused across runs, replaced when a run kills its worker, each run's
peak memory its own, runs side by side pinned to their own CPUs (``--jobs``), and torch's global settings put
back between runs."""

from __future__ import annotations

import multiprocessing as mp
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from helpers import assert_user_error, tiny_study

from trainlab.api import run
from trainlab.engine.executors import SubprocessExecutor, plan_slots
from trainlab.engine.worker import GlobalState
from trainlab.errors import ConfigError

QUICK = {"infer_limit": 4, "latency_repeats": 3, "throughput_batch": 4, "throughput_time_s": 0.01, "mfu": False}


def _pids(result) -> list[tuple[int, int]]:
    """(pid, the how-many-th run of its process) of each run, in plan order."""
    return [(r.env.get("pid"), r.env.get("process_run")) for r in result.records]


def test_a_worker_is_reused_and_a_killed_one_replaced(tmp_path):
    study = tiny_study(
        model={"name": "helpers:KilledNet"},
        measure=QUICK,
        variant=[
            {"name": "a"},
            {"name": "killed", "model.die": True},
            {"name": "c", "train.seed": 4},
            {"name": "d", "train.seed": 5},
        ],
    )
    result = run(study, out=tmp_path / "out", write_report=False)
    status = {r.variant: r.status for r in result.records}
    assert status == {"a": "done", "killed": "failed", "c": "done", "d": "done"}
    killed = next(r for r in result.records if r.variant == "killed")
    assert "SIGKILL" in (killed.error or "")
    env = {r.variant: (r.env.get("pid"), r.env.get("process_run")) for r in result.records if r.status == "done"}
    assert env["a"][1] == 1
    assert env["c"] == (env["c"][0], 1) and env["c"][0] != env["a"][0]  # the next run: a fresh worker
    assert env["d"] == (env["c"][0], 2)  # ... which is then reused


def test_a_killed_run_resumes_from_its_last_epoch(tmp_path):
    """Killed in its third epoch (the 14th training batch of 6 an epoch; the count restarts in a new process):
    recorded as failed; the same study again resumes it from epoch 2 on a fresh worker, and it finishes."""
    study = tiny_study(model={"name": "helpers:KilledNet", "die": True, "die_at": 14}, measure=QUICK)
    study["train"].update(epochs=3)
    first = run(study, out=tmp_path / "out", write_report=False)
    assert [r.status for r in first.records] == ["failed"]
    again = run(study, out=tmp_path / "out", write_report=False)
    assert [r.status for r in again.records] == ["done"]
    assert again.records[0].results["resumed_from_epoch"] == 2
    assert again.records[0].results["epochs"] == 3


def test_peak_memory_of_a_second_run_in_a_reused_worker_is_its_own(tmp_path):
    """A first run that holds ~200 MiB in chunks the allocator keeps (16 MiB each, under the raised mmap
    threshold) must not raise the peak or the baseline of the small run that follows it in the same worker."""
    sweep = {"model.mb": [192, 0]}
    reused = run(
        tiny_study(model={"name": "helpers:HungryNet"}, measure=QUICK, sweep=sweep), out=tmp_path / "r",
        write_report=False, executor=SubprocessExecutor(1),
    )  # fmt: skip
    big, small = reused.records
    assert small.env.get("pid") == big.env.get("pid") and small.env.get("process_run") == 2
    fresh = run(
        tiny_study(model={"name": "helpers:HungryNet", "mb": 0}, measure=QUICK), out=tmp_path / "f",
        write_report=False,
    )  # fmt: skip
    alone = fresh.records[0]
    assert big.results["peak_mem_net_mb"] > 150
    assert small.results["peak_mem_mb"] < big.results["peak_mem_mb"] - 120
    assert abs(small.results["mem_baseline_mb"] - alone.results["mem_baseline_mb"]) < 60
    assert abs(small.results["peak_mem_mb"] - alone.results["peak_mem_mb"]) < 60


def test_runs_per_worker_one_gives_every_run_a_fresh_process(tmp_path):
    study = tiny_study(measure=QUICK, sweep={"train.seed": [1, 2]})
    result = run(study, out=tmp_path / "out", write_report=False, executor=SubprocessExecutor(runs_per_worker=1))
    (p1, n1), (p2, n2) = _pids(result)
    assert p1 != p2 and n1 == n2 == 1


def test_global_settings_are_put_back_after_a_run() -> None:
    before = (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled(), torch.get_default_dtype())
    state = GlobalState.capture()
    try:
        torch.set_num_threads(1 if before[0] != 1 else 2)
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.set_default_dtype(torch.float64)
        torch.backends.cudnn.benchmark = not state.cudnn_benchmark
    finally:
        state.restore()
    assert (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled(), torch.get_default_dtype()) == before
    assert torch.backends.cudnn.benchmark == state.cudnn_benchmark


def test_slots_share_out_the_cpus() -> None:
    assert [s.cpus for s in plan_slots(1, [0, 1, 2, 3])] == [None]  # one run at a time: not pinned
    assert [s.cpus for s in plan_slots(2, [0, 1, 2, 3, 4])] == [(0, 1), (2, 3)]
    assert [s.gpu for s in plan_slots(3, [0, 1, 2], ["0", "1"])] == ["0", "1", "0"]
    with pytest.raises(ConfigError, match="--jobs 3 is more runs side by side than the 2 CPUs"):
        plan_slots(3, [0, 1])


def test_jobs_needs_the_subprocess_executor(tmp_path):
    with pytest.raises(ConfigError, match="--jobs runs side by side in worker processes"):
        run(tiny_study(), out=tmp_path / "out", executor="inline", jobs=2, write_report=False)
    with pytest.raises(ConfigError, match="'auto'"):
        run(tiny_study(), out=tmp_path / "out", jobs="many", write_report=False)


def test_cli_refuses_a_wrong_jobs_value(tmp_path):
    study = tmp_path / "s.toml"
    study.write_text('[data]\nname = "digits"\n[model]\nname = "mlp"\n')
    proc = subprocess.run(
        [sys.executable, "-m", "trainlab", "run", str(study), "--jobs", "0", "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
    )
    assert_user_error(proc.returncode, proc.stderr, "--jobs")


def _spin(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs 2 CPUs")
def test_jobs_pin_runs_and_a_busy_core_marks_only_its_runs(tmp_path):
    """Two runs side by side, each on its own CPU; a busy loop on the first CPU competes with the runs there
    only: their epochs are marked busy, the other CPU's are not."""
    cpus = sorted(os.sched_getaffinity(0))[:2]
    study = tiny_study(
        data={"train_size": 2400, "test_size": 32, "batch_size": 32},
        model={"name": "mlp", "hidden": [256, 256]},
        train={"epochs": 2},
        measure=QUICK,
        sweep={"train.seed": [1, 2, 3, 4]},
    )
    ctx = mp.get_context("spawn")
    spinner = ctx.Process(target=_spin, args=(120.0,), daemon=True)
    spinner.start()
    os.sched_setaffinity(spinner.pid, [cpus[0]])
    # The driver (this process) shares the busy CPU too: its own work between epochs (events, the store) is
    # other work as well, and on the quiet CPU it could mark a run there busy.
    mine = os.sched_getaffinity(0)
    os.sched_setaffinity(0, [cpus[0]])
    try:
        result = run(study, out=tmp_path / "out", write_report=False, executor=SubprocessExecutor(2, cpus=cpus))
    finally:
        os.sched_setaffinity(0, mine)
        spinner.terminate()
        spinner.join()
    assert all(r.status == "done" for r in result.records)
    by_cpu: dict[str, list[int]] = {}
    for r in result.records:
        assert r.results["threads"] == 1
        by_cpu.setdefault(r.env["cpu_set"], []).append(r.results["busy_epochs"])
    assert set(by_cpu) == {str(cpus[0]), str(cpus[1])}, by_cpu
    assert all(b == 2 for b in by_cpu[str(cpus[0])]), by_cpu  # every epoch next to the busy loop: busy
    assert all(b == 0 for b in by_cpu[str(cpus[1])]), by_cpu


def test_the_progress_display_follows_runs_side_by_side(tmp_path):
    from io import StringIO

    from rich.console import Console

    from trainlab.engine.progress import RichReporter

    console = Console(file=StringIO(), width=160)
    result = run(
        tiny_study(measure=QUICK, sweep={"train.seed": [1, 2, 3]}), out=tmp_path / "out", write_report=False,
        reporter=RichReporter(console), jobs=2 if len(os.sched_getaffinity(0)) >= 2 else 1,
    )  # fmt: skip
    text = console.file.getvalue()
    for seed in (1, 2, 3):
        assert f"seed={seed} epoch 2/2" in text
    assert "results" in text and all(r.status == "done" for r in result.records)


def test_a_study_beside_its_own_module_runs_in_workers(tmp_path):
    """A user model beside the study file is imported by each worker (the study's folder, by path)."""
    from helpers import user_net_source

    (tmp_path / "mynets.py").write_text(user_net_source())
    study = tiny_study(model={"name": "mynets:TinyNet", "width": 4}, measure=QUICK, sweep={"train.seed": [1, 2]})
    study_file = tmp_path / "s.toml"
    from helpers import to_toml

    study_file.write_text(to_toml(study))
    result = run(Path(study_file), out=tmp_path / "out", write_report=False)
    assert [r.status for r in result.records] == ["done", "done"]
    assert result.records[1].env.get("process_run") == 2


def test_a_study_in_rounds_keeps_its_workers_from_round_to_round(tmp_path):
    """A TPE-tuned study runs one round per trial after its first, then the study's runs: every round runs on
    the same warm worker (it is not started again each round), and the worker is stopped once the study ends."""
    study = tiny_study(
        data={"val_fraction": 0.25},
        measure=QUICK,
        tune={"train.lr": {"low": 0.01, "high": 0.5, "log": True}, "trials": 4, "sampler": "tpe"},
        repeats=2,
    )
    executor = SubprocessExecutor(1)
    result = run(study, out=tmp_path / "out", write_report=False, executor=executor)
    runs = sorted([*result.trials, *result.records], key=lambda r: r.started_at or "")
    assert len(result.trials) == 4 and len(result.records) == 2
    assert {r.env.get("pid") for r in runs} == {runs[0].env.get("pid")}  # one process for every round
    assert sorted(r.env.get("process_run") for r in runs) == list(range(1, 7))
    assert executor._workers == {}  # closed: nothing idle is left behind
    with pytest.raises(ProcessLookupError):
        os.kill(runs[0].env["pid"], 0)
