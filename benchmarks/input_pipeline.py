"""Input-pipeline benchmark: data time per epoch of the resident loader vs torch's DataLoader.

Two workloads:

- MNIST (the real files, 60,000 x 1 x 28 x 28): normalisation only, the classic ToTensor + Normalize pipeline;
- a CIFAR-shaped random set (50,000 x 3 x 32 x 32 uint8): random crop 32 with padding 4, horizontal flip,
  normalisation (the standard CIFAR training augmentation).

For each, the training loader that ``trainlab.data.loaders.make_loaders`` builds is timed with the training
loop's own clock (:class:`trainlab.measure.clock.EpochClock`): data time is the wait in ``next()``; the loop body
only moves the batch to the device (a no-op on CPU), so there is no compute to overlap with and the figure is
the loader's full cost. Loaders: ``resident`` and ``dataloader`` (a per-sample Dataset applying the same
transforms with the same random draws) with 0, 1 and 2 workers (persistent workers, default prefetching).
Each configuration runs ``--epochs`` epochs; the first is warm-up (worker start-up, first-touch page faults)
and the figure is the median of the others. The ratio is the best DataLoader setting's time divided by
resident's. Target (issue 3): resident at least 20x faster than the best DataLoader setting on both.

Usage: python benchmarks/input_pipeline.py [MNIST_RAW_DIR] [--epochs 3] [--batch-size 512] [--threads N]
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import time
from pathlib import Path

import torch

from trainlab.engine.runtime import tune_allocator

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from trainlab.config import DataConfig  # noqa: E402
from trainlab.data import load_dataset  # noqa: E402
from trainlab.data.base import Dataset, Split  # noqa: E402
from trainlab.data.loaders import make_loaders  # noqa: E402
from trainlab.data.normalize import channel_stats  # noqa: E402
from trainlab.errors import DataError  # noqa: E402
from trainlab.measure.clock import EpochClock  # noqa: E402

DEFAULT_MNIST = REPO / ".." / "shared" / "data" / "mnist" / "raw"
TARGET_RATIO = 20.0


def cifar_shaped(n: int = 50_000, seed: int = 0) -> Dataset:
    """Random uint8 images of CIFAR's shape, ten classes; normalisation statistics from the training split."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g)  # (N, 3, 32, 32) uint8
    y = torch.randint(0, 10, (n,), generator=g)
    ds = Dataset("cifar_shaped", Split(x, y), Split(x[:1000], y[:1000]), [str(i) for i in range(10)])
    ds.mean, ds.std = channel_stats(x)
    return ds


def data_times(ds: Dataset, cfg: DataConfig, epochs: int, device: torch.device) -> list[float]:
    """Data time (s) of each epoch of the training loader built for ``cfg``."""
    train, _ = make_loaders(cfg, ds, device, seed=0)
    clock = EpochClock(device)
    out = []
    for epoch in range(1, epochs + 1):
        train.set_epoch(epoch)
        clock.start()
        samples = 0
        for x, y in clock.batches(train):
            clock.compute_start()
            x = x.to(device, non_blocking=True)
            y = y.to(device, non_blocking=True)
            samples += len(y)
            clock.compute_end()
        times = clock.stop()
        assert samples == len(ds.train), (samples, len(ds.train))
        out.append(times.data_time_s)
    del train, x, y
    gc.collect()  # ends persistent workers before the next configuration is timed
    return out


def bench(title: str, ds: Dataset, base: dict, args: argparse.Namespace, device: torch.device) -> float:
    """Print one workload's table; return the ratio best-DataLoader / resident."""
    print(f"\n{title}: {len(ds.train):,} x {'x'.join(map(str, ds.input_shape))}, batch {args.batch_size}")
    print(f"  {'loader':<24} {'data s/epoch':>12}  {'epochs (s)':<40}")
    rows = [("resident", {"loader": "resident"})]
    for w in args.workers:
        extra = {"persistent_workers": True} if w > 0 else {}
        rows.append((f"dataloader workers={w}", {"loader": "dataloader", "num_workers": w, **extra}))
    results = {}
    for label, opts in rows:
        cfg = DataConfig(name="synthetic", batch_size=args.batch_size, **base, **opts)
        per_epoch = data_times(ds, cfg, args.epochs, device)
        steady = statistics.median(per_epoch[1:]) if len(per_epoch) > 1 else per_epoch[0]
        results[label] = steady
        shown = ", ".join(f"{t:.3f}" for t in per_epoch)
        print(f"  {label:<24} {steady:>12.4f}  [{shown}]", flush=True)
    best_label = min((k for k in results if k != "resident"), key=results.__getitem__)
    ratio = results[best_label] / results["resident"]
    for label, t in results.items():
        if label != "resident":
            print(f"  ratio {label:<18} {t / results['resident']:>8.1f}x resident")
    verdict = "meets" if ratio >= TARGET_RATIO else "misses"
    print(f"  => resident is {ratio:.1f}x faster than the best DataLoader ({best_label}); {verdict} the 20x target")
    return ratio


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("mnist", nargs="?", default=str(DEFAULT_MNIST), help="folder with the MNIST IDX files")
    p.add_argument("--epochs", type=int, default=3, help="epochs per configuration; the first is warm-up")
    p.add_argument("--batch-size", type=int, default=512)
    p.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2], help="DataLoader worker counts")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's choice)")
    p.add_argument("--cifar-n", type=int, default=50_000, help="size of the CIFAR-shaped set")
    p.add_argument("--skip-mnist", action="store_true")
    p.add_argument(
        "--default-allocator", action="store_true", help="keep glibc's defaults (runs use trainlab.runtime's tuning)"
    )
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    # Measure what a run measures: each run's process applies this allocator tuning (trainlab.runtime).
    tuned = False if args.default_allocator else tune_allocator()
    device = torch.device("cpu")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"torch {torch.__version__}, device {device}, {os.cpu_count()} CPUs, {torch.get_num_threads()} torch "
        f"threads, load average {load:.2f} at start, allocator tuned: {tuned}"
    )
    ratios = {}
    if not args.skip_mnist:
        root = Path(args.mnist)
        t0 = time.perf_counter()
        try:
            mnist = load_dataset(DataConfig(name="mnist", root=str(root), download=False, normalize=True))
        except DataError as exc:
            print(f"error: {exc}\n(pass the folder holding the MNIST IDX files, or --skip-mnist)", file=sys.stderr)
            return 2
        print(f"MNIST read from {root.resolve()} in {time.perf_counter() - t0:.2f} s")
        ratios["mnist"] = bench("MNIST (normalise)", mnist, {}, args, device)
    cifar = cifar_shaped(args.cifar_n)
    aug = {"augment": {"crop_padding": 4, "hflip": True}}
    ratios["cifar"] = bench("CIFAR-shaped (crop 32 pad 4, flip, normalise)", cifar, aug, args, device)
    print("\nsummary: " + ", ".join(f"{k} {v:.1f}x" for k, v in ratios.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
