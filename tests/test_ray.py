"""The Ray executor against a real Ray cluster started here on 127.0.0.1: a head (no CPUs: it schedules) and
two one-CPU worker nodes. Same metrics as the subprocess executor; a killed worker process mid-run ends with
the run complete and its epochs recorded once; Ctrl-C leaves a consistent store and a rerun completes."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from helpers import tiny_study

# Ray on one machine: every node and the driver on the loopback address (Ray otherwise resolves 127.0.0.1 to
# the machine's outward address). Set before Ray is imported; inherited by the nodes and the CLI under test.
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
import ray
from ray.cluster_utils import Cluster

from trainlab.api import run
from trainlab.engine.runner import make_executor
from trainlab.errors import ConfigError
from trainlab.store import Store

KEYS = ("epoch", "train_loss", "train_acc", "test_loss", "test_acc")
LOCAL = {"node_ip_address": "127.0.0.1", "include_dashboard": False}


@pytest.fixture(scope="module")
def cluster():
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, **LOCAL})
    for _ in range(2):
        c.add_node(num_cpus=1, **LOCAL)
    ray.init(address=c.address, include_dashboard=False, log_to_driver=False)
    yield c
    ray.shutdown()
    c.shutdown()


def _epochs(out: Path) -> dict[str, list[list]]:
    store = Store(out / "trainlab.db")
    return {r.variant: [[e[k] for k in KEYS] for e in store.epochs(r.run_id)] for r in store.runs()}


def test_four_runs_give_the_subprocess_executors_metrics(cluster, tmp_path: Path) -> None:
    study = tiny_study(sweep={"train.lr": [0.05, 0.1], "train.seed": [1, 2]}, train={"deterministic": True})
    on_ray = run(study, out=tmp_path / "ray", executor="ray", write_report=False)
    assert [r.status for r in on_ray.records] == ["done"] * 4, [r.error for r in on_ray.records]
    local = run(study, out=tmp_path / "local", executor="subprocess", write_report=False)
    assert _epochs(tmp_path / "ray") == _epochs(tmp_path / "local")
    assert all(len(e) == 2 for e in _epochs(tmp_path / "ray").values())
    # the trained weights are where deployment looks for them
    assert all((tmp_path / "ray" / "checkpoints" / f"{r.run_id}.model.pt").is_file() for r in local.records)


def test_a_tuned_study_runs_its_trials_as_ray_tasks_with_the_test_split_sealed(cluster, tmp_path: Path) -> None:
    study = tiny_study(
        data={"val_fraction": 0.25},
        train={"deterministic": True},
        tune={"train.lr": {"low": 0.01, "high": 0.5, "log": True}, "trials": 2},
        variant=[{"name": "sgd"}, {"name": "adam", "train.optimizer": "adam", "train.momentum": 0.0}],
    )
    on_ray = run(study, out=tmp_path / "ray", executor="ray", write_report=False)
    inline = run(study, out=tmp_path / "inline", executor="inline", write_report=False)
    assert [t.status for t in on_ray.trials] == ["done"] * 4, [t.error for t in on_ray.trials]
    assert all(t.figure("test_acc") is None and t.figure("val_acc") is not None for t in on_ray.trials)
    # the same trials, the same figures, the same choice as in this process
    assert [(t.tuned, t.figure("val_acc")) for t in on_ray.trials] == [(t.tuned, t.figure("val_acc")) for t in
                                                                      inline.trials]  # fmt: skip
    assert [r.tuned for r in on_ray.records] == [r.tuned for r in inline.records]


SLOW = {  # ~0.3 s per epoch on one thread: time to kill its worker between epochs
    "data": {"train_size": 3000, "shape": [1, 16, 16], "batch_size": 32},
    "model": {"name": "mlp", "hidden": [512, 512]},
    "train": {"epochs": 6, "deterministic": True},
}


def _kill_worker_after(db: Path, epochs: int, killed: list[int]) -> None:
    """Watch the store (as `trainlab report` would) and SIGKILL the run's worker process once it has
    committed ``epochs`` epochs."""
    deadline = time.time() + 120
    while time.time() < deadline and not killed:
        try:
            con = sqlite3.connect(db, timeout=1)
            row = con.execute("SELECT run_id, env FROM runs WHERE status = 'running'").fetchone()
            n = con.execute("SELECT COUNT(*) FROM epochs WHERE run_id = ?", (row[0],)).fetchone()[0] if row else 0
            con.close()
        except sqlite3.Error:
            row, n = None, 0
        if row and row[1] and n >= epochs:
            pid = json.loads(row[1])["pid"]
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
            return
        time.sleep(0.02)


def test_a_killed_worker_resumes_on_a_retry_without_losing_or_repeating_epochs(cluster, tmp_path: Path) -> None:
    study = tiny_study(**SLOW)
    reference = run(study, out=tmp_path / "ref", executor="inline", write_report=False).records[0]
    out = tmp_path / "cut"
    killed: list[int] = []
    (out).mkdir()
    watcher = threading.Thread(target=_kill_worker_after, args=(out / "trainlab.db", 2, killed), daemon=True)
    watcher.start()
    rec = run(study, out=out, executor="ray", write_report=False).records[0]
    watcher.join(timeout=5)
    assert killed, "the run finished before its worker could be killed"
    assert rec.status == "done", rec.error
    assert rec.results["resumed_from_epoch"] >= 2  # continued from its checkpoint on the retry
    got = _epochs(out)["base"]
    assert [e[0] for e in got] == [1, 2, 3, 4, 5, 6]  # each epoch once
    assert got == _epochs(tmp_path / "ref")["base"]
    assert rec.results["test_acc"] == reference.results["test_acc"]


STUDY_TOML = """
[study]
name = "ray_ctrl_c"
[data]
name = "synthetic"
shape = [1, 16, 16]
train_size = 3000
batch_size = 32
[model]
name = "mlp"
hidden = [512, 512]
[train]
epochs = 4
seed = 1
threads = 1
device = "cpu"
deterministic = true
[measure]
latency_repeats = 5
throughput_time_s = 0.02
infer_limit = 16
mfu = false
[sweep]
"train.lr" = [0.05, 0.1, 0.2]
"""


def _cli(study: Path, out: Path, address: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "trainlab", "run", str(study), "--executor", "ray", "--address", address,
           "--quiet", "--out", str(out)]  # fmt: skip
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_ctrl_c_leaves_a_consistent_store_and_a_rerun_completes(cluster, tmp_path: Path) -> None:
    study = tmp_path / "study.toml"
    study.write_text(STUDY_TOML)
    out = tmp_path / "out"
    proc = _cli(study, out, cluster.address)
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            con = sqlite3.connect(out / "trainlab.db", timeout=1)
            n = con.execute("SELECT COUNT(*) FROM epochs").fetchone()[0]
            con.close()
        except sqlite3.Error:
            n = 0
        if n >= 1:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    store = Store(out / "trainlab.db")
    for r in store.runs():
        assert r.status in ("pending", "running", "done"), r
        epochs = [e["epoch"] for e in store.epochs(r.run_id)]
        assert epochs == list(range(1, len(epochs) + 1))  # whole rows, in order, none half-written
    again = _cli(study, out, cluster.address)
    _, err = again.communicate(timeout=240)
    assert again.returncode == 0, err
    runs = store.runs()
    assert [r.status for r in runs] == ["done"] * 3
    assert all([e["epoch"] for e in store.epochs(r.run_id)] == [1, 2, 3, 4] for r in runs)


def test_without_ray_the_executor_names_the_extra(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    with pytest.raises(ConfigError, match=r"trainlab\[ray\]"):
        make_executor("ray", None)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="needs --executor ray"):
        make_executor("subprocess", None, address="127.0.0.1:6379")  # type: ignore[arg-type]


def test_a_ray_task_puts_global_settings_back_for_the_next_task_in_its_process(tmp_path) -> None:
    # Ray reuses a worker process for the next task: the task function itself restores what a run changed
    # (here train.deterministic and train.threads), as the subprocess executor's workers do. Called directly:
    # the function is what runs inside the Ray worker.
    import torch
    from helpers import tiny_study

    from trainlab.engine.executors import RunJob
    from trainlab.engine.ray_executor import _run_task
    from trainlab.study import load_study

    class Sent(list):  # the driver's queue actor, as the task sees it
        def put(self, item) -> None:
            self.append(item)

    before = (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled())
    spec = tiny_study(train={"epochs": 1, "deterministic": True, "threads": 1 if before[0] != 1 else 2})
    (run_spec,) = load_study(spec).runs
    job = RunJob(run_spec, 1, 1, tmp_path / "ckpt.pt", tmp_path / "weights.pt")
    sent = Sent()
    outcome = _run_task(job, sent)
    assert outcome.status == "done" and sent
    assert (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()) == before
