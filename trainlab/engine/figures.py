"""A finished run's figures: totals over its epochs, targets, cost and MFU, confusion, inference speed.

Everything here runs after training, outside the training clock, on the trained model in eval mode.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from trainlab.data import Dataset
from trainlab.engine.events import EpochRow
from trainlab.engine.step import LossFn, evaluate
from trainlab.measure.complexity import Profile
from trainlab.measure.latency import batch1_pass, latency_percentiles, throughput
from trainlab.measure.peak import peak_flops
from trainlab.study import RunSpec


def first_reaching(history: list[EpochRow], key: str, target: float | None) -> tuple[int | None, float | None]:
    """(1-based epoch, training time to the end of that epoch) where ``key`` first reaches ``target``."""
    if target is None:
        return None, None
    elapsed = 0.0
    for row in history:
        elapsed += row.epoch_time_s
        value = getattr(row, key)
        if value is not None and value >= target:
            return row.epoch, elapsed
    return None, None


def final_figures(
    spec: RunSpec,
    model: nn.Module,
    ds: Dataset,
    history: list[EpochRow],
    test_loader: Any,
    loss_fn: LossFn,
    device: torch.device,
    profile: Profile | None,
    mem: dict[str, Any],
) -> dict[str, Any]:
    """The per-run figures of a trained model (keys of ``trainlab.measure.metrics`` plus the run's context)."""
    cfg = spec.config
    mc = cfg.measure
    last = history[-1]
    train_time = sum(r.epoch_time_s for r in history)
    results: dict[str, Any] = {
        "train_time_s": train_time,
        "epochs": len(history),
        "data_time_s": sum(r.data_time_s for r in history),
        "compute_time_s": sum(r.compute_time_s for r in history),
        "epoch_time_mean_s": train_time / len(history),
        "train_loss": last.train_loss,
        "train_acc": last.train_acc,
        "test_loss": last.test_loss,
        "test_acc": last.test_acc,
        "best_test_acc": max((r.test_acc for r in history if r.test_acc is not None), default=None),
        "task": ds.task,
        "classes": ds.classes if len(ds.classes) <= 1000 else None,
        "device": str(device),
        "threads": torch.get_num_threads(),
        "num_train": len(ds.train),
        "num_test": len(ds.test),
        "normalize_mean": ds.mean,
        "normalize_std": ds.std,
        **mem,
    }
    if ds.task != "classification":
        results["test_mae"], results["test_r2"] = last.test_mae, last.test_r2
    e, t = first_reaching(history, "train_acc", cfg.train.target_accuracy)
    results["epochs_to_target"], results["time_to_target_s"] = e, t
    e, t = first_reaching(history, "test_acc", cfg.train.target_test_accuracy)
    results["test_epochs_to_target"], results["test_time_to_target_s"] = e, t
    if profile is not None:
        results.update(profile.figures())
        if profile.train_flops_per_sample:
            samples = sum(r.samples for r in history)
            results["train_flops_per_s"] = profile.train_flops_per_sample * samples / max(train_time, 1e-12)
            if mc.mfu:
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
