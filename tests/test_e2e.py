"""End to end: a study on digits through the CLI (each run in its own process), failures that do not stop a
study, and the real MNIST where accuracy matters."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

from helpers import tiny_study

from trainlab.api import run

REPO = Path(__file__).resolve().parent.parent


def test_cli_study_on_digits_in_child_processes(tmp_path):
    study = tmp_path / "digits.toml"
    study.write_text(
        """
[study]
name = "digits_e2e"
baseline = "logreg"
[data]
name = "digits"
batch_size = 64
normalize = true
[train]
epochs = 3
lr = 0.1
momentum = 0.9
threads = 1
target_accuracy = 0.5
[measure]
latency_repeats = 5
throughput_time_s = 0.05
[[variant]]
name = "logreg"
[[variant]]
name = "mlp"
"model.name" = "mlp"
"model.hidden" = [32]
"""
    )
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "trainlab", "run", str(study), "--out", str(out), "--quiet"],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr
    for name in ("trainlab.db", "results.csv", "epochs.csv", "report.md", "report.html"):
        assert (out / name).is_file(), name
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert [r["variant"] for r in rows] == ["logreg", "mlp"]
    for r in rows:
        assert r["status"] == "done"
        assert float(r["test_acc"]) > 0.85  # digits is easy: 3 epochs are plenty
        assert float(r["train_time_s"]) > 0 and float(r["infer_ms_per_image"]) > 0
        assert int(r["epochs_to_target"]) >= 1
        assert int(r["params"]) > 0
    epochs = list(csv.DictReader((out / "epochs.csv").open()))
    assert len(epochs) == 6
    assert any((out / "plots").iterdir())
    # The run's child process starts DataLoader workers as the user's own script would (fork on Linux), not by
    # the "spawn" it was itself started with (that re-imports everything per worker and epoch).
    import multiprocessing

    from trainlab.store import Store

    envs = [r.env for r in Store(out / "trainlab.db").runs()]
    assert [e["mp_start_method"] for e in envs] == [multiprocessing.get_start_method()] * 2

    # The report rebuilds from the store alone, and a second run skips both finished runs.
    (out / "report.html").unlink()
    rep = subprocess.run([sys.executable, "-m", "trainlab", "report", str(out)], capture_output=True, text=True)
    assert rep.returncode == 0, rep.stderr
    assert (out / "report.html").is_file()


def test_diverged_and_crashed_runs_are_recorded_and_the_study_goes_on(tmp_path):
    study = tiny_study(
        variant=[
            {"name": "ok"},
            {"name": "diverges", "train.lr": 1e12, "train.momentum": 0.0},
            {"name": "crashes", "model.name": "helpers:CrashingNet"},
        ]
    )
    result = run(study, out=tmp_path, write_report=False)  # child processes, as in real use
    by_name = {r.variant: r for r in result.records}
    assert by_name["ok"].status == "done"
    assert by_name["diverges"].status == "diverged"
    assert "loss" in by_name["diverges"].error
    assert by_name["crashes"].status == "failed"
    assert "boom" in by_name["crashes"].error and "RuntimeError" in by_name["crashes"].error
    assert "Traceback" in by_name["crashes"].detail
    assert result.exit_code == 1


def test_absent_cuda_is_skipped_not_failed(tmp_path):
    import torch

    if torch.cuda.is_available():
        import pytest

        pytest.skip("this machine has CUDA")
    result = run(tiny_study(train={"device": "cuda"}), out=tmp_path, isolate=False, write_report=False)
    assert result.records[0].status == "skipped"
    assert "CUDA is not available" in result.records[0].error
    assert result.exit_code == 0


def test_mnist_logreg_one_epoch_learns(tmp_path, mnist_root):
    study = {
        "study": {"name": "mnist1"},
        "data": {"name": "mnist", "root": str(mnist_root), "batch_size": 128},
        "model": {"name": "logreg"},
        "train": {"epochs": 1, "lr": 0.01, "momentum": 0.9, "seed": 1},
        "measure": {"infer_limit": 200, "latency_repeats": 10, "throughput_time_s": 0.05},
    }
    result = run(study, out=tmp_path, isolate=False, write_report=False)
    res = result.records[0].results
    assert result.records[0].status == "done", result.records[0].error
    assert res["num_train"] == 60000 and res["num_test"] == 10000
    assert res["test_acc"] > 0.89  # one epoch of the 25-epoch recipe (which reaches > 92%)
    assert res["params"] == 7850 and res["macs"] == 7840
