"""The terminal display of a running study (rich): run k of n, epoch, batch, live loss and accuracy.

At the end it prints a summary table (one row per run) and where the report is.
"""

from __future__ import annotations

import sys
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


# Summary columns when a study does not name its own ([study] columns).
DEFAULT_COLUMNS = ("train_acc", "test_acc", "test_loss", "train_time_s", "infer_ms_per_image", "params", "macs")


class RichReporter:
    """Live progress and a final summary on the terminal."""

    def __init__(self, console: Console | None = None) -> None:
        # Piped to a file or CI log, rich would assume 80 columns and truncate the summary table.
        self.console = console or Console(width=None if sys.stdout.isatty() else 160)
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
        # The study's own columns when it names them (the table its question asks for), else a standard set.
        from trainlab.report.metrics import BY_KEY, derived, fmt_value

        keys = result.study.config.study.columns or DEFAULT_COLUMNS
        table = Table(title=f"{result.study.name}: results", title_justify="left")
        for col in ("variant", "seed", "status"):
            table.add_column(col, justify="left")
        for key in keys:
            table.add_column(BY_KEY[key].header, justify="right")
        for r in result.records:
            res = {**(r.get("results") or {}), **derived(r.get("results") or {})}
            status = r["status"] if r["status"] in ("done", "skipped") else f"[red]{r['status']}[/]"
            cells = [fmt_value(BY_KEY[k], res.get(k)) for k in keys]
            table.add_row(r["variant"], str(r["seed"]), status, *cells)
        self.console.print(table)
        for r in result.failed:
            self.console.print(f"[red]{r['variant']} (seed {r['seed']}) {r['status']}:[/] {r['error']}")
        html = result.report_paths.get("html")
        self.console.print(f"report: [bold]{html or result.out_dir}[/]")
