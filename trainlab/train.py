"""The training loop: one run, read top to bottom.

``execute_run`` loads the data, builds the model, profiles that same instance, builds the optimizer from it,
then trains epoch by epoch. Each epoch's training phase is timed by an :class:`EpochClock` (data vs compute),
evaluation runs outside the clock, the epoch's record is committed to the store, and a checkpoint is written so
an interrupted run resumes from its last completed epoch. After training, inference is measured.

Conventions: ``train_loss``/``train_acc`` are the running means over the epoch's batches in training mode
(dropout active), as most training logs report them; ``test_loss``/``test_acc`` are computed after the
epoch in ``eval()`` mode. Losses are the data loss only; the explicit L2 penalty (``train.l2``) is added for
the gradient but not included in the reported loss, so variants with and without it stay comparable.
"""

from __future__ import annotations

import math
import os
import random
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from trainlab.config import RunSpec
from trainlab.data import Dataset, load_dataset
from trainlab.data.loaders import make_loaders
from trainlab.errors import TrainlabError
from trainlab.measure.clock import EpochClock
from trainlab.measure.memory import MemoryMeter
from trainlab.models import build_model
from trainlab.optim import build_optimizer, build_scheduler

if TYPE_CHECKING:
    from trainlab.store import Store

Progress = Callable[[dict[str, Any]], None]

# A loss above this many times the first epoch's (and above 1e3) counts as exploding: the run is diverged.
EXPLODE_FACTOR = 1e4


class DeviceUnavailable(TrainlabError):
    """The requested device is not on this machine: the run is skipped, not failed."""


class Diverged(Exception):
    """The loss became NaN/inf or exploded; the run stops and is recorded as diverged."""


@dataclass
class RunOutcome:
    """What a run produced: its status, per-run figures and (on failure) the reason."""

    status: str  # done | diverged | failed | skipped
    results: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    detail: str | None = None  # traceback for failures that are not the user's input


# ------------------------------------------------------------------------------------------------------
# Set-up helpers


def resolve_device(name: str) -> torch.device:
    """``auto`` -> cuda when available else cpu; ``cuda`` without a GPU raises :class:`DeviceUnavailable`."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise DeviceUnavailable("device 'cuda' requested but CUDA is not available on this machine")
    return torch.device(name)


def seed_everything(seed: int, deterministic: bool) -> None:
    """Seed Python, NumPy and torch; optionally make torch's kernels deterministic."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True


