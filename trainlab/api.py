"""The library entry points the CLI (and a notebook) call: run a study end to end.

``run`` ties the wings together in order — the study (load, validate), the engine (preflight, dispatch to an
executor, the store), deployment (``[deploy]``) and the report — which is why it sits above all of them.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import shutil
import sys
from pathlib import Path
from typing import Any, Protocol

from rich.console import Console

from trainlab.data import DatasetCache
from trainlab.deploy import deploy_study
from trainlab.engine.events import Sink
from trainlab.engine.executors import Executor
from trainlab.engine.pool import discard, prestart
from trainlab.engine.runner import (
    Reporter,
    SilentReporter,
    StudyResult,
    auto_jobs,
    default_out_dir,
    dispatch,
    make_executor,
    open_store,
    preflight,
    study_lock,
    worker_slots,
)
from trainlab.errors import ConfigError, DiskFull
from trainlab.layout import ReportPaths, StudyDir
from trainlab.measure.format import fmt_bytes
from trainlab.measure.sequential import look_sizes
from trainlab.records import FINISHED, RunRecord
from trainlab.report import build_report
from trainlab.report.deployment import write_deployment_outputs
from trainlab.report.settle import settling
from trainlab.report.study import StudyView
from trainlab.store import Store
from trainlab.study import RunSpec, Study, load_study
from trainlab.study.trials import planned_trials, tuned_runs, variant_bases
from trainlab.track import Tracker, make_trackers, report_files


class Send(Protocol):
    """:func:`trainlab.engine.runner.dispatch` bound to one study's folder, store, executor and listeners."""

    def __call__(self, study: Study, *, plan: list[RunSpec]) -> None: ...


def run(
    study: str | Path | Study | dict[str, Any],
    overrides: list[str] | dict[str, Any] | None = None,
    out: str | Path | None = None,
    *,
    reporter: Reporter | None = None,
    isolate: bool = True,
    executor: str | Executor | None = None,
    address: str | None = None,
    jobs: int | str = 1,
    storage: str | Path | None = None,
    sinks: list[Sink] | None = None,
    track: list[str] | None = None,
    tracking_uri: str | None = None,
    write_report: bool = True,
) -> StudyResult:
    """Run every run of a study not already finished in ``out``, deploy (``[deploy]``) and write its report.

    ``study`` is a path, ``recipe:NAME``, a parsed dict or a loaded :class:`Study`. ``executor``: ``subprocess``
    (default: each run in its own process), ``inline`` or an :class:`Executor`; ``isolate=False`` means
    ``inline``; ``ray`` runs each run as a task on a Ray cluster (``address``: the cluster's, else Ray's own
    rules). ``jobs``: runs side by side on this machine, each in its own worker pinned to its own CPUs (an int,
    or ``"auto"``: the CPUs / the study's largest ``train.threads``, and one per GPU on CUDA); the default 1
    runs them one after another. ``storage``: a folder every node can reach, for checkpoints and weights
    (default: ``out``).
    ``track``: experiment trackers (``mlflow``, ``tensorboard``) besides the study's ``[track]`` ones, fed live;
    ``tracking_uri``: MLflow's (default ``[track] tracking_uri``, ``MLFLOW_TRACKING_URI``, or a SQLite store in
    ``out``). ``sinks``: more receivers of every run's events (best effort: one that fails is reported once
    and dropped, the study goes on).

    Returns a :class:`StudyResult`; its ``records`` are the study's runs as stored, each a
    :class:`trainlab.records.RunRecord` with attributes (``r.status``, ``r.results``, ``r.figure("test_acc")``)
    (they were dicts, ``r["status"]``, before this change).
    """
    in_process: list[str] = []
    if isinstance(study, dict):
        study, in_process = objects_by_name(study)
        if in_process and (executor or ("subprocess" if isolate else "inline")) == "subprocess":
            _warn(
                f"{', '.join(in_process)} {'is' if len(in_process) == 1 else 'are'} defined in your script or"
                " notebook (__main__), which a run's own process cannot import: the runs go inline, in this process."
                " Put it in a module file (beside the study, or importable) for the worker processes."
            )
            executor = "inline"
    if not isinstance(study, Study):
        study = load_study(study, overrides)
    elif overrides:
        raise ConfigError("pass overrides to load_study when giving a loaded Study")
    reporter = reporter or SilentReporter()
    layout = StudyDir(out if out is not None else default_out_dir(study))

    kind = executor or ("subprocess" if isolate else "inline")
    n = resolve_jobs(jobs, study)
    if kind == "subprocess":
        # The workers warm up (~4 s: torch, torch._dynamo, trainlab) while this process checks the study and
        # loads its data (the command line starts them even earlier, before it imports torch).
        prestart(worker_slots(n))
    try:
        return _run_loaded(study, layout, reporter, kind, n, address, storage, sinks, track, tracking_uri,
                           write_report)  # fmt: skip
    finally:
        discard()  # pre-started workers no executor took (the study failed its checks, or had nothing to run)


