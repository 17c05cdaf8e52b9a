"""What keeps a run's fixed cost low without changing a figure: workers started before the driver imports torch
(``engine.pool``), a model's profile counted once per architecture (``ProfileCache``), the report's figures
drawn side by side in forked copies (``report.lanes``), and the command's quick exit."""

from __future__ import annotations

import multiprocessing as mp
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers import tiny_study
from torch import nn

from trainlab.api import run
from trainlab.engine import pool
from trainlab.errors import ConfigError
from trainlab.measure.complexity import profile_model
from trainlab.measure.load import usable_cpus
from trainlab.measure.profile_cache import ProfileCache
from trainlab.report.lanes import side_by_side
from trainlab.report.plots import all_plots
from trainlab.report.study import StudyView
from trainlab.report.tables import class_tables

QUICK = {"infer_limit": 4, "latency_repeats": 3, "throughput_batch": 4, "throughput_time_s": 0.01, "mfu": False}
REPO = Path(__file__).resolve().parents[1]


# ---- workers started ahead of need ----------------------------------------------------------------------------


def test_the_pool_module_imports_no_torch() -> None:
    """The command line starts its first worker before it imports torch: the module it uses must not pull it in."""
    code = "import sys, trainlab.engine.pool, trainlab.cli; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.strip() == "False"


def test_a_prestarted_worker_runs_the_study(tmp_path):
    (slot,) = pool.plan_slots(1, usable_cpus())
    pool.prestart([slot])
    waiting = [w.proc.pid for w in pool._WARM]
    assert len(waiting) == 1
    result = run(tiny_study(measure=QUICK), out=tmp_path / "out", write_report=False)
    (record,) = result.records
    assert record.status == "done"
    assert record.env["pid"] == waiting[0] and record.env["process_run"] == 1  # the pre-started one, warm
    assert not pool._WARM


def test_workers_nobody_takes_are_stopped(tmp_path):
    """A study that fails its checks after its workers were started leaves none behind."""
    study = tiny_study(measure=QUICK)
    study["data"].update(task="regression", shape=[8])  # with the default cross-entropy loss: refused by the preflight
    with pytest.raises(ConfigError, match="classification"):
        run(study, out=tmp_path / "out", write_report=False)
    assert not pool._WARM
    assert not [p for p in mp.active_children() if p.name.startswith("trainlab-worker")]
    pool.prestart(pool.plan_slots(1, usable_cpus()))
    procs = [w.proc for w in pool._WARM]
    pool.discard()
    assert not pool._WARM and all(not p.is_alive() for p in procs)


def test_prestart_for_the_command_line_skips_what_it_cannot_plan_without_torch() -> None:
    for jobs in ("auto", "x", "0", str(len(usable_cpus()) + 1)):
        pool.prestart_for_command(jobs)
        assert not pool._WARM, jobs


def test_the_command_exits_quickly_with_its_code(tmp_path):
    """``trainlab`` ends without Python's teardown, but with its exit code and everything it printed."""
    exe = Path(sys.executable).parent / "trainlab"
    bad = subprocess.run([str(exe), "run", str(tmp_path / "missing.toml")], capture_output=True, text=True)
    assert bad.returncode == 2 and "study file not found" in bad.stderr
    study = tmp_path / "s.toml"
    study.write_text(
        '[study]\nname = "s"\n[data]\nname = "synthetic"\nshape = [1, 8, 8]\nnum_classes = 3\ntrain_size = 32\n'
        'test_size = 16\nbatch_size = 16\n[model]\nname = "mlp"\nhidden = [8]\n[train]\nepochs = 1\nthreads = 1\n'
        "[measure]\ninfer_limit = 4\nlatency_repeats = 3\nthroughput_time_s = 0.01\nmfu = false\n"
    )
    ok = subprocess.run([str(exe), "run", str(study), "--out", str(tmp_path / "out"), "-q"], capture_output=True,
                        text=True, timeout=300)  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert "1 runs, 0 failed" in ok.stdout and (tmp_path / "out" / "report.html").is_file()


# ---- a profile per architecture ----------------------------------------------------------------------------


def _net(width: int = 16) -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(12, width), nn.ReLU(), nn.Linear(width, 3))


def test_a_profile_is_reused_for_another_instance_of_the_same_model() -> None:
    cache = ProfileCache()
    torch.manual_seed(0)
    first = cache.profile("mlp16", _net(), (12,), 3, optimizer="sgd")
    torch.manual_seed(1)
    second_model = _net()
    with torch.no_grad():
        second_model[1].weight[:4].zero_()  # dead units: fewer non-zero gradients than a fresh instance
        second_model[1].bias[:4] = -1.0
    second = cache.profile("mlp16", second_model, (12,), 3, optimizer="adam")
    assert cache.hits == 1
    fresh = profile_model(second_model, (12,), 3, optimizer="adam")
    assert second == fresh  # every figure as if counted afresh, the instance's own nonzero_grads included
    assert second.nonzero_grads < first.nonzero_grads and second.optimizer == "adam"
    wider = cache.profile("mlp16", _net(32), (12,), 3, optimizer="sgd")  # same key, another architecture
    assert cache.hits == 1 and wider.params > first.params
    cache.profile("mlp16", _net(), (2, 6), 3)  # another input shape (the same 12 values): counted again
    assert cache.hits == 1


# ---- the report's figures side by side -------------------------------------------------------------------------


def _square(x: int) -> int:
    return x * x


def test_side_by_side_keeps_order_and_recomputes_what_a_copy_could_not() -> None:
    parent = os.getpid()

    def dies_in_a_copy() -> str:
        if os.getpid() != parent:
            os._exit(3)  # a crash in the forked copy
        return "here"

    def fails_in_a_copy() -> str:
        if os.getpid() != parent:
            raise RuntimeError("only in the copy")
        return "recomputed"

    tasks = [lambda i=i: _square(i) for i in range(5)] + [dies_in_a_copy, fails_in_a_copy]
    assert side_by_side(tasks, lanes=3) == [0, 1, 4, 9, 16, "here", "recomputed"]
    assert side_by_side(tasks, lanes=1) == [0, 1, 4, 9, 16, "here", "recomputed"]

    def always_fails() -> None:
        raise ValueError("a bug in a figure")

    with pytest.raises(ValueError, match="a bug in a figure"):  # surfaces here, with its own traceback
        side_by_side([lambda: 1, always_fails], lanes=2)


def test_figures_drawn_side_by_side_are_the_same_pixels(tmp_path):
    study = tiny_study(measure=QUICK, sweep={"model.hidden": [[8], [16]]})
    run(study, out=tmp_path / "out", write_report=False, executor="inline")
    view = StudyView.load(tmp_path / "out")
    classes = class_tables(view)
    serial, parallel = all_plots(view, classes, lanes=1), all_plots(view, classes, lanes=2)
    assert [p.name for p in serial.every] == [p.name for p in parallel.every]
    assert len(serial.every) >= 3
    assert [p.png for p in serial.every] == [p.png for p in parallel.every]
