"""trainlab's epoch vs a bare hand-written loop on one GPU, for each precision / layout / capture mode.

For ResNet-18 (CIFAR stem) on CIFAR-shaped synthetic data, at batch 128 and 512, in one process:

- the floor: a bare training step on static device tensors (forward, loss, backward, SGD momentum step) in
  the same numerics — eager, or captured whole in one CUDA graph for the graph mode — timed with CUDA events
  over many steps, times the number of steps of an epoch;
- trainlab: the same model, optimizer and numerics through ``execute_run`` (resident loader with crop + flip
  augmentation on the GPU), the mean epoch time of epochs 2.. (epoch 1 carries cuDNN autotuning).

It prints one row per (mode, batch) with both times and the ratio trainlab / floor (target for bf16 +
channels_last + CUDA graph at batch 128: <= 1.15). Needs CUDA; exits with a message without it.

    python benchmarks/gpu_step.py [--batches 128 512] [--steps 100] [--epochs 3]
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time

import torch
from torch import nn

from trainlab.engine.events import EpochEnded, EpochRow
from trainlab.engine.loop import execute_run
from trainlab.engine.precision import precision_scope
from trainlab.models import ModelConfig, build_model
from trainlab.study import load_study

MODES = {  # name: (precision, channels_last, compile)
    "fp32": ("fp32", False, "none"),
    "tf32": ("tf32", False, "none"),
    "bf16": ("bf16", False, "none"),
    "bf16+cl": ("bf16", True, "none"),
    "bf16+cl+graph": ("bf16", True, "cuda-graph"),
}


def floor_step_ms(precision: str, channels_last: bool, graph: bool, batch: int, steps: int) -> float:
    """Milliseconds per bare training step on static tensors (CUDA events over ``steps`` steps)."""
    dev = torch.device("cuda")
    torch.manual_seed(0)
    model = build_model(ModelConfig(name="resnet18"), (3, 32, 32), 10).to(dev)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    x = torch.randn(batch, 3, 32, 32, device=dev).contiguous(memory_format=fmt)
    y = torch.randint(0, 10, (batch,), device=dev)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)

    def autocast() -> contextlib.AbstractContextManager:
        return torch.autocast("cuda", dtype=dtype) if dtype else contextlib.nullcontext()

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        with autocast():
            loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()

    with precision_scope(precision, dev):
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(5):
                step()
        torch.cuda.current_stream().wait_stream(side)
        run = step
        if graph:
            g = torch.cuda.CUDAGraph()
            opt.zero_grad(set_to_none=True)
            with torch.cuda.graph(g):
                with autocast():
                    loss = nn.functional.cross_entropy(model(x), y)
                loss.backward()
                opt.step()
            run = g.replay
        for _ in range(5):
            run()
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(steps):
            run()
        end.record()
        torch.cuda.synchronize()
        return start.elapsed_time(end) / steps


def trainlab_epoch_s(precision: str, channels_last: bool, compile_mode: str, batch: int, samples: int,
                     epochs: int) -> tuple[float, int, float | None]:  # fmt: skip
    """(mean epoch time of epochs 2.., steps per epoch, gpu_busy_share) of trainlab on the same work."""
    study = {
        "study": {"name": "gpu_step"},
        "data": {"name": "synthetic", "shape": [3, 32, 32], "num_classes": 10, "train_size": samples,
                 "test_size": 1000, "batch_size": batch, "normalize": True,
                 "augment": {"crop_padding": 4, "hflip": True}},
        "model": {"name": "resnet18"},
        "train": {"epochs": epochs, "optimizer": "sgd", "lr": 0.1, "momentum": 0.9, "weight_decay": 5e-4,
                  "device": "cuda", "precision": precision, "channels_last": channels_last,
                  "compile": compile_mode, "checkpoint": False},
        "measure": {"mfu": False, "infer_batch1": False, "latency_repeats": 5, "throughput_time_s": 0.05},
    }  # fmt: skip
    rows: list[EpochRow] = []
    out = execute_run(load_study(study).runs[0], emit=lambda e: isinstance(e, EpochEnded) and rows.append(e.row))
    if out.status != "done":
        raise SystemExit(f"trainlab run failed ({precision}, {compile_mode}): {out.error}")
    later = [r.epoch_time_s for r in rows[1:]] or [rows[0].epoch_time_s]
    return sum(later) / len(later), rows[-1].steps, out.results.get("gpu_busy_share")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", type=int, nargs="+", default=[128, 512])
    ap.add_argument("--steps", type=int, default=100, help="timed bare steps per measurement")
    ap.add_argument("--epochs", type=int, default=3, help="trainlab epochs per run (the first is not counted)")
    ap.add_argument("--samples", type=int, default=12_800, help="training samples per trainlab epoch")
    ap.add_argument("--modes", nargs="+", default=list(MODES), choices=list(MODES))
    args = ap.parse_args()
    if not torch.cuda.is_available():
        sys.exit("gpu_step.py needs a CUDA GPU (none here)")
    print(f"{torch.cuda.get_device_name()} | torch {torch.__version__} | ResNet-18 CIFAR stem, SGD momentum")
    print(f"{'mode':<15} {'batch':>5} {'floor ms/step':>13} {'floor s/epoch':>13} {'trainlab s/epoch':>16}"
          f" {'ratio':>6} {'GPU busy':>8}")  # fmt: skip
    for batch in args.batches:
        for name in args.modes:
            precision, cl, mode = MODES[name]
            t0 = time.perf_counter()
            step_ms = floor_step_ms(precision, cl, mode == "cuda-graph", batch, args.steps)
            epoch_s, steps, busy = trainlab_epoch_s(precision, cl, mode, batch, args.samples, args.epochs)
            floor_epoch = step_ms * steps / 1e3
            busy_text = f"{busy * 100:.0f}%" if busy is not None else "—"
            took = time.perf_counter() - t0
            print(f"{name:<15} {batch:>5} {step_ms:>13.2f} {floor_epoch:>13.3f} {epoch_s:>16.3f}"
                  f" {epoch_s / floor_epoch:>6.2f} {busy_text:>8}   ({took:.0f} s)", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
