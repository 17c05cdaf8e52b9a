"""Peers: the same MNIST MLP study run by trainlab, by Lightning and by a hand-written PyTorch loop.

Claim: on this machine trainlab's whole command (``trainlab run``: start, data, training, per-epoch test
evaluation, measurements, report) takes no longer than Lightning's script for the same study (ratio <= 1.0),
and its per-epoch training time is within 5% of a hand-written loop's (ratio <= 1.05). Method: one study
(real MNIST, MLP 784-512-256-10, batch 128, SGD lr 0.05 with trainlab's default momentum 0, pixels / 255 and no
normalisation, test split evaluated every epoch, one thread, seed 1) written three ways and each run as a
subprocess: trainlab's CLI with the default executor, a Lightning script (a DataLoader over in-memory tensors,
the test split as its validation set each epoch and a test pass at the end) and a plain loop (a randperm of
the in-memory tensors, sliced per batch). The three take turns in rotating order within each round, so noise
hits them alike. Per-epoch training times come from trainlab's store (``epoch_time_s``: the training phase
only), from a Lightning callback (epoch start to end minus the validation inside it) and from the loop's own
clock; medians pool the epochs after each run's first (warm-up), or every epoch when there is only one.

    python benchmarks/peers.py [--rounds 3] [--epochs 3] [--data ../shared/data/mnist]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from trainlab.store import Store
from trainlab.version import __version__

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent  # the venv's bin: trainlab's console script sits beside this python
TARGET_WHOLE = 1.0  # trainlab whole command / Lightning whole command
TARGET_EPOCH = 1.05  # trainlab epoch training time / hand loop's
SEED, BATCH, LR, TEST_BATCH = 1, 128, 0.05, 1000  # TEST_BATCH: trainlab's data.test_batch_size default

# Shared by the two generated scripts: argv[1] is a JSON object of the settings; the idx files are read with
# numpy (gzip or plain), scaled to [0, 1] float32 once, as trainlab's loader scales each batch (uint8 / 255).
COMMON = """
import gzip, json, sys, time
from pathlib import Path
import numpy as np
import torch
from torch import nn

cfg = json.loads(sys.argv[1])
torch.set_num_threads(1)

def idx(stem: str, offset: int) -> np.ndarray:
    root = Path(cfg["data"])
    for d in (root, root / "raw"):
        for name, opener in ((stem, open), (stem + ".gz", gzip.open)):
            if (d / name).is_file():
                with opener(d / name, "rb") as f:
                    return np.frombuffer(f.read(), dtype=np.uint8, offset=offset)
    raise SystemExit(f"{stem} not found under {root}")

def split(kind: str) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.from_numpy(idx(f"{kind}-images-idx3-ubyte", 16).reshape(-1, 1, 28, 28).astype(np.float32) / 255.0)
    return x, torch.from_numpy(idx(f"{kind}-labels-idx1-ubyte", 8).astype(np.int64))

def mlp() -> nn.Module:  # trainlab's mlp with hidden = [512, 256]: Flatten, Linear+ReLU per hidden, Linear
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(),
                         nn.Linear(256, 10))

(xtr, ytr), (xte, yte) = split("train"), split("t10k")
"""

LIGHTNING = '''
import lightning as L
from torch.utils.data import DataLoader, TensorDataset

L.seed_everything(cfg["seed"], verbose=False)

class Net(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net, self.correct, self.seen = mlp(), 0, 0

    def training_step(self, batch, _):
        x, y = batch
        return nn.functional.cross_entropy(self.net(x), y)

    def validation_step(self, batch, _):
        x, y = batch
        self.correct += int((self.net(x).argmax(1) == y).sum())
        self.seen += len(y)

    test_step = validation_step

    def on_validation_epoch_start(self) -> None:
        self.correct, self.seen = 0, 0

    on_test_epoch_start = on_validation_epoch_start

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=cfg["lr"], momentum=cfg["momentum"])

class EpochTimer(L.Callback):
    """Training time per epoch: Lightning validates inside the training epoch, so that time is taken out."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self.t0 = self.val0 = self.val = 0.0

    def on_train_epoch_start(self, trainer, module) -> None:
        self.t0, self.val = time.perf_counter(), 0.0

    def on_validation_start(self, trainer, module) -> None:
        self.val0 = time.perf_counter()

    def on_validation_end(self, trainer, module) -> None:
        if not trainer.sanity_checking:
            self.val += time.perf_counter() - self.val0

    def on_train_epoch_end(self, trainer, module) -> None:
        self.times.append(time.perf_counter() - self.t0 - self.val)

