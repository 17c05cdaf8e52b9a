"""The architecture of docs/design.md, checked: layer contracts, no cycles, deferred imports only where said,
module sizes, and the typed seams (epoch rows from the catalogue, events that cross processes)."""

from __future__ import annotations

import ast
import dataclasses
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import tiny_study

from trainlab.engine.events import (
    EpochEnded,
    EpochRow,
    Fanout,
    RunDispatched,
    RunEnded,
    RunOutcome,
    RunStarted,
)
from trainlab.measure.metrics import EPOCH_KEYS

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "trainlab"
MAX_LINES = 450
# Dependencies a module may import inside a function (heavy to import, or optional extras), with a comment.
DEFERRABLE = (
    "torchao",
    "onnx",
    "onnxruntime",
    "onnxscript",
    "scipy",
    "optuna",
    "sklearn",
    "matplotlib",
    "torch._inductor",
    "torch._dynamo",
    "ray",
    "mlflow",
    "tensorboard",
    "pandas",  # StudyResult.to_pandas only; pandas is not a dependency
    "datasets",  # the datasets extra: a data function returning a Hugging Face dataset, data.name = "hf"
    "pyarrow",  # comes with datasets: parquet files for data.name = "hf"
    "torch.utils.tensorboard",  # needs the tensorboard extra
)


def test_import_contracts_hold() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    assert lint.exists(), "import-linter is part of the dev extra"
    proc = subprocess.run([str(lint)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Contracts: 3 kept, 0 broken." in proc.stdout


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_function_level_imports_only_defer_heavy_dependencies() -> None:
    offenders = []
    for path in _modules():
        source = path.read_text(encoding="utf-8")
        lines = source.splitlines()
        # The public API imports on first use (`import trainlab` is light), and so do the CLI's commands
        # (`trainlab --help` answers without importing torch), and a worker process's entry point (the driver
        # starts workers before it imports torch).
        facade = path in (PACKAGE / "__init__.py", PACKAGE / "cli.py", PACKAGE / "engine" / "pool.py")
        for fn in ast.walk(ast.parse(source)):
            if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for node in ast.walk(fn):
                if not isinstance(node, ast.Import | ast.ImportFrom):
                    continue
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                heavy = all(any(n == d or n.startswith(d + ".") for d in DEFERRABLE) for n in names)
                said = any("#" in lines[i] for i in range(max(node.lineno - 3, 0), node.end_lineno or node.lineno))
                if not ((heavy and said) or (facade and said and all(n.startswith("trainlab") for n in names))):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} imports {', '.join(names)}")
    assert not offenders, "\n".join(offenders)


def test_modules_stay_small_or_say_why() -> None:
    long = []
    for path in _modules():
        text = path.read_text(encoding="utf-8")
        n = text.count("\n")
        doc = ast.get_docstring(ast.parse(text)) or ""
        if n > MAX_LINES and f"longer than {MAX_LINES} lines" not in doc.lower():
            long.append(f"{path.relative_to(ROOT)}: {n} lines")
    assert not long, "\n".join(long)


def test_epoch_rows_are_the_catalogues_per_epoch_figures() -> None:
    fields = [f.name for f in dataclasses.fields(EpochRow) if f.name != "evaluated"]
    assert tuple(fields) == EPOCH_KEYS
    row = EpochRow(1, 0.5, 0.8, 1.0, 0.1, 0.9, 4, 64, 0.01, test_loss=0.4, test_acc=0.85, evaluated=True)
    record = row.to_record()
    unmeasured = ("test_mae", "test_r2", "val_loss", "val_acc", "val_mae", "val_r2", "data_gpu_time_s",
                  "data_startup_s", "cpu_cores", "other_cores", "cores", "eval_time_s")  # fmt: skip
    assert list(record) == [k for k in EPOCH_KEYS if k not in unmeasured]
    assert EpochRow.from_record(record) == row
    with_val = dataclasses.replace(row, val_loss=0.45, val_acc=0.8)  # a validation split: its figures kept
    assert EpochRow.from_record(with_val.to_record()) == with_val and "val_mae" not in with_val.to_record()
    # an epoch that diverged before evaluation has no test figures
    assert "test_loss" not in dataclasses.replace(row, evaluated=False).to_record()


def test_events_cross_process_boundaries() -> None:
    row = EpochRow(2, 0.5, None, 1.0, 0.1, 0.9, 4, 64, 0.01, test_loss=0.4, test_mae=0.3, test_r2=0.6, evaluated=True)
    for ev in (
        RunDispatched(1, 2, False),
        RunStarted(3, 4, 1, "cpu", {"cpu": "x"}, None, [row]),
        EpochEnded(row),
        RunEnded(RunOutcome("done", {"test_acc": 0.9})),
    ):
        assert pickle.loads(pickle.dumps(ev)) == ev


class _Recorder:
    def __init__(self) -> None:
        self.seen: list[object] = []

    def event(self, spec: object, event: object) -> None:
        self.seen.append(event)


class _Broken:
    calls = 0

    def event(self, spec: object, event: object) -> None:
        _Broken.calls += 1
        raise OSError("tracker server down")


def test_fanout_orders_sinks_and_drops_a_failing_best_effort_one(capsys: pytest.CaptureFixture[str]) -> None:
    first, second = _Recorder(), _Recorder()
    fan = Fanout([first, second], best_effort=[_Broken()])
    events = [RunDispatched(1, 1, False), RunEnded(RunOutcome("done"))]
    for ev in events:
        fan.event(None, ev)  # type: ignore[arg-type]
    assert first.seen == events and second.seen == events
    assert _Broken.calls == 1  # reported once, then left out
    assert capsys.readouterr().err.count("tracker server down") == 1


def test_inline_and_subprocess_executors_record_the_same_epochs(tmp_path: Path) -> None:
    from trainlab.api import run
    from trainlab.store import Store

    study = tiny_study(train={"epochs": 2, "deterministic": True, "threads": 1})
    got = {}
    for name in ("inline", "subprocess"):
        result = run(study, out=tmp_path / name, executor=name, write_report=False)
        assert [r.status for r in result.records] == ["done"]
        rid = result.records[0].run_id
        got[name] = [
            {k: e[k] for k in ("epoch", "train_loss", "train_acc", "test_loss", "test_acc")}
            for e in Store(tmp_path / name / "trainlab.db").epochs(rid)
        ]
    assert got["inline"] == got["subprocess"] and len(got["inline"]) == 2