def _run_loaded(
    study: Study,
    layout: StudyDir,
    reporter: Reporter,
    kind: str | Executor,
    jobs: int,
    address: str | None,
    storage: str | Path | None,
    sinks: list[Sink] | None,
    track: list[str] | None,
    tracking_uri: str | None,
    write_report: bool,
) -> StudyResult:
    """:func:`run` once the study is loaded and its workers are starting."""
    datasets = preflight(study)
    chosen = make_executor(kind, datasets, address, jobs)
    tc = study.config.track
    trackers = make_trackers([*tc.to, *(track or [])], layout, tracking_uri or tc.tracking_uri)
    layout.prepare()
    with study_lock(layout, _warn):  # a second driver on this folder waits, then skips what this one finished
        store = open_store(layout, _warn)
        result = StudyResult(study=study, out_dir=layout.root)
        live = _best_effort(trackers, "study_started", study.config.model_dump(mode="json"), study.swept_keys)
        full: DiskFull | None = None
        try:
            shared = StudyDir(storage) if storage is not None else None
            # dispatch bound to this study's folder, store, executor and listeners: send(study, plan=...)
            send = functools.partial(dispatch, layout=layout, store=store, executor=chosen, reporter=reporter,
                                     sinks=[*(sinks or []), *live], storage=shared)  # fmt: skip
            try:
                if study.config.tune is not None:
                    _check_validation_split(study, datasets)
                    trials = _dispatch_trials(study, store, reporter, send)
                    study = _tuned_study(study, store, reporter)
                else:
                    trials = []
                _dispatch_rounds(study, layout, reporter, send, trials)
            finally:  # the workers kept from round to round: stopped before the report, which wants the CPUs
                chosen.close()
            if study.config.deploy.methods:
                _deploy(layout, study, datasets)
        except DiskFull as exc:  # the study stops; what finished is stored, and a rerun resumes
            full = exc
        finally:
            stored = store.runs()
            result.records = [r for r in stored if r.trial is None]
            result.trials = [r for r in stored if r.trial is not None]
            if write_report and full is None:
                try:
                    result.report_paths = _report(layout)
                except DiskFull as exc:
                    full = exc
            _best_effort(live, "study_finished", report_files(layout))
        if full is not None:
            raise DiskFull(disk_full_message(layout, result.records, full)) from None
    reporter.study_end(result)
    return result


def _dispatch_rounds(
    study: Study, layout: StudyDir, reporter: Reporter, send: Send, trials: list[RunSpec] | None = None
) -> None:
    """:func:`dispatch` the study; with ``repeats = "auto"``, in rounds: every variant's first look of seeds,
    then more seeds to the pair the verdict compares until the rule settles (:mod:`trainlab.report.settle`).
    ``trials``: a tuned study's trials, which stay in the plan (the store's record of the study).

    Stateless: each round's plan follows from the finished runs in the store, so a rerun of a killed study
    replays the same rounds (their finished runs skipped) and goes on where it stopped."""
    cfg = study.config
    before = list(trials or [])
    if cfg.repeats != "auto":
        send(study, plan=[*before, *study.runs])
        return
    sizes = look_sizes(cfg.max_repeats)
    seeds = {r.variant: sizes[0] for r in study.runs}  # per variant: the seeds planned so far
    while True:
        plan = [r for r in study.runs if r.repeat < seeds[r.variant]]
        send(dataclasses.replace(study, runs=plan), plan=[*before, *plan])
        s = settling(StudyView.load(layout.root), cfg.max_repeats, cfg.margin)
        more = s.next_seeds() if s is not None else None
        if s is None or more is None or all(seeds[v] >= more for v in (s.best, s.worst)):
            return
        if not isinstance(reporter, SilentReporter) and s.decision.interval is not None:
            iv = s.decision.interval
            print(f"repeats = auto: {s.best} vs {s.worst} on {s.key} is not settled at {iv.n} seeds (difference"
                  f" {iv.diff:+.4g}, interval {iv.low:+.4g} to {iv.high:+.4g}); {more} seeds each",
                  file=sys.stderr)  # fmt: skip
        for v in (s.best, s.worst):
            seeds[v] = max(seeds[v], more)


