"""End to end: a tiny study trained with trainlab.run, then its report rebuilt from the store by the CLI."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest

import trainlab
from trainlab.cli import main


@pytest.fixture(scope="module")
def tiny_study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tiny")
    study = {
        "study": {"name": "tiny", "description": "Two small models on synthetic data."},
        "data": {"name": "synthetic", "shape": [1, 8, 8], "num_classes": 3, "train_size": 96, "test_size": 48},
        "model": {"name": "logreg"},
        "train": {"epochs": 3, "lr": 0.1, "target_accuracy": 0.5, "checkpoint": False},
        "measure": {"latency_repeats": 5, "latency_warmup": 1, "throughput_batch": 16, "infer_limit": 16},
        "variant": [{"name": "logreg"}, {"name": "mlp", "model.name": "mlp", "model.hidden": [16]}],
    }
    result = trainlab.run(study, out=out, isolate=False)
    assert {r.status for r in result.records} == {"done"}, [r.error for r in result.records]
    assert result.report_paths.html == out / "report.html"
    return out


def test_run_writes_the_report(tiny_study: Path) -> None:
    page = (tiny_study / "report.html").read_text()
    table = page[page.index('<table id="comparison"') :]
    assert len(re.findall(r"<tr\b", table[table.index("<tbody>") : table.index("</tbody>")])) == 2
    assert 'id="findings"' in page and "<img" in page and "<script" not in page
    with (tiny_study / "results.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["variant"] for r in rows] == ["logreg", "mlp"] and all(float(r["test_acc"]) >= 0 for r in rows)
    with (tiny_study / "epochs.csv").open(newline="") as f:
        assert len(list(csv.DictReader(f))) == 6


def test_cli_rebuilds_from_the_store_without_training(tiny_study: Path, capsys: pytest.CaptureFixture) -> None:
    for name in ("report.html", "report.md", "results.csv"):
        (tiny_study / name).unlink()
    assert main(["report", str(tiny_study), "--format", "html", "--format", "latex"]) == 0
    printed = capsys.readouterr().out
    assert "report.html" in printed and "report.tex" in printed
    assert (tiny_study / "report.html").is_file() and (tiny_study / "report.tex").is_file()
    assert not (tiny_study / "results.csv").exists() and not (tiny_study / "report.md").exists()
    assert trainlab.build_report(tiny_study, formats=["csv"]).results_csv.is_file()