train = DataLoader(TensorDataset(xtr, ytr), batch_size=cfg["batch"], shuffle=True, num_workers=0)
test = DataLoader(TensorDataset(xte, yte), batch_size=cfg["test_batch"], num_workers=0)
timer, model = EpochTimer(), Net()
trainer = L.Trainer(max_epochs=cfg["epochs"], logger=False, enable_checkpointing=False, enable_progress_bar=False,
                    enable_model_summary=False, accelerator="cpu", devices=1, callbacks=[timer])
trainer.fit(model, train, test)
trainer.test(model, test, verbose=False)
print(json.dumps({"epoch_times": timer.times, "test_acc": model.correct / model.seen}))
'''

HAND = """
torch.manual_seed(cfg["seed"])
model = mlp()
opt = torch.optim.SGD(model.parameters(), lr=cfg["lr"], momentum=cfg["momentum"])
times, acc, b = [], 0.0, cfg["batch"]
for _ in range(cfg["epochs"]):
    model.train()
    t0 = time.perf_counter()
    order = torch.randperm(len(xtr))
    for i in range(0, len(order), b):
        idx_b = order[i : i + b]
        loss = nn.functional.cross_entropy(model(xtr[idx_b]), ytr[idx_b])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    times.append(time.perf_counter() - t0)  # training only: the test pass below is outside the clock
    model.eval()
    with torch.no_grad():
        correct = sum(int((model(xte[i : i + cfg["test_batch"]]).argmax(1) == yte[i : i + cfg["test_batch"]]).sum())
                      for i in range(0, len(xte), cfg["test_batch"]))
    acc = correct / len(xte)
print(json.dumps({"epoch_times": times, "test_acc": acc}))
"""


def study_toml(data: Path, epochs: int) -> str:
    return f"""[study]
name = "peers"
[data]
name = "mnist"
root = {json.dumps(str(data))}
batch_size = {BATCH}
download = false
[model]
name = "mlp"
hidden = [512, 256]
[train]
epochs = {epochs}
optimizer = "sgd"
lr = {LR}
seed = {SEED}
threads = 1
device = "cpu"
"""


def timed(cmd: list[str]) -> tuple[float, str]:
    """(wall s of the whole command, its stdout); a failed command stops the benchmark with its stderr."""
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:3])} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return wall, proc.stdout


def run_trainlab(tmp: Path, out: Path) -> tuple[float, list[float], float]:
    wall, _ = timed([str(BIN / "trainlab"), "run", str(tmp / "study.toml"), "--out", str(out)])
    (record,) = Store(out / "trainlab.db", readonly=True).runs()
    if record.status != "done":
        raise SystemExit(f"trainlab run {record.status}: {record.error}")
    epochs = Store(out / "trainlab.db", readonly=True).epochs(record.run_id)
    return wall, [e["epoch_time_s"] for e in epochs], float(record.results["test_acc"])


def run_script(script: Path, settings: dict) -> tuple[float, list[float], float]:
    wall, stdout = timed([sys.executable, str(script), json.dumps(settings)])
    last = json.loads(stdout.strip().splitlines()[-1])
    return wall, last["epoch_times"], float(last["test_acc"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--data", type=Path, default=REPO / ".." / "shared" / "data" / "mnist", help="MNIST idx folder")
    args = ap.parse_args()
    if importlib.util.find_spec("lightning") is None:
        raise SystemExit("lightning is not installed; it is a benchmark-only dependency: pip install lightning -c"
                         " constraints.txt")  # fmt: skip
    from importlib.metadata import version

    data = args.data.resolve()
    print(f"claim: trainlab whole command / Lightning's <= {TARGET_WHOLE}; trainlab epoch training time / a hand"
          f" loop's <= {TARGET_EPOCH}; n: {args.rounds} round(s) x 3 variants x {args.epochs} epochs, MNIST MLP"
          f" 784-512-256-10, batch {BATCH}, one thread")  # fmt: skip
    print(f"hardware: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; load before"
          f" {os.getloadavg()}")  # fmt: skip
    print(f"versions: Python {platform.python_version()}, torch {torch.__version__}, trainlab {__version__},"
          f" lightning {version('lightning')}")  # fmt: skip
    # momentum 0.0: trainlab's train.momentum default, which the study leaves as it is
    settings = {"data": str(data), "epochs": args.epochs, "seed": SEED, "batch": BATCH, "lr": LR,
                "momentum": 0.0, "test_batch": TEST_BATCH}  # fmt: skip
    names = ("trainlab", "lightning", "hand")
    walls: dict[str, list[float]] = {n: [] for n in names}
    epochs: dict[str, list[float]] = {n: [] for n in names}
    accs: dict[str, list[float]] = {n: [] for n in names}
    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        (tmp / "study.toml").write_text(study_toml(data, args.epochs))
        (tmp / "lightning_peer.py").write_text(COMMON + LIGHTNING)
        (tmp / "hand_peer.py").write_text(COMMON + HAND)
        for rnd in range(args.rounds):
            order = names[rnd % 3 :] + names[: rnd % 3]  # rotate who goes first
            for name in order:
                if name == "trainlab":
                    wall, times, acc = run_trainlab(tmp, tmp / f"trainlab-{rnd}")
                else:
                    wall, times, acc = run_script(tmp / f"{name}_peer.py", settings)
                walls[name].append(wall)
                epochs[name].extend(times[1:] if len(times) > 1 else times)  # the first epoch is warm-up
                accs[name].append(acc)
                print(f"round {rnd + 1} {name:>9}: whole {wall:6.2f} s | epochs (train only) "
                      f"{', '.join(f'{t:.2f}' for t in times)} s | test_acc {acc:.4f}")  # fmt: skip
    pooled = "epochs 2.. pooled" if args.epochs > 1 else "one epoch per run"
    med_w = {n: statistics.median(v) for n, v in walls.items()}
    med_e = {n: statistics.median(v) for n, v in epochs.items()}
    for n in names:
        acc = ", ".join(f"{a:.4f}" for a in accs[n])
        print(f"{n:>9}: median whole command {med_w[n]:6.2f} s | median epoch training time {med_e[n]:.3f} s"
              f" ({pooled}, {len(epochs[n])} epochs) | test_acc {acc}")  # fmt: skip
    spread = max(map(max, accs.values())) - min(map(min, accs.values()))
    fair = "similar" if spread <= 0.01 else "NOT similar: check the three do the same study"
    print(f"test accuracy spread across all runs: {spread * 100:.2f} points ({fair})")
    r_whole, r_epoch = med_w["trainlab"] / med_w["lightning"], med_e["trainlab"] / med_e["hand"]
    print(f"ratio trainlab whole / lightning whole: {r_whole:.3f}")
    print(f"ratio trainlab epoch / hand epoch: {r_epoch:.3f}")
    print(f"ratio lightning epoch / hand epoch: {med_e['lightning'] / med_e['hand']:.3f} (context)")
    print(f"load after {os.getloadavg()}; benchmark took {time.perf_counter() - t_start:.0f} s")
    for what, ratio, target in (("whole / lightning whole", r_whole, TARGET_WHOLE), ("epoch / hand epoch", r_epoch,
                                TARGET_EPOCH)):  # fmt: skip
        print(f"target trainlab {what} <= {target}: {'met' if ratio <= target else 'MISSED'}")


if __name__ == "__main__":
    main()
