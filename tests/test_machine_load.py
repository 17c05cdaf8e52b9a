"""A busy machine is detected and never read as an effect; a quiet one states the effect that is there.

The hog is real: one busy-looping Python process per CPU, started when a chosen variant's run starts and
stopped when it ends (a sink in the driver; the inline executor runs the study in this process), so the
per-epoch CPU accounting of ``trainlab.measure.load`` sees exactly what a user's competing job would cause.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch
from helpers import tiny_study

from trainlab import api
from trainlab.engine.events import RunEnded, RunStarted
from trainlab.measure.load import LoadMeter, is_busy
from trainlab.records import EpochRow
from trainlab.report.findings import study_findings
from trainlab.report.study import StudyView
from trainlab.report.tables import BUSY_MARK, comparison_table

HOG = "while True: pass"


def _hogs() -> list[int]:
    """Start one busy loop per CPU *outside* this process tree (a shell starts it in the background and exits,
    so it is re-parented): the run's own children, like DataLoader workers, count as the run's load."""
    pids = []
    for _ in range(os.cpu_count() or 1):
        out = subprocess.run(
            ["sh", "-c", f'"{sys.executable}" -c "{HOG}" >/dev/null 2>&1 & echo $!'],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        pids.append(int(out.stdout.strip()))
    return pids


def _stop(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _work(seconds: float) -> None:
    a = torch.randn(256, 256)
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        a @ a


def test_the_load_meter_sees_other_work_competing_for_the_cpus() -> None:
    meter = LoadMeter()
    procs = _hogs()
    try:
        time.sleep(0.2)  # let the hogs get going
        meter.start()
        _work(0.6)
        busy = meter.stop()
    finally:
        _stop(procs)
    assert busy is not None and busy.busy, busy
    assert busy.other_cores >= 0.5 * busy.cores * 0.5  # the hogs got a good part of the CPUs
    assert 0.0 < busy.cpu_cores <= busy.cores + 0.2


def test_the_busy_rule() -> None:
    assert is_busy(1.0, 1.0, 2)  # a 1-core job beside a 1-core run on 2 CPUs
    assert not is_busy(1.9, 0.05, 2)  # background daemons
    assert not is_busy(8.0, 4.0, 64)  # a big machine with spare cores is not busy
    assert not is_busy(None, 1.0, 2) and not is_busy(1.0, None, 2)  # unmeasured: nothing is marked


class HogDuring:
    """A sink that runs the hogs while the runs of ``variant`` train."""

    def __init__(self, variant: str) -> None:
        self.variant = variant
        self.procs: list[int] = []

    def event(self, spec: Any, event: Any) -> None:
        if spec.variant != self.variant:
            return
        if isinstance(event, RunStarted):
            self.procs = _hogs()
            time.sleep(0.2)
        elif isinstance(event, RunEnded):
            _stop(self.procs)
            self.procs = []


def _study(variants: list[dict[str, Any]]) -> dict[str, Any]:
    # Epochs long enough for the CPU accounting (>= 50 ms), with torch's own thread count.
    return tiny_study(
        study={"name": "timing", "description": "Two variants timed."},
        data={"shape": [3, 32, 32], "num_classes": 10, "train_size": 2048, "test_size": 256, "batch_size": 128},
        model={"name": "mlp", "hidden": [512]},
        train={"epochs": 3, "lr": 0.05, "threads": None},
        measure={"mfu": False, "infer_batch1": False, "latency_repeats": 10, "throughput_time_s": 0.05},
        variant=variants,
    )


def _run(study: dict[str, Any], out: Path, sinks: list[Any]) -> StudyView:
    try:
        api.run(study, out=out, isolate=False, sinks=sinks, write_report=False)
    finally:
        for s in sinks:
            _stop(getattr(s, "procs", []))
    return StudyView.load(out)


def test_a_busy_machine_during_one_variant_is_marked_not_called_an_effect(tmp_path: Path) -> None:
    # Two variants that cost the same: any timing difference between them is the machine's.
    study = _study([{"name": "a", "train.seed": 1}, {"name": "b", "train.seed": 2}])
    view = _run(study, tmp_path / "busy", [HogDuring("b")])
    a, b = view.variants
    assert b.busy_runs
    if a.busy_runs:  # something else ran during the reference variant: what it shows is not this test's setup
        pytest.skip(f"this machine was busy during the reference variant too: {a.busy_runs[0].busy_text}")
    epochs = b.runs[0].epochs
    assert all((e.other_cores or 0.0) > 0.25 for e in epochs), epochs  # recorded per epoch, in the store

    findings = study_findings(view)
    [busy] = [f for f in findings if f.kind == "busy_machine"]
    assert busy.figures["variants"] == ["b"] and "b:" in busy.text and "epochs" in busy.text
    [train_time] = [f for f in findings if f.kind == "best" and "train time" in f.text.lower()]
    assert "cannot be compared" in train_time.text and train_time.figures["machine_affected"] == ["b"]
    assert not train_time.text.startswith("Lowest")  # no effect is stated
    table = comparison_table(view)
    col = [m.key for m in table.metrics].index("train_time_s")
    row_b = next(r for r in table.rows if r.name == "b")
    assert row_b.cells[col].mark == BUSY_MARK


def test_a_quiet_machine_states_the_effect_that_is_there(tmp_path: Path) -> None:
    study = _study([{"name": "narrow", "model.hidden": [16]}, {"name": "wide", "model.hidden": [1024, 1024]}])
    view = _run(study, tmp_path / "quiet", [])
    if any(v.busy_runs for v in view.variants):
        busy = [(r.variant, r.busy_text) for v in view.variants for r in v.busy_runs]
        pytest.skip(f"this machine was busy with other work during the quiet study: {busy}")
    findings = study_findings(view)
    assert not [f for f in findings if f.kind == "busy_machine"]
    [verdict] = [f for f in findings if f.kind == "verdict"]  # it states the fastest; no "best" repeats it
    assert verdict.ranks["train_time_s"] == ("narrow",) and "narrow is" in verdict.text
    assert "larger than the timing noise" in verdict.text
    narrow, wide = (v.mean("train_time_s") for v in view.variants)
    assert wide > 3 * narrow  # the cost really differs


def _row(epoch: int, t: float, other: float) -> EpochRow:
    return EpochRow.from_record({"epoch": epoch, "epoch_time_s": t, "cpu_cores": 1.9 if other < 0.25 else 1.0,
                                 "other_cores": other, "cores": 2})  # fmt: skip


def test_a_few_busy_epochs_that_could_not_move_the_total_do_not_mark_the_run() -> None:
    from trainlab.measure.load import BUSY_EXCESS_SHARE, busy_excess, describe_busy
    from trainlab.records import RunRecord
    from trainlab.report.study import RunView

    quiet = [_row(e, 1.0, 0.02) for e in range(1, 25)]
    one_slow = [*quiet, _row(25, 1.3, 1.0)]  # +0.3 s over 25.3 s: 1.2%
    assert busy_excess(one_slow) == pytest.approx(0.3 / 25.3)  # 24 quiet epochs of 1 s and one of 1.3 s
    assert busy_excess(quiet) == 0.0
    assert busy_excess([_row(1, 2.0, 1.0), _row(2, 2.0, 1.0)]) == 1.0  # no quiet epoch to compare with
    assert "in 1 of 25 epochs (+1% training time)" in describe_busy(one_slow)

    def run(epochs: list[dict]) -> RunView:
        record = RunRecord("r", "s", "v", 0, 0, "done", results={"train_time_s": 25.0})
        return RunView(record, epochs)

    minor, hogged = run(one_slow), run([*quiet[:20], *(_row(e, 2.0, 1.0) for e in range(21, 26))])
    assert minor.busy_epochs and not minor.machine_busy
    assert hogged.machine_busy and busy_excess(hogged.epochs) > BUSY_EXCESS_SHARE
    from trainlab.measure.metrics import BY_KEY

    assert hogged.busy_for(BY_KEY["train_time_s"]) and not hogged.busy_for(BY_KEY["latency_p50_ms"])
    assert not hogged.busy_for(BY_KEY["test_acc"])  # accuracy is never machine-affected
