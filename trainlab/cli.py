"""The ``trainlab`` command: argument parsing only; every command calls a library function.

Exit codes: 0 success; 1 the study finished but some runs failed (the report says which and why), or it stopped
because the disk filled up (what finished is stored; the same command resumes); 2 a usage, configuration or data
error (nothing was run); 130 interrupted.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from trainlab.errors import TrainlabError
from trainlab.layout import StudyDir
from trainlab.names import DEFAULT_FORMATS, DEPLOY_METHODS, EXECUTORS, FORMATS, TRACKERS
from trainlab.version import __version__

# The commands' own modules are imported inside each command (marked "deferred"): they pull in torch (~2 s)
# and matplotlib, which `trainlab --help`, `--version` and a mistyped argument do not need.

EXIT_OK, EXIT_RUNS_FAILED, EXIT_USAGE = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    """argparse exits with 2 on a usage error already; keep its message but point to --help."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n(see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The ``trainlab`` argument parser; choices come from the registries and the schema, not from copies."""
    p = _Parser(prog="trainlab", description="An experiment bench for neural-network training.")

    p.add_argument("--version", action="version", version=f"trainlab {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    r = sub.add_parser("run", help="run a study file (or recipe:NAME) and write its report")
    r.add_argument("study", help="study TOML file, or recipe:NAME for a shipped recipe")
    r.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a key, e.g. --set train.lr=0.05 (repeatable)",
    )
    r.add_argument("--out", help="output folder (default: runs/<study name>)")
    r.add_argument("--quiet", "-q", action="store_true", help="no progress display")
    r.add_argument(
        "--executor",
        choices=list(EXECUTORS),
        default=None,
        help="where runs execute: subprocess (default: warm worker processes, one run at a time each), inline"
        " (this process), or ray"
        " (each run a task on a Ray cluster; needs trainlab[ray])",
    )
    r.add_argument(
        "--address",
        help="with --executor ray: the cluster's address (e.g. 10.0.0.5:6379); default: Ray's own rules"
        " (RAY_ADDRESS, a running local cluster, else a new local one)",
    )
    r.add_argument(
        "--track",
        action="append",
        choices=list(TRACKERS),
        help="send the study live to an experiment tracker (repeatable; needs trainlab[mlflow] / [tensorboard])",
    )
    r.add_argument("--tracking-uri", help="MLflow tracking URI (default: MLFLOW_TRACKING_URI, else <out>/mlflow.db)")
    r.add_argument(
        "--storage",
        help="folder every node can reach for checkpoints and trained weights (default: the output folder)",
    )
    r.add_argument(
        "--inline",
        action="store_true",
        help="run in this process instead of worker processes (debugging); same as --executor inline",
    )
    r.add_argument(
        "--smoke",
        action="store_true",
        help="tiny generated stand-in of the dataset, one short epoch per variant",
    )
    r.add_argument(
        "--jobs",
        "-j",
        default="1",
        metavar="N|auto",
        help="runs side by side on this machine, each pinned to its own CPUs (auto: CPUs / train.threads); default 1",
    )
    r.add_argument("--no-download", action="store_true", help="never fetch a missing dataset")

    rep = sub.add_parser("report", help="rebuild a study's report from its store (no training)")
    rep.add_argument("out", help="the study's output folder (holding trainlab.db)")
    rep.add_argument(
        "--format",
        action="append",
        choices=list(FORMATS),
        help=f"formats to write (default: {', '.join(DEFAULT_FORMATS)}); repeatable",
    )
    rep.add_argument("--to", help="write the report files to this folder (default: the study's output folder)")

    cmp_ = sub.add_parser("compare", help="one table across two studies' matching variants")
    cmp_.add_argument("a", help="first study's output folder")
    cmp_.add_argument("b", help="second study's output folder")
    cmp_.add_argument("--out", help="write the comparison (Markdown) to this file too")

    sch = sub.add_parser("schema", help="print the JSON schema of study files (for editors)")
    sch.add_argument("--out", help="write to this file instead of stdout")

    val = sub.add_parser("check", help="validate a study file and list its runs, without running")
    val.add_argument("study")
    val.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")

    prof = sub.add_parser("profile", help="layer table, params, MACs, sizes of a model or of a study's variants")
    prof.add_argument("target", help="a model name (e.g. simple_cnn), package.module:Class, or a study file")
    prof.add_argument(
        "--input", help="input shape CxHxW or F (e.g. 1x28x28); required for a model, from the data for a study"
    )
    prof.add_argument("--classes", type=int, default=None, help="number of classes (default 10; a study: its data)")
    prof.add_argument(
        "--optimizer", default=None, help="optimizer for the one-step non-zero-gradient count (default sgd)"
    )
    prof.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="model keyword (model.dropout=0.5) or study override",
    )
    prof.add_argument("--json", action="store_true", help="print one JSON object")

    data = sub.add_parser("data", help="list datasets or fetch one")
    dsub = data.add_subparsers(dest="data_command", metavar="ACTION", parser_class=_Parser)
    dsub.add_parser("list", help="each dataset, where it looks, and whether it is present")
    get = dsub.add_parser("get", help="download a dataset (checksummed, resumable)")
    get.add_argument("name")
    get.add_argument("--root", help="folder to put it in (default: the dataset's default root)")

    exp = sub.add_parser("export", help="send a study (finished or running) to MLflow or TensorBoard from its store")
    exp.add_argument("out", help="the study's output folder (holding trainlab.db)")
    exp.add_argument("--to", action="append", required=True, choices=list(TRACKERS), help="tracker (repeatable)")
    exp.add_argument("--tracking-uri", help="MLflow tracking URI (default: MLFLOW_TRACKING_URI, else <out>/mlflow.db)")

    sub.add_parser("recipes", help="list the shipped recipes")
    sub.add_parser("models", help="list the registered models and their parameters")

    dep = sub.add_parser("deploy", help="quantize / export a study's trained models and compare them")
    dep.add_argument("out", help="the study's output folder")
    dep.add_argument(
        "--method",
        action="append",
        choices=list(DEPLOY_METHODS),
        help="deployment variants (default: from the study's [deploy] section, else all)",
    )
    return p


