"""Crash safety: kill or interrupt a running study (or its run's process), run the same command again.

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

import pytest
from helpers import tiny_study, to_toml

from trainlab.api import run
from trainlab.store import Store

STUDY = to_toml(
    tiny_study(
        study={"name": "crash"},
        model={"name": "helpers:SleepyNet", "sleep_ms": 25.0},  # a known cost per batch: the cut lands mid-run
        train={"epochs": 4, "seed": 5, "deterministic": True},
        measure={
            "infer_limit": 4,
            "latency_repeats": 3,
            "throughput_batch": 4,
            "throughput_time_s": 0.01,
            "mfu": False,
        },
        sweep={"train.lr": [0.05, 0.1]},
    )
)


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


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> tuple[Path, Path]:
    """The study file and the store of its uninterrupted run (in this process: same seed, one thread,
    deterministic, so the same numbers as any resumed run)."""
    folder = tmp_path_factory.mktemp("crash")
    study = folder / "crash.toml"
    study.write_text(STUDY)
    ref = run(study, out=folder / "ref", isolate=False, write_report=False)
    assert ref.exit_code == 0
    return study, folder / "ref" / "trainlab.db"


def _run_process(driver_pid: int) -> int:
    """The pid of the driver's run process (its spawned child)."""
    for _ in range(200):
        children = Path(f"/proc/{driver_pid}/task/{driver_pid}/children").read_text().split()
        for pid in children:
            if "spawn_main" in Path(f"/proc/{pid}/cmdline").read_text():  # not the resource tracker
                return int(pid)
        time.sleep(0.05)
    raise AssertionError("the driver has no run process")


# How the study is interrupted: the whole process group killed (a machine or a terminal gone), Ctrl-C in the
# terminal (SIGINT to the group), SIGTERM to the driver (a scheduler's stop), and the run's process alone killed
# (the kernel's out-of-memory killer): the exit code each should give.
CUTS = {
    "sigkill group": (signal.SIGKILL, "group", -signal.SIGKILL),
    "ctrl-c": (signal.SIGINT, "group", 130),
    "sigterm driver": (signal.SIGTERM, "driver", -signal.SIGTERM),
    "sigkill run": (signal.SIGKILL, "run", 1),
}


@pytest.mark.parametrize("cut", list(CUTS))
def test_interrupted_then_resumed_matches_an_uninterrupted_study(reference, tmp_path, cut):
    study, ref_db = reference
    sig, target, code = CUTS[cut]
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
    if target == "group":
        os.killpg(proc.pid, sig)  # the whole process group: the study and its run process
    else:
        os.kill(proc.pid if target == "driver" else _run_process(proc.pid), sig)
    assert proc.wait(timeout=60) == code
    stderr = proc.stderr.read().decode()
    assert "Traceback" not in stderr, stderr  # neither the driver's nor multiprocessing's

    store = Store(out / "trainlab.db")
    first, second = store.runs()
    assert first.status == "done" and second.status == ("failed" if target == "run" else "running")
    done_epochs = len(store.epochs(second.run_id))
    assert 2 <= done_epochs < 4
    first_finished = first.finished_at

    again = _cli(study, out)
    assert again.wait(timeout=300) == 0, again.stderr.read().decode()
    first, second = store.runs()
    assert first.finished_at == first_finished  # not re-run
    assert second.status == "done"
    resumed_from = second.results["resumed_from_epoch"]
    assert resumed_from is not None and resumed_from >= 2

    ref_store = Store(ref_db)
    for got, want in zip(store.runs(), ref_store.runs()):
        assert got.run_id == want.run_id
        got_e, want_e = store.epochs(got.run_id), ref_store.epochs(want.run_id)
        assert [[e[k] for k in KEYS] for e in got_e] == [[e[k] for k in KEYS] for e in want_e]
        assert got.results["test_acc"] == want.results["test_acc"]
