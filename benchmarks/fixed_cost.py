"""A run's fixed cost: what one more run adds to a study's wall time beyond its own training and evaluation.

Claim (issue 24's target): on a quiet 2-core machine the marginal cost of one more 1-epoch run of a small MLP on
the embedded digits is at most 0.3 s with the default executor. Method: the same study with 1 and with N runs
(seeds 1..N), each executor in turn, interleaved rounds; marginal = (wall(N) - wall(1)) / (N - 1) minus the mean
of the runs' own time (train_time_s + eval_time_s + measure_time_s, from their records). The header prints the
evidence: n, hardware, versions. Figures are ratios and differences taken in the same run (the machine is noisy).

    python benchmarks/fixed_cost.py [--runs 16] [--rounds 1] [--executors subprocess,inline]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch

from trainlab.api import run
from trainlab.version import __version__

TARGET_S = 0.3  # issue 24: marginal cost per run on this machine, quiet
# A run's own time: its training phase, its per-epoch evaluations and its measurements after training.
OWN_TIME = ("train_time_s", "eval_time_s", "measure_time_s")


def study(runs: int) -> dict:
    return {
        "study": {"name": "fixed_cost"},
        "data": {"name": "digits", "batch_size": 64},
        "model": {"name": "mlp", "hidden": [64]},
        "train": {"epochs": 1, "lr": 0.05, "threads": 1, "device": "cpu"},
        "sweep": {"train.seed": list(range(1, runs + 1))},
    }


def timed(executor: str, runs: int, out: Path) -> tuple[float, float]:
    """(wall s of the whole study without its report, mean own time per run s)."""
    t0 = time.perf_counter()
    result = run(study(runs), out=out, executor=executor, write_report=False)
    wall = time.perf_counter() - t0
    bad = [r for r in result.records if r.status != "done"]
    if bad:
        raise SystemExit(f"{executor}: {len(bad)} runs did not finish: {bad[0].error}")
    own = [sum(r.results.get(k) or 0.0 for k in OWN_TIME) for r in result.records]
    return wall, sum(own) / len(own)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--executors", default="subprocess,inline")
    args = ap.parse_args()
    kinds = args.executors.split(",")
    print(f"claim: one more run costs <= {TARGET_S} s beyond its own training and evaluation (default executor)")
    print(f"n: studies of 1 and {args.runs} one-epoch runs, {args.rounds} interleaved round(s) per executor")
    print(f"hardware: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; load {os.getloadavg()}")
    print(f"versions: Python {platform.python_version()}, torch {torch.__version__}, trainlab {__version__}")
    marginal: dict[str, list[float]] = {k: [] for k in kinds}
    with tempfile.TemporaryDirectory() as tmp:
        for rnd in range(args.rounds):
            for kind in kinds:
                one, _ = timed(kind, 1, Path(tmp) / f"{kind}-{rnd}-1")
                many, own = timed(kind, args.runs, Path(tmp) / f"{kind}-{rnd}-n")
                m = (many - one) / (args.runs - 1) - own
                marginal[kind].append(m)
                print(f"{kind:>10}: wall 1 run {one:6.2f} s, {args.runs} runs {many:6.2f} s; own time per run"
                      f" {own:.3f} s; marginal fixed cost per run {m:.3f} s")  # fmt: skip
    for kind, ms in marginal.items():
        med = statistics.median(ms)
        verdict = "meets" if med <= TARGET_S else "misses"
        print(f"{kind:>10}: median marginal fixed cost {med:.3f} s per run ({verdict} the {TARGET_S} s target)")


if __name__ == "__main__":
    main()