def entry() -> None:
    """The ``trainlab`` console script: :func:`main`, then a quick exit.

    After a command returns, everything it wrote is closed and flushed; Python's own teardown would then free
    torch's, matplotlib's and the study's objects one by one (about 1 s on a 2-core machine, after a 5 s smoke
    run). The exit handlers run and the streams are flushed, then the process ends without that teardown. An
    exception from the command (a bug) still ends with its traceback, the normal way."""
    try:
        code = main()
        atexit._run_exitfuncs()  # what a normal exit runs first (trackers, multiprocessing, logging)
        sys.stdout.flush()
    except BrokenPipeError:  # `trainlab check ... | head`: the reader left; not an error of the command
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so no flush at exit fails again
        code = 0
    sys.stderr.flush()
    os._exit(code)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return EXIT_USAGE
    try:
        return COMMANDS[args.command](args)
    except TrainlabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted: finished runs are stored; run the same command again to resume", file=sys.stderr)
        return 130


def cmd_run(args: argparse.Namespace) -> int:
    executor = args.executor or ("inline" if args.inline else None)
    if executor in (None, "subprocess"):
        # The first worker warms up (torch, torch._dynamo: ~4 s) while this process imports torch and checks the
        # study (~3 s), instead of after it; pool imports no torch.
        from trainlab.engine.pool import prestart_for_command

        prestart_for_command(args.jobs)
    from trainlab.api import run  # deferred: see the note at the top
    from trainlab.engine.progress import RichReporter  # deferred: see the note at the top
    from trainlab.study import smoke_overrides  # deferred: see the note at the top

    overrides: list[str] | dict = list(args.overrides)
    if args.no_download:
        overrides.append("data.download=false")
    if args.smoke:
        overrides = smoke_overrides(args.study, overrides)
    if args.quiet:
        reporter = None
    else:
        reporter = RichReporter()
    result = run(
        args.study, overrides, args.out, reporter=reporter, executor=executor, address=args.address,
        jobs=args.jobs, storage=args.storage, track=args.track, tracking_uri=args.tracking_uri,
    )  # fmt: skip
    if args.quiet:
        report = result.report_paths.html
        print(f"{len(result.records)} runs, {len(result.failed)} failed; report: {report or result.out_dir}")
    return result.exit_code


def cmd_report(args: argparse.Namespace) -> int:
    from trainlab.report import build_report  # deferred: see the note at the top

    out = Path(args.out)
    StudyDir(out).require_db()
    paths = build_report(out, formats=args.format, dest=args.to)
    for kind, path in paths.written().items():
        print(f"{kind:>6}: {path}")
    return EXIT_OK


def cmd_compare(args: argparse.Namespace) -> int:
    from trainlab.report.compare import compare_command  # deferred: see the note at the top

    return compare_command(Path(args.a), Path(args.b), Path(args.out) if args.out else None)


def cmd_schema(args: argparse.Namespace) -> int:
    from trainlab.config import json_schema  # deferred: see the note at the top

    text = json.dumps(json_schema(), indent=2)
    if args.out:
        Path(args.out).write_text(text + "\n")
        print(f"schema written to {args.out}")
    else:
        print(text)
    return EXIT_OK


