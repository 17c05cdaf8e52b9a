"""Experiment tracking read back with the trackers' own readers: MLflow's client over a real SQLite tracking
store, TensorBoard's event-file reader. Live tracking, export after the fact (twice: no duplicates), a
tracker that fails mid-study, and the errors without the extras."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from helpers import tiny_study

# The mlflow and tensorboard extras are part of the dev install: imported, not skipped, so that a missing install
# step fails here instead of hiding these tests.
from mlflow.tracking import MlflowClient
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from trainlab.api import run
from trainlab.cli import main
from trainlab.errors import ConfigError
from trainlab.layout import StudyDir
from trainlab.store import Store
from trainlab.track import export, make_trackers
from trainlab.track.base import tracker_name
from trainlab.track.mlflow_tracker import MlflowTracker

EPOCHS = 3
STUDY = tiny_study(sweep={"train.lr": [0.05, 0.1]}, train={"epochs": EPOCHS}, data={"val_fraction": 0.25})


def _client(out: Path) -> MlflowClient:
    return MlflowClient(tracking_uri=f"sqlite:///{out.resolve() / 'mlflow.db'}")


def _mlflow_runs(out: Path) -> tuple[MlflowClient, list, list]:
    client = _client(out)
    exp = client.get_experiment_by_name("tiny")
    runs = client.search_runs([exp.experiment_id])
    parents = [r for r in runs if r.data.tags.get("trainlab.kind") == "study"]
    nested = [r for r in runs if r.data.tags.get("trainlab.kind") == "run"]
    return client, parents, nested


def _check_mlflow(out: Path) -> None:
    client, parents, nested = _mlflow_runs(out)
    store = Store(out / "trainlab.db")
    records = {r.run_id: r for r in store.runs()}
    assert len(parents) == 1 and len(nested) == len(records) == 2
    parent = parents[0]
    for nested_run in nested:
        tags, params = nested_run.data.tags, nested_run.data.params
        rid = tags["trainlab.run_id"]
        assert tags["mlflow.parentRunId"] == parent.info.run_id and nested_run.info.status == "FINISHED"
        assert tags["variant"] == records[rid].variant and tags["seed"] == str(records[rid].seed)
        assert tags["device"] == "cpu"
        assert params["train.lr"] == str(records[rid].config["train"]["lr"]) and params["model.name"] == "mlp"
        assert params["model.hidden"] == "[16]" and params["train.deterministic"] == "false"
        epochs = store.epochs(rid)
        # Names grouped by split, accuracy in percent as the report shows it.
        for key, name, scale in (("train_loss", "train/loss", 1), ("test_acc", "test/acc_pct", 100),
                                 ("val_loss", "val/loss", 1), ("epoch_time_s", "time/epoch_time_s", 1),
                                 ("lr", "train/lr", 1)):  # fmt: skip
            assert tracker_name(key) == (name, scale)
            history = sorted(client.get_metric_history(nested_run.info.run_id, name), key=lambda m: m.step)
            assert [m.step for m in history] == [1, 2, 3]
            assert [m.value for m in history] == pytest.approx([e[key] * scale for e in epochs])
        metrics = nested_run.data.metrics
        assert metrics["time/train_time_s"] == pytest.approx(records[rid].results["train_time_s"])
    # The parent run carries the study at a glance: per variant, the mean of each summary figure.
    summary = parent.data.metrics
    for r in records.values():
        variant = r.variant.replace("=", ":")
        assert summary[f"test/acc_pct/{variant}"] == pytest.approx(100 * r.results["test_acc"])
        assert summary[f"time/train_time_s/{variant}"] == pytest.approx(r.results["train_time_s"])
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"report.html", "results.csv", "plots"} <= artifacts
    assert client.list_artifacts(parent.info.run_id, "plots")


def _check_tensorboard(out: Path) -> None:
    store = Store(out / "trainlab.db")
    folders = sorted((out / "tensorboard").iterdir())
    assert len(folders) == 2 and all(f.is_dir() for f in folders)
    for record in store.runs():
        [folder] = [f for f in folders if f.name.endswith(record.run_id)]
        assert not [p for p in folder.iterdir() if p.is_dir()]  # hparams in the run's own folder: no extra runs
        ea = EventAccumulator(str(folder))
        ea.Reload()
        epochs = store.epochs(record.run_id)
        for key in ("train_loss", "test_acc", "val_acc", "epoch_time_s"):
            tag, scale = tracker_name(key)  # the names MLflow shows too
            scalars = ea.Scalars(tag)
            assert [s.step for s in scalars] == [1, 2, 3]
            assert [s.value for s in scalars] == pytest.approx([e[key] * scale for e in epochs], rel=1e-6)  # float32
        assert "_hparams_/experiment" in ea.PluginTagToContent("hparams")
        # The HParams table has the final figures of every split, not only the costs.
        for key in ("test_acc", "test_loss", "train_acc", "train_loss", "val_acc", "best_epoch", "train_time_s"):
            tag, scale = tracker_name(key)
            [final] = ea.Scalars(f"hparams/{tag}")
            assert final.value == pytest.approx(record.results[key] * scale, rel=1e-6)


def test_live_tracking_in_mlflow_and_tensorboard(tmp_path: Path) -> None:
    out = tmp_path / "live"
    result = run(STUDY, out=out, executor="inline", track=["mlflow", "tensorboard"])
    assert [r.status for r in result.records] == ["done", "done"]
    _check_mlflow(out)
    _check_tensorboard(out)


def test_export_after_the_fact_twice_without_duplicates(tmp_path: Path, capsys) -> None:
    out = tmp_path / "later"
    run(STUDY, out=out, executor="inline")
    assert main(["export", str(out), "--to", "mlflow", "--to", "tensorboard"]) == 0
    assert "mlflow: 2 runs exported" in capsys.readouterr().out
    _check_mlflow(out)
    _check_tensorboard(out)
    assert main(["export", str(out), "--to", "mlflow"]) == 0  # again: nothing added, and it says so
    assert "mlflow: nothing new: it holds all 2 runs already" in capsys.readouterr().out
    export(out, ["mlflow", "tensorboard"])
    _check_mlflow(out)
    _check_tensorboard(out)


def test_a_failing_tracker_never_fails_the_study(tmp_path: Path, monkeypatch, capsys) -> None:
    calls = []

    def broken(self, mid, row):
        calls.append(row["epoch"])
        raise ConnectionError("tracking server down")

    monkeypatch.setattr(MlflowTracker, "_log_epoch", broken)
    out = tmp_path / "flaky"
    result = run(STUDY, out=out, executor="inline", track=["mlflow"])
    assert [r.status for r in result.records] == ["done", "done"]
    store = Store(out / "trainlab.db")
    assert all(len(store.epochs(r.run_id)) == EPOCHS for r in store.runs())  # the store is complete
    assert calls == [1]  # disabled after its first failure
    assert capsys.readouterr().err.count("tracking server down") == 1
    monkeypatch.undo()
    export(out, ["mlflow"])  # the gap is filled later
    _check_mlflow(out)


def test_tracker_errors_name_the_extra(tmp_path: Path, monkeypatch) -> None:
    layout = StudyDir(tmp_path)
    monkeypatch.setitem(sys.modules, "mlflow", None)
    with pytest.raises(ConfigError, match=r"trainlab\[mlflow\]"):
        make_trackers(["mlflow"], layout)
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    with pytest.raises(ConfigError, match=r"trainlab\[tensorboard\]"):
        make_trackers(["tensorboard"], layout)
    with pytest.raises(ConfigError, match="did you mean 'mlflow'"):
        make_trackers(["mlfow"], layout)


def test_the_study_file_can_ask_for_trackers(tmp_path: Path) -> None:
    study = tiny_study(train={"epochs": 1}, track={"to": ["tensorboard"]})
    run(study, out=tmp_path, executor="inline", write_report=False)
    assert len(list((tmp_path / "tensorboard").iterdir())) == 1
