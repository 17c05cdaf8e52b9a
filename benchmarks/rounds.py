"""What a round costs: a study that runs in rounds (a TPE-tuned study: one round per trial after its first) against
the same runs in one round (quasirandom: every trial chosen at once).

Claim (issues 24 and 25): a round adds the sampler's choice and the dispatch, not a worker's start (torch and
``torch._dynamo`` imported again: ~3 s on a 2-core machine); the executor keeps its warm workers from round to
round. Method: the same tuned study of a small digits MLP (1 epoch, 1 thread), ``--trials`` trials per variant
and 2 variants, once with ``sampler = "tpe"`` and once with ``"quasirandom"``, default executor, interleaved
rounds; per round = (wall(tpe) - wall(quasirandom)) / (extra rounds). The runs are the same size either way
(their settings differ, not their work). The header prints the evidence: n, hardware, versions.

    python benchmarks/rounds.py [--trials 8] [--repeat 2]
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
from trainlab.tune import TuneConfig
from trainlab.tune.search import rounds
from trainlab.version import __version__


def study(sampler: str, trials: int) -> dict:
    return {
        "study": {"name": f"rounds_{sampler}"},
        "data": {"name": "digits", "batch_size": 64, "val_fraction": 0.2},
        "model": {"name": "mlp", "hidden": [64]},
        "train": {"epochs": 1, "threads": 1, "device": "cpu", "checkpoint": False},
        "measure": {"latency_repeats": 5, "throughput_time_s": 0.02, "mfu": False},
        "tune": {"train.lr": {"low": 1e-3, "high": 1.0, "log": True}, "trials": trials, "sampler": sampler},
        "variant": [{"name": "sgd", "train.optimizer": "sgd"}, {"name": "adam", "train.optimizer": "adam"}],
    }


def timed(spec: dict, out: Path) -> float:
    t0 = time.perf_counter()
    result = run(spec, out=out, write_report=False)
    wall = time.perf_counter() - t0
    bad = [r for r in [*result.trials, *result.records] if r.status != "done"]
    if bad:
        raise SystemExit(f"{spec['study']['name']}: {len(bad)} runs did not finish: {bad[0].error}")
    return wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=2, help="interleaved pairs")
    args = ap.parse_args()
    tpe_rounds = len(rounds(TuneConfig(params={"train.lr": [0.1]}, trials=args.trials, sampler="tpe")))
    extra = tpe_rounds - 1  # quasirandom: one round of every trial
    print("claim: a round of a study in rounds costs the sampler and the dispatch, not a worker's start (~3 s)")
    print(f"n: 2 variants x {args.trials} trials + 2 runs; tpe {tpe_rounds} trial rounds vs quasirandom 1;"
          f" {args.repeat} interleaved pair(s)")  # fmt: skip
    print(f"hardware: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; load {os.getloadavg()}")
    print(f"versions: Python {platform.python_version()}, torch {torch.__version__}, trainlab {__version__}")
    per_round = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeat):
            qr = timed(study("quasirandom", args.trials), Path(tmp) / f"qr{i}")
            tpe = timed(study("tpe", args.trials), Path(tmp) / f"tpe{i}")
            per_round.append((tpe - qr) / extra)
            print(f"pair {i + 1}: quasirandom {qr:6.2f} s, tpe {tpe:6.2f} s -> {per_round[-1]:.2f} s per extra round")
    print(f"median cost of a round: {statistics.median(per_round):.2f} s (a worker's start would be ~3 s)")


if __name__ == "__main__":
    main()