def _check_validation_split(study: Study, datasets: DatasetCache) -> None:
    """Refuse ``[tune]`` on a dataset without a validation split: trials must choose without reading test."""
    for spec in study.runs:
        if datasets.get(spec.config.data).val is None:
            raise ConfigError(
                f"[tune]: variant '{spec.variant}' has no validation split to tune on ({spec.config.data.name} has"
                " none of its own): set data.val_fraction (e.g. 0.1), so that no trial reads the test split"
            )


def _dispatch_trials(study: Study, store: Store, reporter: Reporter, send: Send) -> list[RunSpec]:
    """Run every variant's tuning trials, round by round (:func:`trainlab.study.trials.planned_trials`), and
    return them. A trial that ended (even failed) is not run again in this session: the next round reads it as
    a failure; a rerun of the study retries it, as it retries any failed run."""
    tried: set[str] = set()
    trials: list[RunSpec] = []
    while True:
        trials = planned_trials(study, store.runs(plan_only=False))
        todo = [t for t in trials if t.run_id not in tried]
        if not todo:
            return trials
        if not isinstance(reporter, SilentReporter):
            total = len(variant_bases(study)) * (study.config.tune.trials if study.config.tune else 0)
            print(f"tune: {len(trials)} of {total} trials planned (validation split only)", file=sys.stderr)
        send(dataclasses.replace(study, runs=todo), plan=trials)
        tried.update(t.run_id for t in todo)


def _tuned_study(study: Study, store: Store, reporter: Reporter) -> Study:
    """The study with each variant's runs at its best trial's settings; a variant none of whose trials recorded
    a figure has no runs (said on stderr)."""
    runs, failed = tuned_runs(study, store.runs(plan_only=False))
    for name in failed:
        _warn(f"[tune]: every trial of variant '{name}' failed or diverged: it is left out of the study")
    if not isinstance(reporter, SilentReporter):
        chosen = {r.variant: r.tuned for r in runs}
        for name, settings in chosen.items():
            text = ", ".join(f"{k} = {v:.3g}" if isinstance(v, float) else f"{k} = {v}" for k, v in settings.items())
            print(f"tune: {name}: best trial at {text}", file=sys.stderr)
    if not runs:
        raise ConfigError("[tune]: no variant has a trial that recorded a figure; see the trials' errors in the store")
    return dataclasses.replace(study, runs=runs)


def resolve_jobs(jobs: int | str, study: Study) -> int:
    """``jobs`` as a number of runs side by side: an int (or its text, from the command line) or ``auto``."""
    if jobs == "auto":
        return auto_jobs(study)
    try:
        n = int(jobs)
    except (TypeError, ValueError):
        raise ConfigError(f"--jobs must be a number of runs side by side or 'auto', not {jobs!r}") from None
    if n < 1:
        raise ConfigError(f"--jobs must be at least 1 (or 'auto'), not {jobs!r}")
    return n


# The keys whose value may be given as a Python object in a dict study: a model class, a data function.
OBJECT_KEYS = ("model.name", "data.name")