def cmd_check(args: argparse.Namespace) -> int:
    from trainlab.measure.sequential import START  # deferred: see the note at the top
    from trainlab.study import load_study  # deferred: see the note at the top

    study = load_study(args.study, args.overrides)
    cfg = study.config
    if cfg.repeats == "auto":  # the rounds decide how many of them run (docs/study-file.md)
        first = sum(1 for r in study.runs if r.repeat < START)
        print(f"study '{study.name}': {first} to {len(study.runs)} runs (repeats = auto: {START} seeds per variant,"
              f" then more for the verdict's pair until settled, at most {cfg.max_repeats}),"
              f" baseline '{study.baseline}'")  # fmt: skip
    else:
        print(f"study '{study.name}': {len(study.runs)} runs, baseline '{study.baseline}'")
    if cfg.tune is not None:  # the trials come first; the runs' ids follow from the settings they choose
        variants = len({r.variant for r in study.runs})
        spaces = "; ".join(f"{k} {_space(v)}" for k, v in cfg.tune.params.items())
        pruned = ", median pruning" if cfg.tune.prune == "median" else ""
        print(f"  after {variants} x {cfg.tune.trials} tuning trials ({cfg.tune.sampler}{pruned}, on the validation"
              f" split only): {spaces}; each variant's runs use its best trial's settings")  # fmt: skip
    for r in study.runs:
        over = ", ".join(f"{k}={v}" for k, v in r.overrides.items()) or "(base config)"
        ident = "(tuned)" if cfg.tune is not None else r.run_id
        print(f"  {ident:<16}  {r.variant:<30} seed {r.seed:<4} {over}")
    return EXIT_OK


def _space(space: Any) -> str:
    """A [tune] range or choice as ``check`` prints it: ``0.0001 to 1 (log)``, ``one of [32, 64]``."""
    if isinstance(space, list):
        return f"one of {space}"
    scale = " (log)" if space.log else ""
    return f"{space.low:g} to {space.high:g}{scale}" + (" (integer)" if space.integer else "")


def cmd_profile(args: argparse.Namespace) -> int:
    from trainlab.profiling import profile_command  # deferred: see the note at the top

    return profile_command(args)


def cmd_data(args: argparse.Namespace) -> int:
    from trainlab.data.commands import data_get, data_list  # deferred: see the note at the top

    if args.data_command == "get":
        return data_get(args.name, args.root)
    return data_list()


def cmd_export(args: argparse.Namespace) -> int:
    from trainlab.track import export  # deferred: see the note at the top

    counts = export(Path(args.out), args.to, args.tracking_uri)  # a tracker it cannot reach: TrackingError
    for tracker, done in counts.items():
        where = (
            Path(args.out) / "tensorboard" if tracker == "tensorboard" else (args.tracking_uri or "the MLflow store")
        )
        n, new = done.sent, done.updated
        if n == 0:
            what = "no run exported (none of its runs has started yet)"
        elif new == 0:
            what = f"nothing new: it holds all {n} run{'' if n == 1 else 's'} already"
        elif new < n:
            what = f"{new} of {n} runs exported (the others it held already)"
        else:
            what = f"{n} run{'' if n == 1 else 's'} exported"
        print(f"{tracker}: {what} -> {where}")
    return EXIT_OK


def cmd_recipes(args: argparse.Namespace) -> int:
    from trainlab.study import list_recipes  # deferred: see the note at the top

    for name, desc in list_recipes():
        print(f"{name:<28} {desc}")
    return EXIT_OK


def cmd_models(args: argparse.Namespace) -> int:
    from trainlab.models import registry  # deferred: see the note at the top

    for name, entry in sorted(registry().items()):
        keys = ", ".join(entry.params.model_fields) or "(no parameters)"
        print(f"{name:<20} {entry.description}\n{'':<20} keys: {keys}")
    return EXIT_OK


def cmd_deploy(args: argparse.Namespace) -> int:
    from trainlab.api import deploy_command  # deferred: see the note at the top

    return deploy_command(Path(args.out), args.method)


COMMANDS = {
    "run": cmd_run,
    "report": cmd_report,
    "compare": cmd_compare,
    "schema": cmd_schema,
    "check": cmd_check,
    "profile": cmd_profile,
    "data": cmd_data,
    "export": cmd_export,
    "recipes": cmd_recipes,
    "models": cmd_models,
    "deploy": cmd_deploy,
}


if __name__ == "__main__":
    raise SystemExit(main())
