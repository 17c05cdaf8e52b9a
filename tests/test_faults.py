"""Hostile surroundings (issue 21): files planted beside a study, another run's checkpoint, spreadsheet formulas,
a full disk, a damaged store, read-only media, two drivers on one folder, a study named ``..``.

Each test reproduces the fault as a user or an adversary would meet it and checks what trainlab promises
(docs/promises.md): a message instead of a traceback, nothing lost, and a rerun that completes.
"""

from __future__ import annotations

import csv
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import torch
from helpers import assert_user_error, tiny_study, to_toml

from trainlab.api import run
from trainlab.cli import main
from trainlab.store import Store

KEYS = ("train_loss", "train_acc", "test_loss", "test_acc")


def study_file(folder: Path, name: str = "faults", model: str = "logreg", epochs: int = 2, **model_keys: Any) -> Path:
    """A seconds-long study of two runs (a sweep of train.lr), deterministic, written to ``folder/study.toml``."""
    study = tiny_study(
        study={"name": name},
        model={"name": model, **model_keys},
        train={"epochs": epochs, "momentum": 0.0, "seed": 5, "deterministic": True},
        measure={"mfu": False, "profile": False},
        sweep={"train.lr": [0.05, 0.1]},
    )
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "study.toml"
    path.write_text(to_toml(study))
    return path


def epochs_of(db: Path) -> dict[str, list[list[float]]]:
    store = Store(db, readonly=True)
    return {r.run_id: [[e[k] for k in KEYS] for e in store.epochs(r.run_id)] for r in store.runs()}


