"""Run a study: expand it, check it, run each run in its own child process, store everything, report.

Order of work (nothing is written until the study is known to be runnable):
1. validate the study (config.load_study) — a mistake is a ConfigError, exit code 2;
2. preflight: load each distinct dataset once and build each distinct model on it, so a missing or corrupt
   file or a model that cannot take the input fails before anything runs;
3. create the output folder and the store; runs already finished (same resolved-config hash) are skipped;
4. each remaining run executes in a fresh child process (spawn): fair timing, a clean peak-memory figure, and a
   crash or out-of-memory kill that cannot take the study down. An interrupted run resumes from its checkpoint;
5. write results.csv, epochs.csv, plots, report.md and report.html from the store.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import queue as queue_mod
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from trainlab.config import RunSpec, Study, load_study
from trainlab.errors import ConfigError, DataError, OutputError, TrainlabError
from trainlab.store import FINISHED, Store


class Reporter(Protocol):
    """What the runner tells a display (rich progress, or nothing with --quiet)."""

    def study_start(self, study: Study, out_dir: Path, todo: int) -> None: ...
    def run_start(self, index: int, total: int, spec: RunSpec, resumed: bool) -> None: ...
    def event(self, spec: RunSpec, event: dict[str, Any]) -> None: ...
    def run_end(self, spec: RunSpec, record: dict[str, Any]) -> None: ...
    def run_skipped(self, spec: RunSpec, status: str) -> None: ...
    def study_end(self, result: StudyResult) -> None: ...


class SilentReporter:
    """Reports nothing (``--quiet`` and library use)."""

    def study_start(self, study: Study, out_dir: Path, todo: int) -> None:
        pass

    def run_start(self, index: int, total: int, spec: RunSpec, resumed: bool) -> None:
        pass

    def event(self, spec: RunSpec, event: dict[str, Any]) -> None:
        pass

    def run_end(self, spec: RunSpec, record: dict[str, Any]) -> None:
        pass

    def run_skipped(self, spec: RunSpec, status: str) -> None:
        pass

    def study_end(self, result: StudyResult) -> None:
        pass


@dataclass
class StudyResult:
    """The outcome of ``run``: where the output is, and each run's record from the store."""

    study: Study
    out_dir: Path
    records: list[dict[str, Any]] = field(default_factory=list)
    report_paths: dict[str, Path] = field(default_factory=dict)

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [r for r in self.records if r["status"] in ("failed", "diverged")]

    @property
    def exit_code(self) -> int:
        """0 when every run succeeded (or was skipped for an absent device), 1 when some failed."""
        return 1 if self.failed else 0


def default_out_dir(study: Study) -> Path:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in study.name)
    return Path("runs") / safe


