"""The terminal display of a running study (rich): run k of n, epoch, batch, live loss and accuracy.

At the end it prints a summary table (one row per run) and where the report is.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from trainlab.engine.events import BatchProgress, EpochEnded, Event, RunDispatched, RunEnded, RunStarted
from trainlab.measure.format import fmt_factor, fmt_pct, fmt_spec, fmt_value
from trainlab.measure.metrics import BY_KEY, derived
from trainlab.records import FAILED, OUTCOMES, RunStatus
from trainlab.study import RunSpec, Study


def _pct(v: Any) -> str:
    p = fmt_pct(v, decimals=2)
    return p if p == "—" else p + "%"


def _setting(v: Any) -> str:
    """A tuned value as a person reads it: three significant digits for a float."""
    return format(v, ".3g") if isinstance(v, float) else fmt_factor(v)


# Summary columns when a study does not name its own ([study] columns).
# A regression has R² and MAE where a classification has accuracies: the columns no run measured are left out.
DEFAULT_COLUMNS = ("train_acc", "val_acc", "test_acc", "val_r2", "test_r2", "test_mae", "test_loss", "train_time_s",
                   "infer_ms_per_image", "params", "macs")  # fmt: skip


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
        # One bar per run in progress (several with --jobs N), by run id: (task, label, epochs).
        self.running: dict[str, tuple[Any, str, int]] = {}

    def study_start(self, study: Study, out_dir: Path, todo: int) -> None:
        done = len(study.runs) - todo
        extra = f", {done} already finished" if done else ""
        self.console.print(f"[bold]{study.name}[/]: {len(study.runs)} runs{extra} -> {out_dir}")
        self.progress.start()
        self.run_task = self.progress.add_task("runs", total=len(study.runs), completed=done, info="")

    def event(self, spec: RunSpec, ev: Event) -> None:
        if isinstance(ev, RunDispatched):
            what = f"trial {spec.trial + 1}" if spec.trial is not None else f"seed {spec.seed}"
            label = f"run {ev.index}/{ev.total} {spec.variant} ({what})"
            task = self.progress.add_task(label + (" resuming" if ev.resuming else ""), total=None, info="")
            self.running[spec.run_id] = (task, label, 0)
            return
        if spec.run_id not in self.running:
            return
        task, label, epochs = self.running[spec.run_id]
        if isinstance(ev, RunStarted):
            self.running[spec.run_id] = (task, label, ev.epochs)
            self.progress.update(
                task,
                total=ev.batches,
                completed=0,
                description=f"{label} epoch {ev.start_epoch}/{ev.epochs} [{ev.device}]",
            )
            for note in ev.notes:
                self.progress.console.print(f"  [yellow]{spec.variant}: {escape(note)}[/]")
        elif isinstance(ev, BatchProgress):
            self.progress.update(
                task, completed=ev.batch, description=f"{label} epoch {ev.epoch}/{epochs}", info=f"loss {ev.loss:.4f}"
            )
        elif isinstance(ev, EpochEnded):
            r = ev.row
            # A regression has no accuracy: its R² instead (the test split's; training has none).
            train_acc = f" acc {_pct(r.train_acc)}" if r.train_acc is not None else ""
            test_q = f" acc {_pct(r.test_acc)}" if r.test_r2 is None else f" R² {fmt_spec(r.test_r2, '.3f')}"
            val = ""
            if r.val_loss is not None:  # a validation split: its figures, before the test split's
                val_q = f" acc {_pct(r.val_acc)}" if r.val_r2 is None else f" R² {fmt_spec(r.val_r2, '.3f')}"
                val = f" | val loss {fmt_spec(r.val_loss, '.4f')}{val_q}"
            info = f"loss {fmt_spec(r.train_loss, '.4f')}{train_acc} test{test_q}"
            self.progress.update(task, completed=r.steps, info=info)
            # A trial's test split is sealed: it has no test figures to show.
            test = "" if spec.trial is not None else f" | test loss {fmt_spec(r.test_loss, '.4f')}{test_q}"
            who = f"{spec.variant} trial {spec.trial + 1}" if spec.trial is not None else spec.variant
            self.progress.console.print(
                f"  {who} epoch {r.epoch}/{epochs}: train loss {fmt_spec(r.train_loss, '.4f')}"
                f"{train_acc}{val}{test} | {r.epoch_time_s:.2f}s"
                f" (data {r.data_time_s:.2f}s, compute {r.compute_time_s:.2f}s)"
            )
        elif isinstance(ev, RunEnded):
            self.progress.remove_task(task)
            del self.running[spec.run_id]
            self.progress.advance(self.run_task)
            if ev.outcome.status != "done":
                who = f"{spec.variant} trial {spec.trial + 1}" if spec.trial is not None else spec.variant
                colour = "yellow" if spec.trial is not None else "red"  # a diverged trial is part of tuning
                self.progress.console.print(f"  [{colour}]{who}: {ev.outcome.status}[/] — {ev.outcome.error}")

    def run_skipped(self, spec: RunSpec, status: RunStatus) -> None:
        pass

    def _tuned(self, result: Any) -> None:
        """One line per tuned variant: its trials and the settings its runs used (the best trial's)."""
        if not result.trials:
            return
        count: dict[str, int] = {}
        for t in result.trials:
            count[t.variant] = count.get(t.variant, 0) + 1
        chosen = {r.variant: r.tuned for r in result.records if r.tuned}
        for name, n in count.items():
            settings = ", ".join(f"{k} = {_setting(v)}" for k, v in chosen.get(name, {}).items())
            settings = settings or "no trial finished"
            self.console.print(f"tuned on the validation split: {escape(name)}: {n} trials, best at {settings}")

    def study_end(self, result: Any) -> None:
        for task, _, _ in self.running.values():  # runs that never ended (an interrupted study)
            self.progress.remove_task(task)
        self.running.clear()
        self.progress.stop()
        # The study's own columns when it names them (the table its question asks for), else a standard set.
        keys = (
            result.study.config.study.columns
            or [k for k in DEFAULT_COLUMNS if any(r.results.get(k) is not None for r in result.records)]
            or list(DEFAULT_COLUMNS)
        )
        table = Table(title=f"{result.study.name}: results", title_justify="left")
        for col in ("variant", "seed", "status"):
            table.add_column(col, justify="left")
        for key in keys:
            table.add_column(BY_KEY[key].header, justify="right")
        for r in result.records:
            res = {**r.results, **derived(r.results)}
            ok = r.status in OUTCOMES and r.status not in FAILED  # done or skipped
            status = r.status if ok else f"[red]{r.status}[/]"
            cells = [fmt_value(BY_KEY[k], res.get(k)) for k in keys]
            table.add_row(r.variant, str(r.seed), status, *cells)
        self.console.print(table)
        self._tuned(result)
        for r in result.failed:
            self.console.print(f"[red]{r.variant} (seed {r.seed}) {r.status}:[/] {r.error}")
        html = result.report_paths.html
        self.console.print(f"report: [bold]{html or result.out_dir}[/]")
