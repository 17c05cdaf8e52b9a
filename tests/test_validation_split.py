"""The validation split: ``data.val_fraction`` carves a stratified, seeded split from the training data (or a
source's own validation split is used); every epoch is evaluated on it; the choices (best epoch, epochs to target,
best variant, Pareto front, overfitting) read it and the test split scores them; without one the report says the
choices were made on test."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import torch
from helpers import tiny_study

import trainlab
from trainlab.data import DataConfig, load_dataset
from trainlab.data.base import Dataset, Split
from trainlab.data.load import carve_validation
from trainlab.engine.figures import validation_figures
from trainlab.errors import ConfigError
from trainlab.records import EpochRow, RunRecord
from trainlab.report.findings import run_findings
from trainlab.report.study import RunView


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def test_val_fraction_is_stratified_seeded_and_disjoint() -> None:
    full = load_dataset(DataConfig(name="digits"))
    ds = load_dataset(DataConfig.model_validate({"name": "digits", "val_fraction": 0.2}))
    assert ds.val is not None and len(ds.train) + len(ds.val) == len(full.train)
    assert abs(len(ds.val) - 0.2 * len(full.train)) <= len(ds.classes)  # per class, rounded
    # The same class balance as the training split (each class within one sample of its share).
    counts, total = Counter(full.train.y.tolist()), len(full.train)
    for cls, n in Counter(ds.val.y.tolist()).items():
        assert abs(n - round(counts[cls] * 0.2)) <= 1, (cls, n, counts[cls])
    assert sum(counts.values()) == total
    # Disjoint: every training sample is either kept or held out, never both (samples numbered by their x).
    x = torch.arange(100, dtype=torch.float32)[:, None]
    numbered = Dataset("n", Split(x, torch.arange(100) % 4), Split(x[:4], torch.arange(4)), list("abcd"))
    carve_validation(numbered, 0.2, 0)
    kept, held = set(numbered.train.x[:, 0].tolist()), set(numbered.val.x[:, 0].tolist())
    assert not kept & held and len(kept | held) == 100 and len(held) == 20
    # Seeded: the same split again; another val_seed, another split; the test split is untouched.
    again = load_dataset(DataConfig.model_validate({"name": "digits", "val_fraction": 0.2}))
    assert torch.equal(again.val.x, ds.val.x) and torch.equal(ds.test.x, full.test.x)
    other = load_dataset(DataConfig.model_validate({"name": "digits", "val_fraction": 0.2, "val_seed": 1}))
    assert not torch.equal(other.val.x, ds.val.x)
    limited = load_dataset(DataConfig.model_validate({"name": "digits", "val_fraction": 0.2, "limit_val": 7}))
    assert limited.val is not None and len(limited.val) == 7 and torch.equal(limited.val.x, ds.val.x[:7])


def test_regression_gets_a_random_split_and_a_tiny_training_split_is_an_error() -> None:
    x, y = torch.randn(50, 3), torch.randn(50)
    ds = Dataset("t", Split(x, y), Split(x[:5], y[:5]), [], task="regression")
    carve_validation(ds, 0.3, 0)
    assert ds.val is not None and (len(ds.train), len(ds.val)) == (35, 15)
    one = Dataset("one", Split(x[:1], y[:1].long()), Split(x[:1], y[:1].long()), ["a"])
    with pytest.raises(Exception, match="too few to hold out"):
        carve_validation(one, 0.5, 0)


def test_a_source_with_its_own_validation_split_refuses_a_second() -> None:
    x, y = torch.randn(20, 2), torch.arange(20) % 2
    ds = Dataset("own", Split(x, y), Split(x, y), ["a", "b"], val=Split(x[:4], y[:4]))
    with pytest.raises(ConfigError, match=r"its own validation split.*drop data\.val_fraction"):
        carve_validation(ds, 0.1, 0)


@pytest.mark.parametrize("bad", [0, 1, 1.5, -0.1, "a"])
def test_val_fraction_outside_0_1_is_refused(bad: Any) -> None:
    with pytest.raises(Exception, match="val_fraction"):
        DataConfig.model_validate({"name": "digits", "val_fraction": bad})


def _row(epoch: int, val_acc: float | None, test_acc: float, val_loss: float | None = 0.5) -> EpochRow:
    return EpochRow(epoch, 0.5, 0.9, 1.0, 0.1, 0.9, 10, 100, 0.1, test_loss=0.5, test_acc=test_acc,
                    val_loss=val_loss, val_acc=val_acc, evaluated=True)  # fmt: skip


def test_the_best_epoch_is_chosen_on_validation_and_scored_on_test() -> None:
    history = [_row(1, 0.80, 0.85), _row(2, 0.90, 0.82), _row(3, 0.90, 0.95), _row(4, 0.85, 0.97)]
    figs = validation_figures(history, "classification", num_val=40)
    # Epoch 2 is the first with the highest validation accuracy; test's own best (epoch 4) is not the choice.
    assert figs["best_epoch"] == 2 and figs["test_acc_at_best"] == 0.82 and figs["best_epoch_split"] == "val"
    assert (figs["val_acc"], figs["best_val_acc"], figs["num_val"]) == (0.85, 0.90, 40)
    no_val = [_row(1, None, 0.85, None), _row(2, None, 0.9, None)]
    figs = validation_figures(no_val, "classification", num_val=None)
    assert figs["best_epoch"] == 2 and figs["best_epoch_split"] == "test" and "val_acc" not in figs


def test_the_overfitting_diagnosis_reads_the_validation_loss() -> None:
    val_loss = [0.8, 0.5, 0.35, 0.30, 0.36, 0.42, 0.5]  # lowest at epoch 4, then up
    rows = [
        {"epoch": i + 1, "train_loss": 1.0 / (i + 1), "train_acc": 0.9, "test_loss": 0.4, "test_acc": 0.88,
         "val_loss": v, "val_acc": 0.87, "epoch_time_s": 1.0, "data_time_s": 0.1, "compute_time_s": 0.9}
        for i, v in enumerate(val_loss)
    ]  # fmt: skip
    record = RunRecord(run_id="r1", study="s", variant="wide", repeat=0, seed=0, status="done", error=None,
                       config={"train": {"epochs": 7}}, overrides={}, results={}, env={}, profile=None)  # fmt: skip
    [f] = [f for f in run_findings(RunView(record, rows)) if f.kind == "overfitting"]
    assert "validation loss is lowest at epoch 4" in f.text and f.figures["min_val_loss"] == pytest.approx(0.30)
    assert "test split" not in (f.advice or "")  # chosen on validation: no caveat


def test_a_study_with_a_validation_split_records_and_reports_it(tmp_path: Path) -> None:
    study = tiny_study(
        study={"name": "val"},
        data={"val_fraction": 0.25},
        train={"epochs": 3, "target_accuracy": 0.4},
        sweep={"model.hidden": [[8], [32]]},
    )
    out = tmp_path / "out"
    result = trainlab.run(study, out=out, executor="inline")
    assert all(r.status == "done" for r in result.records)
    results = _rows(out / "results.csv")
    epochs = _rows(out / "epochs.csv")
    for col in ("val_acc", "best_val_acc", "val_loss", "best_epoch", "test_acc_at_best"):
        assert col in results[0] and results[0][col] != "", col
    assert {"val_loss", "val_acc", "test_acc"} <= set(epochs[0])
    for r in result.records:
        # 96 generated samples, a quarter held out per class: 72 train, 24 validation, the test split as was.
        assert (r.results["num_train"], r.results["num_val"], r.results["num_test"]) == (72, 24, 32)
        assert r.results["target_split"] == "val" and r.results["best_epoch_split"] == "val"
        mine = [e for e in epochs if e["run_id"] == r.run_id]
        reached = [int(e["epoch"]) for e in mine if float(e["val_acc"]) >= 0.4]
        assert r.results["epochs_to_target"] == (reached[0] if reached else None)
    md = (out / "report.md").read_text()
    findings = md.split("## Findings", 1)[1].split("## Comparison", 1)[0]
    assert "Val acc" in findings and "Chosen on the validation split; scored on test: test acc" in findings
    assert "made on the test split" not in findings


def test_without_a_validation_split_the_report_says_choices_were_made_on_test(tmp_path: Path) -> None:
    study = tiny_study(study={"name": "noval"}, sweep={"model.hidden": [[8], [32]]})
    out = tmp_path / "out"
    result = trainlab.run(study, out=out, executor="inline")
    assert all(r.results["best_epoch_split"] == "test" and "val_acc" not in r.results for r in result.records)
    findings = (out / "report.md").read_text().split("## Findings", 1)[1].split("## Comparison", 1)[0]
    first = findings.strip().splitlines()[0].replace("\\_", "_")  # Markdown escapes the underscore
    assert "made on the test split" in first and "data.val_fraction" in first  # told in the verdict itself
