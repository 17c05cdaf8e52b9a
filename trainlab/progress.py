"""The terminal display of a running study (rich): run k of n, epoch, batch, live loss and accuracy.

At the end it prints a summary table (one row per run) and where the report is.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from trainlab.config import RunSpec, Study


def _pct(v: Any) -> str:
    return f"{100 * v:.2f}%" if isinstance(v, int | float) else "—"


def _num(v: Any, fmt: str = ".3f") -> str:
    return format(v, fmt) if isinstance(v, int | float) else "—"


class RichReporter:
    """Live progress and a final summary on the terminal."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=False)
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            console=self.console,
            transient=True,
        )
        self.run_task: Any = None
        self.batch_task: Any = None
        self.epochs = 0
        self.label = ""

    def study_start(self, study: Study, out_dir: Path, todo: int) -> None:
        done = len(study.runs) - todo
        extra = f", {done} already finished" if done else ""
        self.console.print(f"[bold]{study.name}[/]: {len(study.runs)} runs{extra} -> {out_dir}")
        self.progress.start()
        self.run_task = self.progress.add_task("runs", total=len(study.runs), completed=done, info="")

    def run_start(self, index: int, total: int, spec: RunSpec, resumed: bool) -> None:
        self.label = f"run {index}/{total} {spec.variant} (seed {spec.seed})"
        if self.batch_task is not None:
            self.progress.remove_task(self.batch_task)
        self.batch_task = self.progress.add_task(self.label + (" resuming" if resumed else ""), total=None, info="")

    def event(self, spec: RunSpec, ev: dict[str, Any]) -> None:
        kind = ev.get("event")
        if kind == "run_start":
            self.epochs = ev["epochs"]
            self.progress.update(
                self.batch_task,
                total=ev["batches"],
                completed=0,
                description=f"{self.label} epoch {ev['start_epoch']}/{self.epochs} [{ev['device']}]",
            )
        elif kind == "batch":
            self.progress.update(
                self.batch_task,
                completed=ev["batch"],
                description=f"{self.label} epoch {ev['epoch']}/{self.epochs}",
                info=f"loss {ev['loss']:.4f}",
            )
        elif kind == "epoch":
            info = f"loss {ev['train_loss']:.4f} acc {_pct(ev.get('train_acc'))} test {_pct(ev.get('test_acc'))}"
            self.progress.update(self.batch_task, completed=ev["steps"], info=info)
            self.progress.console.print(
                f"  {spec.variant} epoch {ev['epoch']}/{self.epochs}: train loss {ev['train_loss']:.4f}"
                f" acc {_pct(ev.get('train_acc'))} | test loss {_num(ev.get('test_loss'), '.4f')}"
                f" acc {_pct(ev.get('test_acc'))} | {ev['epoch_time_s']:.2f}s"
                f" (data {ev['data_time_s']:.2f}s, compute {ev['compute_time_s']:.2f}s)"
            )

    def run_end(self, spec: RunSpec, record: dict[str, Any]) -> None:
        self.progress.advance(self.run_task)
        status = record.get("status", "?")
        if status != "done":
            self.progress.console.print(f"  [red]{spec.variant}: {status}[/] — {record.get('error')}")

    def run_skipped(self, spec: RunSpec, status: str) -> None:
        pass

    def study_end(self, result: Any) -> None:
        if self.batch_task is not None:
            self.progress.remove_task(self.batch_task)
        self.progress.stop()
        table = Table(title=f"{result.study.name}: results", title_justify="left")
        for col in (
            "variant",
            "seed",
            "status",
            "train acc",
            "test acc",
            "test loss",
            "train time (s)",
            "ms/image",
            "params",
            "MACs",
        ):
            table.add_column(col, justify="left" if col in ("variant", "status") else "right")
        for r in result.records:
            res = r.get("results") or {}
            status = r["status"] if r["status"] == "done" else f"[red]{r['status']}[/]"
            table.add_row(
                r["variant"],
                str(r["seed"]),
                status,
                _pct(res.get("train_acc")),
                _pct(res.get("test_acc")),
                _num(res.get("test_loss"), ".4f"),
                _num(res.get("train_time_s"), ".2f"),
                _num(res.get("infer_ms_per_image"), ".4f"),
                _num(res.get("params"), ","),
                _num(res.get("macs"), ","),
            )
        self.console.print(table)
        for r in result.failed:
            self.console.print(f"[red]{r['variant']} (seed {r['seed']}) {r['status']}:[/] {r['error']}")
        html = result.report_paths.get("html")
        self.console.print(f"report: [bold]{html or result.out_dir}[/]")