def prepare_output(out_dir: Path) -> None:
    """Create ``out_dir`` and prove it is writable, or raise :class:`OutputError`."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        probe = out_dir / ".trainlab-write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise OutputError(f"output directory {out_dir} is not writable: {exc.strerror or exc}") from None


def preflight(study: Study) -> dict[str, Any]:
    """Load each distinct dataset and build each distinct model once; return the datasets by config key.

    Raises DataError/ConfigError naming the file or the model, before anything is written.
    """
    from trainlab.models import build_model

    datasets: dict[str, Any] = {}
    built: set[tuple[str, str]] = set()
    for spec in study.runs:
        data_key = json.dumps(spec.config.data.model_dump(mode="json"), sort_keys=True)
        if data_key not in datasets:
            from trainlab.data import load_dataset

            datasets[data_key] = load_dataset(spec.config.data)
        ds = datasets[data_key]
        model_key = (data_key, json.dumps(spec.config.model.model_dump(mode="json"), sort_keys=True))
        if model_key in built:
            continue
        try:
            build_model(spec.config.model, ds.input_shape, ds.num_classes)
        except TrainlabError as exc:
            raise ConfigError(f"variant '{spec.variant}': {exc}") from None
        except (TypeError, ValueError, RuntimeError) as exc:
            raise ConfigError(
                f"variant '{spec.variant}': model '{spec.config.model.name}' cannot be built for input "
                f"{list(ds.input_shape)} and {ds.num_classes} classes: {exc}"
            ) from None
        built.add(model_key)
        if ds.task == "regression" and spec.config.train.loss == "cross_entropy":
            raise ConfigError(
                f"variant '{spec.variant}': train.loss = 'cross_entropy' needs a classification dataset;"
                f" '{spec.config.data.name}' is a regression task, use 'mse'"
            )
    return datasets


def run(
    study: str | Path | Study | dict[str, Any],
    overrides: list[str] | dict[str, Any] | None = None,
    out: str | Path | None = None,
    *,
    reporter: Reporter | None = None,
    isolate: bool = True,
    write_report: bool = True,
) -> StudyResult:
    """Run every run of a study not already finished in ``out`` and write its report.

    ``study`` is a path, ``recipe:NAME``, a parsed dict or a loaded :class:`Study`. ``isolate=False`` runs
    in this process (faster start, for tests and debugging; timing and peak memory are then less clean).
    """
    if not isinstance(study, Study):
        if isinstance(study, str | Path) and not str(study).startswith("recipe:"):
            _add_to_path(Path(study).resolve().parent)
        study = load_study(study, overrides)
    elif overrides:
        raise ConfigError("pass overrides to load_study when giving a loaded Study")
    reporter = reporter or SilentReporter()
    out_dir = Path(out) if out is not None else default_out_dir(study)

    datasets = preflight(study)
    prepare_output(out_dir)
    store = Store(out_dir / "trainlab.db")
    store.set_plan(study)

    todo = [s for s in study.runs if store.status(s.run_id) not in FINISHED]
    reporter.study_start(study, out_dir, len(todo))
    result = StudyResult(study=study, out_dir=out_dir)
    ckpt_dir = out_dir / "checkpoints"
    try:
        for index, spec in enumerate(study.runs, start=1):
            status = store.status(spec.run_id)
            if status in FINISHED:
                reporter.run_skipped(spec, status)
                continue
            ckpt = ckpt_dir / f"{spec.run_id}.pt"
            reporter.run_start(index, len(study.runs), spec, resumed=ckpt.exists())
            if isolate:
                _run_in_child(spec, store, ckpt, study.path, reporter)
            else:
                _run_inline(spec, store, ckpt, study.path, reporter, datasets)
            reporter.run_end(spec, store.run(spec.run_id) or {})
        if study.config.deploy.methods:  # [deploy]: int8 / ONNX variants of each trained model, into the store
            from trainlab.deploy import deploy_study

            try:
                deploy_study(out_dir, study.config.deploy, datasets=datasets, skip_deployed=True)
            except Exception as exc:  # a deployment bug must not lose the study: its runs are stored
                print(f"warning: deployment failed: {type(exc).__name__}: {exc}", file=sys.stderr)
    finally:
        result.records = store.runs()
        if write_report:
            from trainlab.report import build_report

            try:
                result.report_paths = build_report(out_dir)
            except Exception as exc:  # a report bug must not lose the study: the store has everything
                print(f"warning: report could not be written: {type(exc).__name__}: {exc}", file=sys.stderr)
    reporter.study_end(result)
    return result


def _add_to_path(folder: Path) -> None:
    """Let ``model.name = "mymodels:Net"`` find a module next to the study file."""
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))


def _run_inline(
    spec: RunSpec,
    store: Store,
    ckpt: Path,
    study_path: Path | None,
    reporter: Reporter,
    datasets: dict[str, Any],
) -> None:
    from trainlab.train import execute_run

    key = json.dumps(spec.config.data.model_dump(mode="json"), sort_keys=True)
    outcome = execute_run(
        spec,
        store=store,
        checkpoint_path=ckpt,
        progress=lambda ev: reporter.event(spec, ev),
        study_path=study_path,
        dataset=datasets.get(key),
    )
    store.finish_run(spec.run_id, outcome.status, outcome.results, outcome.error, outcome.detail)


def _child_main(spec: RunSpec, db_path: str, ckpt: str, study_path: str | None, events: Any) -> None:
    """Entry point of a run's child process."""
    from trainlab.runtime import tune_allocator
    from trainlab.train import execute_run

    _die_with_parent()
    tune_allocator()  # this process is the run's own: keep freed tensor memory mapped (see trainlab.runtime)

    store = Store(db_path)

    def progress(ev: dict[str, Any]) -> None:
        events.put(ev)

    outcome = execute_run(
        spec,
        store=store,
        checkpoint_path=Path(ckpt),
        progress=progress,
        study_path=Path(study_path) if study_path else None,
    )
    store.finish_run(spec.run_id, outcome.status, outcome.results, outcome.error, outcome.detail)
    events.put({"event": "run_end", "status": outcome.status})


def _die_with_parent() -> None:
    """Ask Linux to SIGKILL this process when its parent dies, so a killed study leaves no orphan run behind."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: the orphan finishes its run and records it
        pass


def _run_in_child(spec: RunSpec, store: Store, ckpt: Path, study_path: Path | None, reporter: Reporter) -> None:
    ctx = mp.get_context("spawn")
    events = ctx.Queue()
    proc = ctx.Process(
        target=_child_main,
        args=(spec, str(store.path), str(ckpt), str(study_path) if study_path else None, events),
        name=f"trainlab-run-{spec.run_id}",
    )
    proc.start()
    try:
        while proc.is_alive() or not events.empty():
            try:
                ev = events.get(timeout=0.1)
            except queue_mod.Empty:
                continue
            reporter.event(spec, ev)
        proc.join()
    except KeyboardInterrupt:
        proc.terminate()
        proc.join()
        raise
    finally:
        events.close()
    if store.status(spec.run_id) in ("pending", "running"):
        # The child died without recording an outcome: a signal (e.g. the kernel's OOM killer) or a hard crash.
        code = proc.exitcode
        if code is not None and code < 0:
            name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else str(-code)
            why = f"run process killed by signal {name}"
            if name == "SIGKILL":
                why += " (out of memory, or killed by the user)"
        else:
            why = f"run process exited with code {code} before recording a result"
        store.finish_run(spec.run_id, "failed", error=why)


__all__ = ["DataError", "StudyResult", "run"]
