"""Crash safety: SIGKILL a running study, run the same command again.

Finished runs are not re-run; the interrupted run resumes from its last completed epoch and, on CPU with
deterministic = true, ends with metrics identical to an uninterrupted run.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from trainlab.api import run
from trainlab.store import Store

STUDY = """
[study]
name = "crash"
[data]
name = "synthetic"
shape = [1, 8, 8]
num_classes = 3
train_size = 96
test_size = 32
batch_size = 16
[model]
name = "helpers:SleepyNet"
sleep_ms = 25.0
[train]
epochs = 4
lr = 0.05
momentum = 0.9
seed = 5
device = "cpu"
threads = 1
deterministic = true
[measure]
infer_limit = 4
latency_repeats = 3
latency_warmup = 1
throughput_batch = 4
throughput_time_s = 0.01
mfu = false
[sweep]
"train.lr" = [0.05, 0.1]
"""

KEYS = ("train_loss", "train_acc", "test_loss", "test_acc")


def _cli(study: Path, out: Path) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).parent))  # so runs can import helpers:SleepyNet
    return subprocess.Popen(
        [sys.executable, "-m", "trainlab", "run", str(study), "--out", str(out), "--quiet"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def _state(db: Path) -> tuple[list[str], int]:
    """Statuses in plan order and the number of epochs of the second run, read without locking the writer."""
    try:
        con = sqlite3.connect(db, timeout=1)
        rows = con.execute("SELECT run_id, status FROM runs ORDER BY rowid").fetchall()
        second = rows[1][0] if len(rows) > 1 else ""
        n = con.execute("SELECT COUNT(*) FROM epochs WHERE run_id = ?", (second,)).fetchone()[0]
        con.close()
        return [s for _, s in rows], n
    except sqlite3.Error:
        return [], 0


def test_sigkill_then_resume_matches_an_uninterrupted_study(tmp_path):
    study = tmp_path / "crash.toml"
    study.write_text(STUDY)

    # The uninterrupted reference runs in this process (same seed, one thread, deterministic: same numbers).
    ref = run(study, out=tmp_path / "ref", isolate=False, write_report=False)
    assert ref.exit_code == 0

    out = tmp_path / "cut"
    proc = _cli(study, out)
    deadline = time.time() + 240
    while time.time() < deadline:
        statuses, second_epochs = _state(out / "trainlab.db")
        if statuses[:1] == ["done"] and second_epochs >= 2:
            break
        time.sleep(0.05)
    else:
        proc.kill()
        raise AssertionError("the study never reached the second run's second epoch")
    os.killpg(proc.pid, signal.SIGKILL)  # the whole process group: the study and its run process
    proc.wait(timeout=30)

    store = Store(out / "trainlab.db")
    first, second = store.runs()
    assert first["status"] == "done" and second["status"] == "running"
    done_epochs = len(store.epochs(second["run_id"]))
    assert 2 <= done_epochs < 4
    first_finished = first["finished_at"]

    again = _cli(study, out)
    assert again.wait(timeout=300) == 0, again.stderr.read().decode()
    first, second = store.runs()
    assert first["finished_at"] == first_finished  # not re-run
    assert second["status"] == "done"
    resumed_from = second["results"]["resumed_from_epoch"]
    assert resumed_from is not None and resumed_from >= 2

    ref_store = Store(tmp_path / "ref" / "trainlab.db")
    for got, want in zip(store.runs(), ref_store.runs()):
        assert got["run_id"] == want["run_id"]
        got_e, want_e = store.epochs(got["run_id"]), ref_store.epochs(want["run_id"])
        assert [[e[k] for k in KEYS] for e in got_e] == [[e[k] for k in KEYS] for e in want_e]
        assert got["results"]["test_acc"] == want["results"]["test_acc"]
