"""Do trainlab's clocks cost anything, and is its latency figure stable?

1. Epoch time of simple_cnn on MNIST with the real EpochClock vs a null clock that only reads the wall time
   at the epoch's ends (no per-batch clock reads, no data/compute split). Alternating, medians.
   Target: ratio (clocks on / off) <= 1.02.
2. Coefficient of variation of latency_p50_ms over 5 repeated measurements of a simple_cnn on CPU.
   Target: <= 5%.

    python benchmarks/measure_overhead.py --mnist ../shared/data/mnist/raw
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

import trainlab.engine.loop as train_mod
from trainlab.data import load_dataset
from trainlab.engine.events import EpochEnded, EpochRow
from trainlab.measure.clock import EpochClock, EpochTimes, synchronize
from trainlab.measure.latency import latency_percentiles
from trainlab.models import build_model
from trainlab.study import load_study

REPO = Path(__file__).resolve().parent.parent


class NullClock(EpochClock):
    """Same interface, no per-batch work: only the epoch's wall time."""

    def batches(self, loader):
        return iter(loader)

    def compute_start(self) -> None:
        pass

    def compute_end(self) -> None:
        pass

    def stop(self) -> EpochTimes:
        synchronize(self.device)
        return EpochTimes(time.perf_counter() - self._t0, 0.0, 0.0, 0)


def epoch_time(spec, ds, clock_cls) -> float:
    train_mod.EpochClock = clock_cls
    try:
        rows: list[EpochRow] = []
        out = train_mod.execute_run(spec, dataset=ds, emit=lambda e: isinstance(e, EpochEnded) and rows.append(e.row))
        if out.status != "done":
            raise SystemExit(out.error)
        return rows[-1].epoch_time_s  # the second epoch: the first carries one-time set-up
    finally:
        train_mod.EpochClock = EpochClock


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mnist", type=Path, default=REPO.parent / "shared" / "data" / "mnist" / "raw")
    ap.add_argument("--limit", type=int, default=10000, help="training samples per epoch")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    study = {
        "study": {"name": "overhead"},
        "data": {"name": "mnist", "root": str(args.mnist), "limit_train": args.limit, "limit_test": 500},
        "model": {"name": "simple_cnn", "channels": [32, 64]},
        "train": {"epochs": 2, "lr": 0.01, "momentum": 0.9, "device": "cpu", "checkpoint": False},
        "measure": {"profile": False, "infer_batch1": False, "latency_repeats": 1, "throughput_time_s": 0.01},
    }
    spec = load_study(study).runs[0]
    ds = load_dataset(spec.config.data)
    on, off = [], []
    for _ in range(args.repeats):
        off.append(epoch_time(spec, ds, NullClock))
        on.append(epoch_time(spec, ds, EpochClock))
    m_on, m_off = statistics.median(on), statistics.median(off)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; simple_cnn [32, 64], {args.limit} samples")
    print(f"epoch time, clocks on : median {m_on:.3f} s  ({', '.join(f'{t:.3f}' for t in on)})")
    print(f"epoch time, clocks off: median {m_off:.3f} s  ({', '.join(f'{t:.3f}' for t in off)})")
    print(f"ratio on/off = {m_on / m_off:.4f}   (target <= 1.02)")

    torch.manual_seed(0)
    model = build_model(spec.config.model, ds.input_shape, ds.num_classes)
    x = torch.rand(1, *ds.input_shape)
    p50 = [
        latency_percentiles(model, x, torch.device("cpu"), warmup=10, repeats=100)["latency_p50_ms"] for _ in range(5)
    ]
    mean = statistics.fmean(p50)
    cv = statistics.stdev(p50) / mean
    print(
        f"latency_p50_ms x5: {', '.join(f'{v:.4f}' for v in p50)}; mean {mean:.4f} ms, CV {100 * cv:.2f}%"
        "   (target <= 5%)"
    )


if __name__ == "__main__":
    main()
