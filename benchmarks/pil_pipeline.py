"""PIL pipeline benchmark: data time per epoch of the DataLoader path, ``pipeline = "tensor"`` vs ``"pil"``.

Workload: a CIFAR-shaped random set (``--n`` x 3 x 32 x 32 uint8, ten classes), random crop 32 with padding 4,
horizontal flip, normalisation: the standard CIFAR training augmentation. ``tensor`` applies it by tensor
indexing per sample (:class:`trainlab.data.dataloader.SampleDataset`); ``pil`` as torchvision users write it,
PIL image per sample (:class:`trainlab.data.pil.PilSampleDataset`).

Each configuration (pipeline x workers) builds the training loader ``make_loaders`` builds and iterates it for
``--epochs`` epochs with the training loop's clock (:class:`trainlab.measure.clock.EpochClock`; the loop body
does no compute, so the figure is the loader's full cost). The first epoch includes worker start-up and is shown
apart; the figure is the median of the others. Ratios are against ``pipeline = tensor, workers = 0`` of the
same run.

Usage: python benchmarks/pil_pipeline.py [--n 10000] [--epochs 3] [--batch-size 128] [--workers 0 2] [--threads N]
"""

from __future__ import annotations

import argparse
import os
import statistics

import torch
from input_pipeline import cifar_shaped, data_times  # the sibling benchmark: same data and clock

from trainlab.config import DataConfig
from trainlab.engine.runtime import tune_allocator


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=10_000, help="training samples (CIFAR-10 has 50,000)")
    p.add_argument("--epochs", type=int, default=3, help="epochs per configuration; the first is warm-up")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--workers", type=int, nargs="+", default=[0, 2], help="DataLoader worker counts")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's choice)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    tuned = tune_allocator()  # what each run's process does (trainlab.engine.runtime)
    device = torch.device("cpu")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"torch {torch.__version__}, {os.cpu_count()} CPUs, {torch.get_num_threads()} torch threads, load average"
        f" {load:.2f} at start, allocator tuned: {tuned}"
    )
    ds = cifar_shaped(args.n)
    print(f"CIFAR-shaped: {args.n:,} x 3x32x32, crop 32 pad 4, flip, normalise; batch {args.batch_size}")
    print(f"  {'pipeline':<8} {'workers':>7} {'epoch 1 s':>10} {'data s/epoch':>12} {'us/sample':>10} {'ratio':>7}")
    base: float | None = None
    for pipeline in ("tensor", "pil"):
        for w in args.workers:
            extra = {"persistent_workers": True} if w > 0 else {}
            cfg = DataConfig(
                name="synthetic",
                batch_size=args.batch_size,
                loader="dataloader",
                pipeline=pipeline,
                num_workers=w,
                augment={"crop_padding": 4, "hflip": True},
                **extra,
            )
            per_epoch = data_times(ds, cfg, args.epochs, device)
            steady = statistics.median(per_epoch[1:]) if len(per_epoch) > 1 else per_epoch[0]
            base = steady if base is None else base  # the first row: tensor, the first worker count
            print(
                f"  {pipeline:<8} {w:>7} {per_epoch[0]:>10.3f} {steady:>12.3f} {steady / args.n * 1e6:>10.1f}"
                f" {steady / base:>6.2f}x",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
