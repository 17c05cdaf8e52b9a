"""The typed records (trainlab.records): run statuses defined once, a stored run read back as a RunRecord, figures
read through the metric catalogue, and the engine's events re-exporting the records they carry."""

from __future__ import annotations

import ast
import dataclasses
import typing
from pathlib import Path

import pytest
import torch
from helpers import tiny_study

from trainlab import records
from trainlab.engine import events
from trainlab.measure.hardware import HostEnv, environment
from trainlab.measure.metrics import BY_KEY
from trainlab.records import FAILED, FINISHED, OUTCOMES, STATUSES, RunRecord
from trainlab.store import Store
from trainlab.study import load_study
from trainlab.track.mlflow_tracker import STATUS as MLFLOW_STATUS

PACKAGE = Path(__file__).resolve().parents[1] / "trainlab"


def test_the_status_sets_are_subsets_of_the_one_status_type() -> None:
    assert set(STATUSES) == set(typing.get_args(records.RunStatus)) and len(STATUSES) == 6
    assert set(OUTCOMES) <= set(STATUSES) and {"pending", "running"}.isdisjoint(OUTCOMES)
    assert set(FINISHED) <= set(OUTCOMES) and set(FAILED) <= set(OUTCOMES)
    assert set(OUTCOMES) - set(FINISHED) == {"failed"}  # a rerun repeats only the failed runs
    assert set(OUTCOMES) - set(FAILED) == {"done", "skipped"}  # neither fails the study
    assert set(MLFLOW_STATUS) == set(OUTCOMES)  # the tracker maps every outcome to one of MLflow's


def _status_tuples(path: Path) -> list[str]:
    """Tuples, lists and sets of two or more string literals, all of them run statuses, in ``path``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Tuple | ast.List | ast.Set) and len(node.elts) >= 2:
            values = [e.value for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]
            if len(values) == len(node.elts) and set(values) <= set(STATUSES):
                found.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {tuple(values)}")
    return found


def test_statuses_are_spelled_once_in_records() -> None:
    spelled = [hit for path in sorted(PACKAGE.rglob("*.py")) for hit in _status_tuples(path)]
    assert any(hit.startswith("trainlab/records.py:") for hit in spelled)  # the check sees the definitions
    elsewhere = [hit for hit in spelled if not hit.startswith("trainlab/records.py:")]
    assert not elsewhere, "spell run statuses with trainlab.records' sets:\n" + "\n".join(elsewhere)


def test_a_run_round_trips_through_the_store(tmp_path: Path) -> None:
    study = load_study(tiny_study(sweep={"train.lr": [0.05, 0.1]}))
    store = Store(tmp_path / "trainlab.db")
    store.set_plan(study)
    spec = study.runs[0]
    store.start_run(spec.run_id, {"hostname": "h", "device": "cpu"}, {"params": 10})
    store.finish_run(spec.run_id, "done", {"test_acc": 0.9, "train_time_s": 2.0, "data_time_s": 0.5, "device": "cpu"})
    first, second = store.runs()
    assert isinstance(first, RunRecord) and store.run(spec.run_id) == first
    assert (first.run_id, first.study, first.variant, first.repeat, first.seed) == (
        spec.run_id, spec.study, spec.variant, spec.repeat, spec.seed,
    )  # fmt: skip
    assert first.status == "done" and first.error is None and first.detail is None
    assert first.config == spec.config.model_dump(mode="json") and first.overrides == spec.overrides
    assert first.env == {"hostname": "h", "device": "cpu"} and first.profile == {"params": 10}
    assert first.created_at and first.started_at and first.finished_at
    # What a pending run holds: no results, environment or profile yet.
    assert second.status == "pending" and second.results == {} and second.env == {} and second.profile is None
    assert second.started_at is None and second.finished_at is None
    assert [f.name for f in dataclasses.fields(RunRecord)] == [
        "run_id", "study", "variant", "repeat", "seed", "status", "error", "detail", "config", "overrides",
        "results", "env", "profile", "created_at", "started_at", "finished_at", "trial",
        "tuned",
    ]  # fmt: skip  # the runs table's columns, in order
    assert Store(tmp_path / "trainlab.db", readonly=True).runs() == [first, second]


def test_the_environment_reads_back_typed_with_a_field_for_every_key_written() -> None:
    env = environment(torch.device("cpu"))
    assert set(env) <= {f.name for f in dataclasses.fields(HostEnv)}  # no key the report could not read
    host = HostEnv.from_dict({**env, "added_later": 1})  # a key the type does not know is left out
    assert host.cpu_count == env["cpu_count"] and host.device == "cpu" and host.gpu is None
    assert HostEnv.from_dict({"hostname": "h"}).cpu is None and HostEnv.from_dict(None) == HostEnv()


def test_figure_reads_the_catalogue_and_refuses_a_key_it_does_not_define() -> None:
    results = {"test_acc": 0.9, "params": 12, "train_time_s": 4.0, "data_time_s": 1.0, "mfu": None, "device": "cpu"}
    rec = RunRecord("r", "s", "v", 0, 0, "done", results=results)
    assert rec.figure("test_acc") == 0.9 and rec.figure("params") == 12.0
    assert rec.figure("data_share") == 0.25  # derived from the stored figures, as the report does
    assert rec.figure("mfu") is None and rec.figure("latency_p50_ms") is None  # not measured
    assert "device" not in BY_KEY and rec.results["device"] == "cpu"  # the run's context: read from results
    for key in ("device", "resumed_from_epoch", "test_accuracy"):
        with pytest.raises(KeyError, match="metric catalogue"):
            rec.figure(key)
    assert not rec.failed and rec.finished
    assert RunRecord("r", "s", "v", 0, 0, "diverged").failed and not RunRecord("r", "s", "v", 0, 0, "failed").finished


def test_events_re_export_the_records_they_carry() -> None:
    assert events.EpochRow is records.EpochRow and events.RunOutcome is records.RunOutcome
    assert events.DISK_FULL is records.DISK_FULL and events.OUTCOMES is records.OUTCOMES
    assert events.RunOutcome("failed", detail=records.DISK_FULL).disk_full
    assert events.EpochRow.__module__ == "trainlab.records"
