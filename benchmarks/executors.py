"""Executors compared: 8 short one-thread runs, one at a time in child processes vs on a 2-worker Ray cluster.

Starts a Ray cluster on 127.0.0.1 (a head that only schedules and two one-CPU worker nodes), runs the same
study with ``--executor subprocess`` and ``--executor ray``, and prints the wall times, the runs' own time
(training and measurement, from their records), each executor's overhead per run, and the scaling efficiency
of Ray with 2 workers: subprocess wall / (2 x Ray wall) — 1.0 is a perfect 2x. Target >= 0.8 here.

    python benchmarks/executors.py [--runs 8] [--epochs 3] [--train-size 2000]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # one machine: everything on 127.0.0.1
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

from trainlab.api import run


def study(runs: int, epochs: int, train_size: int) -> dict:
    return {
        "study": {"name": "executors"},
        "data": {"name": "synthetic", "shape": [1, 16, 16], "train_size": train_size, "test_size": 500,
                 "batch_size": 32},
        "model": {"name": "mlp", "hidden": [256, 256]},
        "train": {"epochs": epochs, "lr": 0.05, "seed": 1, "threads": 1, "device": "cpu"},
        "measure": {"latency_repeats": 20, "throughput_time_s": 0.1, "infer_limit": 100, "mfu": False},
        "sweep": {"train.seed": list(range(1, runs + 1))},
    }  # fmt: skip


def timed(kind: str, spec: dict, out: Path, address: str | None = None) -> tuple[float, float]:
    """(wall s, sum of the runs' own time: training plus the batch-1 inference pass, s). The rest of a run's
    wall time — process or worker start, data loading, profiling, latency and throughput measurement, the
    executor's dispatch — is its overhead here."""
    t0 = time.perf_counter()
    result = run(spec, out=out, executor=kind, address=address, write_report=False)
    wall = time.perf_counter() - t0
    bad = [r for r in result.records if r.status != "done"]
    if bad:
        raise SystemExit(f"{kind}: {len(bad)} runs did not finish: {bad[0].error}")
    own = sum(r.results["train_time_s"] + r.results.get("infer_total_s", 0.0) for r in result.records)
    return wall, own


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=8)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--train-size", type=int, default=2000)
    args = ap.parse_args()
    import ray  # deferred: after the environment above is set
    from ray.cluster_utils import Cluster

    spec = study(args.runs, args.epochs, args.train_size)
    local = {"node_ip_address": "127.0.0.1", "include_dashboard": False}
    with tempfile.TemporaryDirectory() as tmp:
        sub_wall, sub_own = timed("subprocess", spec, Path(tmp) / "subprocess")
        t0 = time.perf_counter()
        cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, **local})
        for _ in range(2):
            cluster.add_node(num_cpus=1, **local)
        ray.init(address=cluster.address, include_dashboard=False, log_to_driver=False)
        startup = time.perf_counter() - t0
        try:
            ray_wall, ray_own = timed("ray", spec, Path(tmp) / "ray", cluster.address)
        finally:
            ray.shutdown()
            cluster.shutdown()
    n = args.runs
    print(f"{n} runs x {args.epochs} epochs, MLP on {args.train_size} samples, one thread each, {os.cpu_count()} cores")
    print(f"subprocess (one at a time): wall {sub_wall:6.1f} s | runs' own time {sub_own:6.1f} s | "
          f"overhead {(sub_wall - sub_own) / n:5.2f} s/run")  # fmt: skip
    print(f"ray, 2 workers:             wall {ray_wall:6.1f} s | runs' own time {ray_own:6.1f} s | "
          f"overhead {(2 * ray_wall - ray_own) / n:5.2f} worker-s/run | cluster start {startup:.1f} s")  # fmt: skip
    print(f"scaling efficiency (subprocess wall / (2 x ray wall)): {sub_wall / (2 * ray_wall):.2f}  (ideal 1.0)")


if __name__ == "__main__":
    main()