def cli(*args: str, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """``trainlab ARGS`` in a fresh interpreter (no tests/ on its path: what a user's shell has)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run(
        [sys.executable, "-m", "trainlab", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


@contextmanager
def tmpfs(path: Path, size: str):
    """A small real filesystem at ``path`` (needs root and mount rights: skipped where they are missing)."""
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


# ---- 1. a file beside the study never runs unless the study names it; a named one never shadows a library ----
PLANT = "import pathlib\npathlib.Path({marker!r}).write_text('planted code ran')\nraise SystemExit('planted')\n"


def test_a_module_planted_beside_the_study_is_never_imported(tmp_path):
    folder = tmp_path / "shared"
    study = study_file(folder)
    marker = tmp_path / "ran.txt"
    for name in ("numpy", "torch", "trainlab", "helpers", "pydantic"):
        (folder / f"{name}.py").write_text(PLANT.format(marker=str(marker)))
    done = cli("run", str(study), "--out", str(tmp_path / "out"), "--quiet", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert not marker.exists()


def test_a_user_model_beside_the_study_loads_from_any_folder_and_in_check(tmp_path):
    folder = tmp_path / "proj"
    study = study_file(folder, model="mymodels:TinyNet")
    (folder / "mymodels.py").write_text(
        "import torch\n"
        "class TinyNet(torch.nn.Module):\n"
        "    def __init__(self, input_shape, num_classes):\n"
        "        super().__init__()\n"
        "        self.fc = torch.nn.Linear(64, num_classes)\n"
        "    def forward(self, x):\n"
        "        return self.fc(x.flatten(1))\n"
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    checked = cli("check", str(study), cwd=elsewhere)
    assert checked.returncode == 0, checked.stderr
    done = cli("run", str(study), "--out", str(tmp_path / "out"), "--quiet", cwd=elsewhere)
    assert done.returncode == 0, done.stderr
    assert [r.status for r in Store(tmp_path / "out" / "trainlab.db", readonly=True).runs()] == ["done"] * 2


def test_a_user_package_beside_the_study_imports_its_own_submodules(tmp_path, capsys):
    folder = tmp_path / "proj"
    study = study_file(folder, model="tl_pkg_models.nets:TinyNet")
    pkg = folder / "tl_pkg_models"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "blocks.py").write_text("import torch\ndef head(n):\n    return torch.nn.Linear(64, n)\n")
    (pkg / "nets.py").write_text(
        "import torch\n"
        "from .blocks import head\n"
        "class TinyNet(torch.nn.Module):\n"
        "    def __init__(self, num_classes):\n"
        "        super().__init__()\n"
        "        self.fc = head(num_classes)\n"
        "    def forward(self, x):\n"
        "        return self.fc(x.flatten(1))\n"
    )
    assert main(["check", str(study)]) == 0, capsys.readouterr().err
    assert main(["profile", str(study)]) == 0, capsys.readouterr().err
    assert "Linear" in capsys.readouterr().out


def test_a_user_model_named_like_a_library_is_refused(tmp_path, capsys):
    folder = tmp_path / "proj"
    study = study_file(folder, model="numpy:Net")
    marker = tmp_path / "ran.txt"
    (folder / "numpy.py").write_text(PLANT.format(marker=str(marker)))
    assert_user_error(main(["check", str(study)]), capsys.readouterr().err, names="installed module 'numpy'")
    assert not marker.exists()


# ---- 2. a checkpoint proves which run it belongs to ----------------------------------------------------------
def test_another_runs_checkpoint_is_refused_and_kept_aside(tmp_path):
    study = study_file(tmp_path, epochs=3)
    ref = run(study, out=tmp_path / "ref", isolate=False, write_report=False)
    out = tmp_path / "out"
    first = run(study, out=out, isolate=False, write_report=False)
    a, b = (r.run_id for r in first.records)
    # The adversary's move: run a's checkpoint copied over run b's, b's record reset so that b runs again.
    shutil.copyfile(out / "checkpoints" / f"{a}.pt", out / "checkpoints" / f"{b}.pt")
    con = sqlite3.connect(out / "trainlab.db")
    with con:
        con.execute("UPDATE runs SET status = 'running' WHERE run_id = ?", (b,))
    con.close()
    again = run(study, out=out, isolate=False, write_report=False)
    rec = {r.run_id: r for r in again.records}[b]
    assert rec.status == "done"
    assert rec.results["resumed_from_epoch"] is None  # started over, not continued from a's epochs
    assert f"belongs to run {a}" in rec.results["checkpoint_rejected"]
    assert (out / "checkpoints" / f"{b}.pt.rejected").is_file()  # set aside, not deleted
    assert epochs_of(out / "trainlab.db") == epochs_of(tmp_path / "ref" / "trainlab.db")
    assert ref.exit_code == 0


def test_a_checkpoint_of_an_older_trainlab_or_garbage_is_not_resumed(tmp_path):
    from trainlab.engine.checkpoint import find_resume, run_identity

    ident = run_identity("abc", {"x": 1})
    path = tmp_path / "abc.pt"
    torch.save({"epoch": 1, "history": [{"epoch": 1}], "model": {}}, path)  # no identity: an older trainlab
    resume, why = find_resume(path, ident)
    assert resume is None and "no run id" in why and (tmp_path / "abc.pt.rejected").is_file()
    path.write_bytes(b"not a checkpoint")
    resume, why = find_resume(path, ident)
    assert resume is None and "unreadable" in why
    torch.save({**run_identity("abc", {"x": 2}), "epoch": 1, "history": [{"epoch": 1}]}, path)
    assert "config hash" in find_resume(path, ident)[1]
    torch.save({**ident, "epoch": 2, "history": [{"epoch": 1}, {"epoch": 1}]}, path)
    assert "epochs 1..n" in find_resume(path, ident)[1]


# ---- 3. a variant name is never a spreadsheet formula -------------------------------------------------------
def test_variant_names_that_look_like_formulas_are_quoted_in_every_csv(tmp_path, tiny):
    names = ["=1+1", "+SUM(A1)", "-2+3", "@cmd", "plain"]
    tiny["variant"] = [{"name": n, "train.lr": 0.05 + i / 100} for i, n in enumerate(names)]
    tiny["train"]["epochs"] = 1
    tiny["measure"]["profile"] = False
    result = run(tiny, out=tmp_path / "out", isolate=False)
    assert result.exit_code == 0
    for name in ("results.csv", "epochs.csv"):
        with open(tmp_path / "out" / name, newline="") as fh:
            cells = [row[1] for row in csv.reader(fh)][1:]
        assert set(cells) == {"'=1+1", "'+SUM(A1)", "'-2+3", "'@cmd", "plain"}, name
    with open(tmp_path / "out" / "results.csv", newline="") as fh:
        row = next(csv.DictReader(fh))
    assert float(row["train.lr"]) == 0.05  # numbers stay numbers (a negative one would too)


# ---- 4. a full disk is a message; the store stays consistent; a rerun completes ------------------------------
def test_disk_full_mid_study_stops_with_a_message_and_a_rerun_completes(tmp_path):
    # A model whose checkpoints weigh something (~270 kB each), so that the disk fills during the runs.
    study = study_file(tmp_path, epochs=3, model="mlp", hidden=[1024])
    assert run(study, out=tmp_path / "ref", isolate=False).exit_code == 0
    needed = sum(f.stat().st_size for f in (tmp_path / "ref").rglob("*") if f.is_file())
    with tmpfs(tmp_path / "disk", f"{int(needed * 0.6) // 1024}k") as disk:
        out = disk / "out"
        done = cli("run", str(study), "--out", str(out), "--quiet")
        assert done.returncode == 1, done.stderr
        assert "Traceback" not in done.stderr
        error = [line for line in done.stderr.splitlines() if line.startswith("error:")]
        assert len(error) == 1 and f"the disk holding {out} is full" in error[0], done.stderr
        assert "run the same command again" in error[0]
        con = sqlite3.connect(out / "trainlab.db")
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        con.close()
        # The user frees space (here: the filesystem grows), then reruns the same command.
        subprocess.run(["mount", "-o", f"remount,size={needed * 3 // 1024}k", str(disk)], check=True)
        assert run(study, out=out, isolate=False).exit_code == 0
        runs = Store(out / "trainlab.db", readonly=True).runs()
        assert [r.status for r in runs] == ["done", "done"]
        assert epochs_of(out / "trainlab.db") == epochs_of(tmp_path / "ref" / "trainlab.db")
        assert (out / "report.html").is_file()


# ---- 5. a damaged store: report says so; run keeps it aside and rebuilds from the checkpoints ----------------
def _garbage_inside(db: Path) -> None:
    data = bytearray(db.read_bytes())
    page = 4096
    for start in range(page, len(data), page):  # every page after the header's: the tables' pages
        data[start : start + page] = os.urandom(page)
    db.write_bytes(bytes(data))


DAMAGE = {
    "truncated": lambda db: db.write_bytes(db.read_bytes()[:1500]),
    "garbage header": lambda db: db.write_bytes(os.urandom(100) + db.read_bytes()[100:]),
    "garbage inside": _garbage_inside,
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_damaged_store_is_kept_aside_and_rebuilt_from_the_checkpoints(tmp_path, capsys, damage):
    study = study_file(tmp_path)
    out = tmp_path / "out"
    assert run(study, out=out, isolate=False).exit_code == 0
    want = epochs_of(out / "trainlab.db")
    db = out / "trainlab.db"
    for suffix in ("-wal", "-shm"):
        Path(str(db) + suffix).unlink(missing_ok=True)
    DAMAGE[damage](db)
    damaged_bytes = db.read_bytes()

    assert_user_error(main(["report", str(out)]), capsys.readouterr().err, names=str(db))

    assert main(["run", str(study), "--out", str(out), "--quiet", "--inline"]) == 0
    err = capsys.readouterr().err
    assert "Traceback" not in err and "damaged" in err and "rebuilt from the checkpoints" in err
    aside = list(out.glob("trainlab.db.damaged-*"))
    assert [p.read_bytes() for p in aside if not p.name.endswith(("-wal", "-shm"))] == [damaged_bytes]
    assert epochs_of(db) == want
    assert [r.status for r in Store(db, readonly=True).runs()] == ["done", "done"]


# ---- 6. reading needs no write access ------------------------------------------------------------------------
def test_report_of_a_study_on_read_only_media(tmp_path, capsys):
    study = study_file(tmp_path)
    assert run(study, out=tmp_path / "out", isolate=False, write_report=False).exit_code == 0
    with tmpfs(tmp_path / "media", "8m") as media:
        shutil.copytree(tmp_path / "out", media / "out")
        subprocess.run(["mount", "-o", "remount,ro", str(media)], check=True)
        assert_user_error(main(["report", str(media / "out")]), capsys.readouterr().err, names="--to")
        assert main(["report", str(media / "out"), "--to", str(tmp_path / "copy")]) == 0
        assert "Traceback" not in capsys.readouterr().err
        assert (tmp_path / "copy" / "report.html").is_file() and (tmp_path / "copy" / "results.csv").is_file()


# ---- 11. two drivers on one folder never train a run twice ---------------------------------------------------
def test_two_drivers_on_one_folder_train_each_run_once(tmp_path):
    import fcntl
    import threading

    study = study_file(tmp_path, epochs=2)
    out = tmp_path / "out"
    out.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    args = [sys.executable, "-m", "trainlab", "run", str(study), "--out", str(out), "--inline"]
    # This test holds the study's lock first (as a driver already running would), so that both drivers below
    # certainly meet a held lock, whatever the machine's timing; then it lets go and they share the study.
    with open(out / ".trainlab.lock", "a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        procs = [subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for _ in range(2)]  # fmt: skip
        errs: list[list[str]] = [[], []]
        readers = [threading.Thread(target=lambda p=p, e=e: e.extend(p.stderr), daemon=True)
                   for p, e in zip(procs, errs)]  # fmt: skip
        for r in readers:
            r.start()
        deadline = time.time() + 120
        while not all(any("waiting for it to end" in line for line in e) for e in errs):
            assert time.time() < deadline and all(p.poll() is None for p in procs), errs
            time.sleep(0.1)
        fcntl.flock(held, fcntl.LOCK_UN)
    stdouts = [p.stdout.read() for p in procs]  # small: a progress line per epoch (stderr has its reader)
    for p, r in zip(procs, readers):
        p.wait(timeout=300)
        r.join(timeout=10)
    assert [p.returncode for p in procs] == [0, 0], (stdouts, errs)
    trained = sum(stdout.count(": train loss") for stdout in stdouts)
    assert trained == 2 * 2  # two runs x two epochs, each trained by one driver only; the other skipped them


# ---- 12. a study's name becomes a safe folder name -----------------------------------------------------------
@pytest.mark.parametrize("name", ["..", ".", "../../etc", ".hidden", "a/b", ""])
def test_a_study_name_never_escapes_runs(tmp_path, name):
    from trainlab.engine.runner import safe_folder_name

    safe = safe_folder_name(name)
    assert safe not in ("", ".", "..") and "/" not in safe and not safe.startswith(".")
    assert (tmp_path / "runs" / safe).resolve().parent == (tmp_path / "runs").resolve()


def test_a_study_named_dot_dot_writes_under_runs(tmp_path):
    study = study_file(tmp_path / "s", name="..", epochs=1)
    done = cli("run", str(study), "--quiet", "--inline", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "trainlab.db").exists() and not (tmp_path / "report.html").exists()
    assert (tmp_path / "runs" / "study" / "trainlab.db").is_file()


# ---- docs/promises.md names only tests that exist ------------------------------------------------------------
def test_every_test_the_promises_page_names_exists():
    import re

    root = Path(__file__).resolve().parent.parent
    text = (root / "docs" / "promises.md").read_text()
    named = re.findall(r"`(tests/[\w/]+\.py)(?:::(\w+))?", text)
    assert len(named) >= 15
    for file, test in named:
        source = (root / file).read_text()
        assert not test or f"def {test}(" in source, f"docs/promises.md names {file}::{test}, which does not exist"
