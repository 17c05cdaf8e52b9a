"""Deployment study on the real MNIST: train simple_cnn, then compare float, int8 dynamic, int8 static and ONNX.

Usage: ``python benchmarks/deploy_mnist.py [--root DIR] [--out DIR] [--epochs N] [--threads N] [--model NAME]``.
Prints the deployment table (saved size, memory, batch-1 latency p50/p90/p99, throughput at batch 256, test
accuracy, differences against float) and checks the issue's bar for static int8: saved at least 3.5x smaller,
test accuracy within 1 point of float. Exit code 0 when the bar is met.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_ROOT = REPO.parent / "shared" / "data" / "mnist" / "raw"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=str(DEFAULT_ROOT), help="folder of the official MNIST files")
    parser.add_argument("--out", default="runs/deploy_mnist", help="output folder of the study")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads while measuring (default 1)")
    parser.add_argument("--model", default="simple_cnn")
    parser.add_argument("--no-compile", action="store_true", help="measure the eager int8 reference graphs")
    args = parser.parse_args(argv)

    from rich.console import Console

    from trainlab.api import run
    from trainlab.report.deployment import deployment_rows, markdown_table, plot_deployment, print_table
    from trainlab.store import Store

    study = {
        "study": {"name": "deploy_mnist", "description": "float vs int8 (dynamic, static) vs ONNX on MNIST"},
        "data": {"name": "mnist", "root": args.root, "download": False, "normalize": True, "batch_size": 64},
        "model": {"name": args.model},
        "train": {"epochs": args.epochs, "optimizer": "adam", "lr": 1e-3, "seed": 0, "device": "cpu"},
        "measure": {"infer_batch1": False, "latency_repeats": 50},
        "deploy": {
            "methods": ["dynamic", "static", "onnx"],
            "calibration_batches": 10,
            "threads": args.threads,
            "compile": not args.no_compile,
        },
    }
    t0 = time.perf_counter()
    result = run(study, out=args.out, isolate=False, write_report=False)
    print(f"study and deployment took {time.perf_counter() - t0:.0f} s -> {result.out_dir}")
    rows = deployment_rows(Store(Path(args.out) / "trainlab.db"))
    print_table(rows, Console(width=170))
    print()
    print(markdown_table(rows))
    plot = plot_deployment(rows, Path(args.out) / "deploy" / "deployment.png")
    print(f"plot: {plot}")

    by_method = {r["method"]: r for r in rows}
    static = by_method.get("static")
    if static is None or static["status"] != "done":
        print(f"static: not done ({static and static['error']})")
        return 1
    ok_size = static["size_ratio"] >= 3.5
    ok_acc = abs(static["d_acc_points"]) <= 1.0
    print(
        f"static int8: saved {static['size_ratio']:.2f}x smaller (bar 3.5x: {'met' if ok_size else 'NOT met'}),"
        f" accuracy {static['d_acc_points']:+.2f} points (bar ±1: {'met' if ok_acc else 'NOT met'})"
    )
    return 0 if ok_size and ok_acc else 1


if __name__ == "__main__":
    sys.exit(main())
