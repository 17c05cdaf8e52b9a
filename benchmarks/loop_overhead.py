"""How much does trainlab's loop cost over the floor? Prints epoch time (trainlab) / epoch time (bare loop).

The floor is a hand-written loop over the same resident uint8 tensors and the same model architecture:
seeded permutation, gather, convert to float, forward, loss, zero_grad, backward, step — nothing else.
trainlab's loop adds its clocks, running loss/accuracy accumulation and progress callbacks. Both run in this
process, alternately, after a warm-up epoch each; the script reports medians over ``--repeats`` epochs.
Target: ratio <= 1.10.

    python benchmarks/loop_overhead.py --mnist ../shared/data/mnist/raw
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from trainlab.data import load_dataset
from trainlab.engine.events import EpochEnded, EpochRow
from trainlab.engine.loop import execute_run
from trainlab.engine.optim import build_optimizer
from trainlab.models import build_model
from trainlab.study import load_study

REPO = Path(__file__).resolve().parent.parent


def bare_epoch(model, opt, x_u8, y, batch, seed):
    """One epoch of the floor loop; returns wall seconds."""
    g = torch.Generator().manual_seed(seed)
    t0 = time.perf_counter()
    perm = torch.randperm(len(x_u8), generator=g)
    for i in range(0, len(x_u8), batch):
        idx = perm[i : i + batch]
        xb = x_u8[idx].float().div_(255.0)
        out = model(xb)
        loss = torch.nn.functional.cross_entropy(out, y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return time.perf_counter() - t0


def measure(model_cfg: dict, mnist: Path, limit: int | None, repeats: int) -> tuple[float, float]:
    study_dict = {
        "study": {"name": "overhead"},
        "data": {"name": "mnist", "root": str(mnist), "batch_size": 128, "limit_train": limit, "limit_test": 1000},
        "model": model_cfg,
        "train": {"epochs": 2, "optimizer": "sgd", "lr": 0.01, "momentum": 0.9, "seed": 1, "device": "cpu"},
        "measure": {"profile": False, "infer_batch1": False, "latency_repeats": 1, "throughput_time_s": 0.01},
    }
    spec = load_study(study_dict).runs[0]
    ds = load_dataset(spec.config.data)
    torch.manual_seed(1)
    model = build_model(spec.config.model, ds.input_shape, ds.num_classes)
    opt = build_optimizer(spec.config.train, model)
    bare_epoch(model, opt, ds.train.x, ds.train.y, 128, 0)  # warm-up

    floor, ours = [], []
    for r in range(repeats):
        floor.append(bare_epoch(model, opt, ds.train.x, ds.train.y, 128, r + 1))
        epochs: list[EpochRow] = []

        def keep(ev: object, epochs: list[EpochRow] = epochs) -> None:
            if isinstance(ev, EpochEnded):
                epochs.append(ev.row)

        out = execute_run(spec, dataset=ds, emit=keep)
        if out.status != "done":
            raise SystemExit(f"trainlab run failed: {out.error}")
        # epoch 2 of each run: epoch 1 carries one-time allocations, as the floor's warm-up epoch did
        ours.append(epochs[-1].epoch_time_s)
    return statistics.median(floor), statistics.median(ours)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mnist", type=Path, default=REPO.parent / "shared" / "data" / "mnist" / "raw")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--cnn-limit", type=int, default=10000, help="training samples for simple_cnn (speed)")
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, repeats {args.repeats} (medians)")
    print(f"{'model':<12} {'samples':>8} {'bare loop s':>12} {'trainlab s':>11} {'ratio':>7}  target <= 1.10")
    for name, cfg, limit in (
        ("logreg", {"name": "logreg"}, None),
        ("simple_cnn", {"name": "simple_cnn", "channels": [32, 64]}, args.cnn_limit),
    ):
        floor, ours = measure(cfg, args.mnist, limit, args.repeats)
        n = limit or 60000
        print(f"{name:<12} {n:>8} {floor:>12.3f} {ours:>11.3f} {ours / floor:>7.3f}")


if __name__ == "__main__":
    main()