def make_loss(name: str, task: str, num_outputs: int) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """Loss ``(outputs, targets) -> scalar``. MSE on a classification task compares with one-hot targets."""
    if name == "cross_entropy":
        if task != "classification":
            raise TrainlabError("train.loss = 'cross_entropy' needs a classification dataset; use 'mse'")
        return nn.functional.cross_entropy
    if task == "classification":

        def mse_onehot(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            return nn.functional.mse_loss(out, nn.functional.one_hot(y, num_outputs).to(out.dtype))

        return mse_onehot

    def mse(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return nn.functional.mse_loss(out.reshape(y.shape), y)

    return mse


def l2_penalty(model: nn.Module) -> torch.Tensor:
    """Sum of squared weights of trainable parameters with 2+ dimensions (biases and norm scales excluded)."""
    return sum((p.pow(2).sum() for p in model.parameters() if p.requires_grad and p.dim() > 1), torch.zeros(()))


@torch.no_grad()
def evaluate(
    model: nn.Module,
    loader: Any,
    loss_fn: Callable,
    task: str,
    num_classes: int,
    confusion: bool = False,
    target_scale: float = 1.0,
) -> dict[str, Any]:
    """Mean loss and accuracy over ``loader`` in ``eval()`` mode (regression: loss, MAE and R²).

    ``target_scale`` converts a scaled regression target's MAE back to the target's units (R² is unchanged).
    """
    was_training = model.training
    model.eval()
    loss_sum = 0.0
    n = 0
    correct = 0
    cm = torch.zeros((num_classes, num_classes), dtype=torch.long) if confusion else None
    ys: list[torch.Tensor] = []
    preds: list[torch.Tensor] = []
    for x, y in loader:
        out = model(x)
        loss_sum += float(loss_fn(out, y)) * len(y)
        n += len(y)
        if task == "classification":
            pred = out.argmax(1)
            correct += int((pred == y).sum())
            if cm is not None:
                idx = (y * num_classes + pred).cpu()
                cm += torch.bincount(idx, minlength=num_classes * num_classes).view(num_classes, num_classes)
        else:
            ys.append(y.float().reshape(len(y), -1).cpu())
            preds.append(out.float().reshape(len(y), -1).cpu())
    model.train(was_training)
    result: dict[str, Any] = {"loss": loss_sum / max(n, 1)}
    if task == "classification":
        result["acc"] = correct / max(n, 1)
        if cm is not None:
            result["confusion"] = cm.tolist()
    else:
        yt, yp = torch.cat(ys), torch.cat(preds)
        result["mae"] = float((yt - yp).abs().mean()) * target_scale
        ss_res = float(((yt - yp) ** 2).sum())
        ss_tot = float(((yt - yt.mean(0)) ** 2).sum())
        result["r2"] = 1.0 - ss_res / ss_tot if ss_tot > 0 else float("nan")
    return result


# ------------------------------------------------------------------------------------------------------
# Checkpoints: model, optimizer, scheduler and RNG states after a completed epoch. Loaded with weights_only=True.


def _rng_state() -> dict[str, Any]:
    np_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy_keys": torch.from_numpy(np_state[1].astype(np.int64)),
        "numpy_pos": int(np_state[2]),
        "numpy_gauss": [int(np_state[3]), float(np_state[4])],
        "python": list(random.getstate()[1]),
        "python_version": random.getstate()[0],
    }


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    keys = state["numpy_keys"].numpy().astype(np.uint32)
    np.random.set_state(("MT19937", keys, state["numpy_pos"], state["numpy_gauss"][0], state["numpy_gauss"][1]))
    random.setstate((state["python_version"], tuple(state["python"]), None))


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    """Write atomically: a crash mid-write leaves the previous checkpoint intact."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # a corrupt checkpoint is discarded: the run restarts from scratch
        return None


# ------------------------------------------------------------------------------------------------------
# The run


def first_reaching(history: list[dict[str, Any]], key: str, target: float | None) -> tuple[int | None, float | None]:
    """(1-based epoch, training time to the end of that epoch) where ``history[key]`` first reaches target."""
    if target is None:
        return None, None
    elapsed = 0.0
    for row in history:
        elapsed += row["epoch_time_s"]
        if row.get(key) is not None and row[key] >= target:
            return row["epoch"], elapsed
    return None, None


def execute_run(
    spec: RunSpec,
    *,
    store: Store | None = None,
    checkpoint_path: Path | None = None,
    progress: Progress | None = None,
    study_path: Path | None = None,
    dataset: Dataset | None = None,
) -> RunOutcome:
    """Train and measure one run. Never raises for a run-level failure: the outcome says what happened."""
    try:
        return _execute(spec, store, checkpoint_path, progress or (lambda _e: None), study_path, dataset)
    except DeviceUnavailable as exc:
        return RunOutcome("skipped", error=str(exc))
    except Diverged as exc:
        return RunOutcome("diverged", error=str(exc))
    except torch.OutOfMemoryError as exc:
        return RunOutcome("failed", error=f"out of memory: {str(exc).splitlines()[0]}")
    except TrainlabError as exc:
        return RunOutcome("failed", error=str(exc))
    except Exception as exc:  # a crash in a model or the loop: recorded, the study goes on
        return RunOutcome("failed", error=f"{type(exc).__name__}: {exc}", detail=traceback.format_exc())


def _execute(
    spec: RunSpec,
    store: Store | None,
    checkpoint_path: Path | None,
    progress: Progress,
    study_path: Path | None,
    dataset: Dataset | None,
) -> RunOutcome:
    from trainlab.measure.complexity import profile_model
    from trainlab.measure.hardware import environment

    cfg = spec.config
    tc = cfg.train
    device = resolve_device(tc.device)
    if tc.threads:
        torch.set_num_threads(tc.threads)
    seed_everything(tc.seed, tc.deterministic)

    # Data: both splits in memory; the training loader shuffles with a seed per (run seed, epoch).
    ds = dataset if dataset is not None else load_dataset(cfg.data)
    train_loader, test_loader = make_loaders(cfg.data, ds, device, tc.seed)
    n_train = len(ds.train)

    # Model: built with the run's seed; profiled as this very instance, before training.
    torch.manual_seed(tc.seed)
    model = build_model(cfg.model, ds.input_shape, ds.num_classes).to(device)
    profile = (
        profile_model(model, ds.input_shape, ds.num_classes, optimizer=tc.optimizer) if cfg.measure.profile else None
    )
    if tc.epochs == 0:  # an anatomy study: the profile of the model, no training
        if profile is None:
            raise TrainlabError("train.epochs = 0 profiles the model only; it needs measure.profile = true")
        if store is not None:
            store.start_run(spec.run_id, env=environment(device, study_path), profile=profile.to_dict())
        return RunOutcome("done", results={"epochs": 0, "device": str(device), **profile.figures()})
    optimizer = build_optimizer(tc, model)  # from this model's parameters, never another instance's
    scheduler, per_batch_schedule = build_scheduler(tc, optimizer, len(train_loader))
    loss_fn = make_loss(tc.loss, ds.task, ds.num_classes)
    classify = ds.task == "classification"
    l2 = tc.l2

    # Resume from the last completed epoch when a checkpoint exists.
    history: list[dict[str, Any]] = []
    start_epoch = 1
    resumed_from = None
    ckpt = load_checkpoint(checkpoint_path) if checkpoint_path and store is not None else None
    if ckpt is not None:
        store.truncate_epochs(spec.run_id, after=int(ckpt["epoch"]))
        history = store.epochs(spec.run_id)
        if len(history) != int(ckpt["epoch"]):  # store and checkpoint disagree: start over
            store.truncate_epochs(spec.run_id, after=0)
            history, ckpt = [], None
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        if scheduler is not None and ckpt.get("scheduler"):
            scheduler.load_state_dict(ckpt["scheduler"])
        _set_rng_state(ckpt["rng"])
        resumed_from = int(ckpt["epoch"])
        start_epoch = resumed_from + 1

    env = environment(device, study_path)
    if store is not None:
        store.start_run(spec.run_id, env=env, profile=profile.to_dict() if profile else None)
    progress(
        {
            "event": "run_start",
            "epochs": tc.epochs,
            "batches": len(train_loader),
            "start_epoch": start_epoch,
            "device": str(device),
        }
    )

    clock = EpochClock(device)
    memory = MemoryMeter(device)
    memory.start()
    cpu = device.type == "cpu"
    first_loss = history[0]["train_loss"] if history else None

    for epoch in range(start_epoch, tc.epochs + 1):
        model.train()
        train_loader.set_epoch(epoch)
        loss_sum = torch.zeros((), device=device)  # accumulated on the device: no sync per step
        correct = torch.zeros((), device=device, dtype=torch.long)
        seen = 0
        clock.start()
        for step, (x, y) in enumerate(clock.batches(train_loader)):
            clock.compute_start()
            x = x.to(device, non_blocking=True)
            y = y.to(device, non_blocking=True)
            out = model(x)
            loss = loss_fn(out, y)
            total = loss + l2 * l2_penalty(model).to(device) if l2 else loss
            optimizer.zero_grad(set_to_none=True)
            total.backward()
            optimizer.step()
            if per_batch_schedule:
                scheduler.step()
            loss_sum += loss.detach() * len(y)
            if classify:
                correct += (out.detach().argmax(1) == y).sum()
            seen += len(y)
            clock.compute_end()
            if cpu and step % 20 == 0:  # on CPU a running value is free to read; on CUDA it would sync
                progress({"event": "batch", "epoch": epoch, "batch": step + 1, "loss": float(loss_sum) / seen})
        times = clock.stop()
        if scheduler is not None and not per_batch_schedule:
            scheduler.step()

        train_loss = float(loss_sum) / max(seen, 1)
        row: dict[str, Any] = {
            "epoch": epoch,
            "train_loss": train_loss,
            "train_acc": int(correct) / max(seen, 1) if classify else None,
            "epoch_time_s": times.epoch_time_s,
            "data_time_s": times.data_time_s,
            "compute_time_s": times.compute_time_s,
            "steps": times.steps,
            "samples": seen,
            "lr": optimizer.param_groups[0]["lr"],
        }
        if not math.isfinite(train_loss):
            _commit_epoch(store, spec, row)
            raise Diverged(f"training loss became {train_loss} in epoch {epoch}")
        if first_loss is None:
            first_loss = train_loss
        elif train_loss > max(EXPLODE_FACTOR * first_loss, 1e3):
            _commit_epoch(store, spec, row)
            raise Diverged(f"training loss exploded to {train_loss:.3g} in epoch {epoch} (epoch 1: {first_loss:.3g})")

        # Evaluation: outside the training clock.
        ev = evaluate(model, test_loader, loss_fn, ds.task, ds.num_classes, target_scale=ds.target_scale)
        row["test_loss"] = ev["loss"]
        row["test_acc"] = ev.get("acc")
        if not classify:
            row["test_mae"], row["test_r2"] = ev["mae"], ev["r2"]
        history.append(row)
        _commit_epoch(store, spec, row)
        if checkpoint_path is not None and tc.checkpoint:
            save_checkpoint(
                checkpoint_path,
                {
                    "epoch": epoch,
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict() if scheduler is not None else None,
                    "rng": _rng_state(),
                },
            )
        progress({"event": "epoch", **row})

    mem = memory.stop()

    # After training: figures of the trained model (eval mode, no grad), none inside the training clock.
    results = _final_figures(spec, model, ds, history, test_loader, loss_fn, device, profile, mem, n_train)
    results["resumed_from_epoch"] = resumed_from
    if checkpoint_path is not None and cfg.train.checkpoint:
        torch.save(model.state_dict(), checkpoint_path.with_name(f"{spec.run_id}.model.pt"))
    return RunOutcome("done", results=results)


def _commit_epoch(store: Store | None, spec: RunSpec, row: dict[str, Any]) -> None:
    if store is not None:
        store.add_epoch(spec.run_id, row)


def _final_figures(
    spec: RunSpec,
    model: nn.Module,
    ds: Dataset,
    history: list[dict[str, Any]],
    test_loader: Any,
    loss_fn: Callable,
    device: torch.device,
    profile: Any,
    mem: dict[str, Any],
    n_train: int,
) -> dict[str, Any]:
    from trainlab.measure.latency import batch1_pass, latency_percentiles, throughput

    cfg = spec.config
    mc = cfg.measure
    last = history[-1]
    train_time = sum(r["epoch_time_s"] for r in history)
    results: dict[str, Any] = {
        "train_time_s": train_time,
        "epochs": len(history),
        "data_time_s": sum(r["data_time_s"] for r in history),
        "compute_time_s": sum(r["compute_time_s"] for r in history),
        "epoch_time_mean_s": train_time / len(history),
        "train_loss": last["train_loss"],
        "train_acc": last["train_acc"],
        "test_loss": last["test_loss"],
        "test_acc": last["test_acc"],
        "best_test_acc": max((r["test_acc"] for r in history if r["test_acc"] is not None), default=None),
        "task": ds.task,
        "classes": ds.classes if len(ds.classes) <= 1000 else None,
        "device": str(device),
        "threads": torch.get_num_threads(),
        "num_train": n_train,
        "num_test": len(ds.test),
        "normalize_mean": ds.mean,
        "normalize_std": ds.std,
        **mem,
    }
    if ds.task != "classification":
        results["test_mae"], results["test_r2"] = last.get("test_mae"), last.get("test_r2")
    e, t = first_reaching(history, "train_acc", cfg.train.target_accuracy)
    results["epochs_to_target"], results["time_to_target_s"] = e, t
    e, t = first_reaching(history, "test_acc", cfg.train.target_test_accuracy)
    results["test_epochs_to_target"], results["test_time_to_target_s"] = e, t
    if profile is not None:
        results.update(profile.figures())
        if profile.train_flops_per_sample:
            samples = sum(r["samples"] for r in history)
            results["train_flops_per_s"] = profile.train_flops_per_sample * samples / max(train_time, 1e-12)
            if mc.mfu:
                from trainlab.measure.peak import peak_flops

                results.update(peak_flops(device))
                results["mfu"] = results["train_flops_per_s"] / results["peak_flops"]

    if ds.task == "classification" and ds.num_classes <= 100:
        ev = evaluate(model, test_loader, loss_fn, ds.task, ds.num_classes, confusion=True)
        results["confusion"] = ev["confusion"]

    # Inference on normalised test images already on the device (conversion is not timed).
    n_inf = min(len(ds.test), mc.infer_limit or len(ds.test))
    images = test_loader.convert(test_loader.x[:n_inf])
    if mc.infer_batch1:
        results.update(batch1_pass(model, images, device))
    results.update(latency_percentiles(model, images, device, mc.latency_warmup, mc.latency_repeats))
    results.update(throughput(model, images, device, mc.throughput_batch, mc.throughput_time_s))
    return results
