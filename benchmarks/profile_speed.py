"""How long profiling a model takes: ResNet-18 (CIFAR stem) on 3x32x32, 10 classes. Target: under 2 s.

Prints the one-time import of ``torch._dynamo`` (PyTorch imports it lazily on the first ``TorchDispatchMode``
such as ``FlopCounterMode``, and equally when the first optimizer is built, so every training run pays it
once anyway), the first profile in the process, and the median of the following calls, with the machine's load
for context.
The figures include everything ``profile_model`` does: meta-device MAC count, one real training step at
batch 2 for ``train_flops_per_sample`` and ``nonzero_grads``, the in-memory and serialised sizes.

Usage: ``.venv/bin/python benchmarks/profile_speed.py [--repeats 5] [--model resnet18] [--input 3x32x32]``
"""

from __future__ import annotations

import argparse
import importlib
import os
import statistics
import time

import torch

from trainlab.config import ModelConfig
from trainlab.measure.complexity import profile_model
from trainlab.models import build_model
from trainlab.profiling import parse_input_shape

TARGET_S = 2.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="resnet18")
    ap.add_argument("--input", default="3x32x32")
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--optimizer", default="sgd")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's choice)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    shape = parse_input_shape(args.input)
    torch.manual_seed(0)
    model = build_model(ModelConfig(name=args.model), shape, args.classes)

    # The one-time import that the first FlopCounterMode (and equally the first optimizer built in a process)
    # triggers, timed on its own so the first profile below shows the profiler's own cost.
    t0 = time.perf_counter()
    importlib.import_module("torch._dynamo")
    dynamo_import = time.perf_counter() - t0
    t0 = time.perf_counter()
    prof = profile_model(model, shape, args.classes, optimizer=args.optimizer)
    first = time.perf_counter() - t0
    times, cpu = [], []
    for _ in range(args.repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        profile_model(model, shape, args.classes, optimizer=args.optimizer)
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    t0 = time.perf_counter()
    profile_model(model, shape, args.classes, optimizer=None)
    no_step = time.perf_counter() - t0

    med = statistics.median(times)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"{args.model} on {args.input}, {args.classes} classes: {prof.params:,} params, {prof.macs:,} MACs")
    print(f"machine: {os.cpu_count()} cores, torch threads {torch.get_num_threads()}, load average (1 min) {load:.2f}")
    print(f"one-time torch._dynamo import {dynamo_import:6.3f} s   (paid once per process by any optimizer too)")
    print(f"first call (fresh process)   {first:7.3f} s   (after that import)")
    print(f"median of {args.repeats} later calls     {med:7.3f} s   (min {min(times):.3f}, max {max(times):.3f})")
    # CPU seconds used by this process (all threads): unlike wall time, barely affected by other processes.
    print(f"median CPU time per call     {statistics.median(cpu):7.3f} s   (all threads of this process)")
    print(f"without the training step    {no_step:7.3f} s   (optimizer=None: counts on the meta device only)")
    verdict = "OK" if med < TARGET_S else "SLOWER THAN TARGET"
    print(f"target < {TARGET_S:.0f} s per profile (median): {verdict}")


if __name__ == "__main__":
    main()
