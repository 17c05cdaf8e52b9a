"""The store: per-epoch commits, skipping finished runs, resuming an interrupted run bit-identically."""

from __future__ import annotations

import pytest
from helpers import tiny_study

from trainlab.api import run
from trainlab.engine.events import EpochEnded
from trainlab.engine.runner import SilentReporter
from trainlab.store import Store
from trainlab.study import load_study


class InterruptAfter(SilentReporter):
    """Raises KeyboardInterrupt after the given epoch of the first run: a user pressing Ctrl-C."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def event(self, spec, event):
        if isinstance(event, EpochEnded) and event.row.epoch == self.epoch:
            raise KeyboardInterrupt


def test_epochs_committed_and_json_safe(tmp_path):
    study = load_study(tiny_study())
    store = Store(tmp_path / "trainlab.db")
    store.set_plan(study)
    rid = study.runs[0].run_id
    assert store.status(rid) == "pending"
    store.add_epoch(rid, {"epoch": 1, "train_loss": float("nan"), "x": (1, 2)})
    assert store.epochs(rid) == [{"epoch": 1, "train_loss": None, "x": [1, 2]}]
    store.truncate_epochs(rid, after=0)
    assert store.epochs(rid) == []
    store.finish_run(rid, "failed", {"a": 1.0}, error="why")
    rec = store.runs()[0]
    assert rec.status == "failed" and rec.error == "why" and rec.results == {"a": 1.0}


def test_rerun_skips_finished_runs(tmp_path):
    study = tiny_study(sweep={"train.lr": [0.05, 0.1]})
    first = run(study, out=tmp_path, isolate=False, write_report=False)
    assert [r.status for r in first.records] == ["done", "done"]
    finished = [r.finished_at for r in first.records]
    second = run(study, out=tmp_path, isolate=False, write_report=False)
    assert [r.finished_at for r in second.records] == finished  # nothing re-ran
    # A changed config is a new run; the old ones stay in the store but leave the plan.
    third = run(study, ["train.epochs=1"], out=tmp_path, isolate=False, write_report=False)
    assert len(third.records) == 2 and all(r.config["train"]["epochs"] == 1 for r in third.records)
    assert len(Store(tmp_path / "trainlab.db").runs(plan_only=False)) == 4


def test_interrupted_run_resumes_bit_identically(tmp_path):
    study = tiny_study(
        train={"epochs": 4, "deterministic": True}, model={"name": "mlp", "hidden": [16], "dropout": 0.2}
    )
    reference = run(study, out=tmp_path / "ref", isolate=False, write_report=False)
    ref_store = Store(tmp_path / "ref" / "trainlab.db")
    ref_epochs = ref_store.epochs(reference.records[0].run_id)

    with pytest.raises(KeyboardInterrupt):
        run(study, out=tmp_path / "cut", reporter=InterruptAfter(2), isolate=False, write_report=False)
    store = Store(tmp_path / "cut" / "trainlab.db")
    rid = store.runs()[0].run_id
    assert store.status(rid) == "running"
    assert [e["epoch"] for e in store.epochs(rid)] == [1, 2]

    resumed = run(study, out=tmp_path / "cut", isolate=False, write_report=False)
    rec = resumed.records[0]
    assert rec.status == "done" and rec.results["resumed_from_epoch"] == 2
    got = store.epochs(rid)
    keys = ("train_loss", "train_acc", "test_loss", "test_acc")
    assert [[e[k] for k in keys] for e in got] == [[e[k] for k in keys] for e in ref_epochs]


def test_deployments_are_typed_records_and_a_missing_figure_reads_as_none(tmp_path):
    from trainlab.records import DeploymentFigures, DeploymentRecord

    store = Store(tmp_path / "trainlab.db")
    store.add_deployment("r1", "float", {"saved_kb": 12.5, "latency_p50_ms": 0.4, "notes": [], "session": "a"})
    # A row written by hand (or by an older trainlab): no latency, and a key the type does not know.
    store.add_deployment("r1", "dynamic", {"saved_kb": 4.0, "float_layers": ["fc (Linear)"], "new_key": 1}, "done")
    store.add_deployment("r1", "onnx", {}, "skipped", "ONNX needs onnx")
    recs = store.deployments()
    assert all(isinstance(r, DeploymentRecord) and isinstance(r.figures, DeploymentFigures) for r in recs)
    assert [(r.run_id, r.method, r.status) for r in recs] == [("r1", "float", "done"), ("r1", "dynamic", "done"),
                                                              ("r1", "onnx", "skipped")]  # fmt: skip
    base, dyn, onnx = recs
    assert base.figures.saved_kb == 12.5 and base.figures.latency_p50_ms == 0.4 and base.figures.session == "a"
    assert base.error is None and base.created_at  # ISO 8601 stamp of the write
    assert dyn.figures.latency_p50_ms is None and dyn.figures.test_acc is None  # not stored: None
    assert dyn.figures.float_layers == ["fc (Linear)"] and not hasattr(dyn.figures, "new_key")
    assert onnx.figures == DeploymentFigures() and onnx.error == "ONNX needs onnx"