def objects_by_name(study: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """A dict study whose ``model.name`` is an ``nn.Module`` class or whose ``data.name`` is a data function
    (in their section, a variant or a sweep), with each object replaced by its ``module:QualName``, which every
    run's process imports as it imports a user model or data function; and the names (``model LocalNet``,
    ``data function blobs``) of those defined in ``__main__`` (a script or notebook), which only this process
    can import."""
    in_process: list[str] = []

    def name_of(key: str, value: Any) -> Any:
        if isinstance(value, str) or not (isinstance(value, type) or callable(value)):
            return value  # a name already, or a wrong value that validation reports
        qualname = getattr(value, "__qualname__", None)
        module = getattr(value, "__module__", None)
        if not qualname or not module or "<" in qualname:  # a lambda, or a function defined inside a function
            raise ConfigError(
                f"{key}: {value!r} cannot be named for a run to import; define it at the top level of a module"
                " (or of your script or notebook)"
            )
        if module == "__main__":
            in_process.append(f"{'model' if key == 'model.name' else 'data function'} {qualname}")
        return f"{module}:{qualname}"

    out = copy.deepcopy(study)  # a class or a function deep-copies as itself
    for key in OBJECT_KEYS:
        section, field = key.split(".")
        if isinstance(out.get(section), dict) and field in out[section]:
            out[section][field] = name_of(key, out[section][field])
        for v in out.get("variant") or []:
            if isinstance(v, dict) and key in v:
                v[key] = name_of(key, v[key])
        sweep = out.get("sweep")
        if isinstance(sweep, dict) and isinstance(sweep.get(key), list):
            sweep[key] = [name_of(key, v) for v in sweep[key]]
    return out, list(dict.fromkeys(in_process))


# What the store takes per run (its rows: a few kB per epoch; a generous round figure), bytes.
STORE_BYTES_PER_RUN = 1 << 20


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def disk_full_message(layout: StudyDir, records: list[RunRecord], exc: DiskFull) -> str:
    """What a user needs after the disk filled up mid-study: where, how much is free, about how much the runs
    still to do need (each run's checkpoint twice while it is replaced, plus its weights: measured on the
    biggest run written so far), and that a rerun resumes."""
    free = shutil.disk_usage(layout.root).free
    left = sum(r.status not in FINISHED for r in records)
    done = len(records) - left
    sizes = [
        2 * layout.checkpoint(r.run_id).stat().st_size
        + (layout.weights(r.run_id).stat().st_size if layout.weights(r.run_id).is_file() else 0)
        for r in records
        if layout.checkpoint(r.run_id).is_file()
    ]
    need = ""
    if sizes and left:
        per_run = max(sizes) + STORE_BYTES_PER_RUN
        runs = "1 run left needs" if left == 1 else f"{left} runs left need"
        need = f"; the {runs} about {fmt_bytes(left * per_run)}" + (f" ({fmt_bytes(per_run)} each)" if left > 1 else "")
    kept = f"the {done} finished run{'s' if done != 1 else ''} and every finished epoch are kept"
    return (
        f"the disk holding {layout.root} is full ({fmt_bytes(free)} free){need}: free space and run the same"
        f" command again; {kept} ({exc})"
    )


def _best_effort(trackers: list[Tracker], method: str, *args: Any) -> list[Tracker]:
    """Call ``method`` on each tracker; one that fails is reported once and left out (the study goes on;
    ``trainlab export`` can fill the gap later). Returns the trackers that did not fail. A tracker that failed
    earlier (an event, mid-study) is disabled and not called again: a dead server is waited on once at most."""
    ok = []
    for tracker in trackers:
        if getattr(tracker, "disabled", False):
            continue
        try:
            getattr(tracker, method)(*args)
            ok.append(tracker)
        except Exception as exc:  # a tracker's failure must not fail the study
            print(f"warning: {tracker.name} tracking failed and is disabled: {type(exc).__name__}: {exc}",
                  file=sys.stderr)  # fmt: skip
    return ok


def deploy_command(out_dir: Path, methods: list[str] | None) -> int:
    """``trainlab deploy OUT [--method ...]``: :func:`trainlab.deploy.deploy_study`, then the report's table,
    ``deploy/deployment.md`` and ``deploy/deployment.png``; returns 1 when a method failed or was skipped."""
    console = Console(width=max(Console().width, 160))  # the table has 13 columns
    written = deploy_study(out_dir, methods=methods, progress=lambda m: console.print(f"[dim]deploy[/] {m}"))
    if not written:
        console.print(f"no finished run with a saved model in {out_dir}: nothing to deploy")
        return 1
    write_deployment_outputs(out_dir, console)
    return 1 if any(r["status"] != "done" for r in written) else 0


def _deploy(layout: StudyDir, study: Study, datasets: DatasetCache) -> None:
    """The int8 / ONNX variants of each trained model, into the store (runs already deployed are left alone)."""
    try:
        deploy_study(layout.root, study.config.deploy, datasets=datasets, skip_deployed=True)
    except Exception as exc:  # a deployment bug must not lose the study: its runs are stored
        print(f"warning: deployment failed: {type(exc).__name__}: {exc}", file=sys.stderr)


def _report(layout: StudyDir) -> ReportPaths:
    try:
        return build_report(layout.root)
    except DiskFull:
        raise
    except Exception as exc:  # a report bug must not lose the study: the store has everything
        print(f"warning: report could not be written: {type(exc).__name__}: {exc}", file=sys.stderr)
        return ReportPaths()  # none written
