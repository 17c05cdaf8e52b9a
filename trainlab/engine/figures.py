"""A finished run's figures: totals over its epochs, targets, cost and MFU, confusion, inference speed.

Everything here runs after training, outside the training clock, on the trained model in eval mode.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import torch

from trainlab.engine.events import EpochRow
from trainlab.engine.step import evaluate
from trainlab.measure.clock import synchronize
from trainlab.measure.format import pct2
from trainlab.measure.latency import batch1_pass, latency_percentiles, throughput
from trainlab.measure.load import LoadMeter, is_busy
from trainlab.measure.metrics import PEAK_SPREAD_UNCERTAIN
from trainlab.measure.peak import peak_flops
from trainlab.study import RunSpec

if TYPE_CHECKING:
    from trainlab.engine.loop import Training


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


def final_figures(spec: RunSpec, run: Training, history: list[EpochRow], mem: dict[str, Any]) -> dict[str, Any]:
    """The per-run figures of a trained model (keys of ``trainlab.measure.metrics`` plus the run's context).

    Evaluation and inference run the model the steps ran (compiled when ``train.compile`` compiles; the
    figures say which), under the run's autocast.
    """
    cfg = spec.config
    ds, device, profile, test_loader = run.ds, run.device, run.profile, run.test_loader
    model, autocast = run.stepper.run_model, run.precision.autocast
    mc = cfg.measure
    last = history[-1]
    train_time = sum(r.epoch_time_s for r in history)
    results: dict[str, Any] = {
        "train_time_s": train_time,
        "epochs": len(history),
        "data_time_s": sum(r.data_time_s for r in history),
        "data_gpu_time_s": _total(r.data_gpu_time_s for r in history),
        "compute_time_s": sum(r.compute_time_s for r in history),
        "data_startup_s": _total(r.data_startup_s for r in history),
        "eval_time_s": _total(r.eval_time_s for r in history),
        **machine_load(history),
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
        **run.precision.figures(),
        "channels_last": run.channels_last,
        "compile": run.stepper.mode,
        "compile_time_s": run.stepper.compile_time_s,
        "infer_model": "compiled" if run.stepper.compiled else "eager",
    }
    if ds.task != "classification":
        results["test_mae"], results["test_r2"] = last.test_mae, last.test_r2
    results.update(validation_figures(history, ds.task, len(ds.val) if ds.val is not None else None))
    # The target is read on validation when there is a validation split (a choice: when training would
    # have stopped), else on the training accuracy, as the labs read it; never on test.
    target_key = "val_acc" if ds.val is not None else "train_acc"
    e, t = first_reaching(history, target_key, cfg.train.target_accuracy)
    results["epochs_to_target"], results["time_to_target_s"] = e, t
    results["target_split"] = target_key.removesuffix("_acc")
    e, t = first_reaching(history, "test_acc", cfg.train.target_test_accuracy)
    results["test_epochs_to_target"], results["test_time_to_target_s"] = e, t
    if profile is not None:
        results.update(profile.figures())
        if profile.train_flops_per_sample:
            samples = sum(r.samples for r in history)
            results["train_flops_per_s"] = profile.train_flops_per_sample * samples / max(train_time, 1e-12)
            if mc.mfu:
                prec = run.precision
                results.update(peak_flops(device, prec.matmul, prec.conv, profile.conv_share()))
                results.update(
                    utilisation(
                        results["train_flops_per_s"],
                        results["peak_flops"],
                        results["peak_flops_min"],
                        results["peak_flops_max"],
                    )
                )

    if test_loader is None:  # a tuning trial: confusion and inference speed are test-split measurements
        return results
    measure_start = time.perf_counter()
    if ds.task == "classification" and ds.num_classes <= 100:
        ev = evaluate(model, test_loader, run.loss_fn, ds.task, ds.num_classes, confusion=True, autocast=autocast)
        results["confusion"] = ev["confusion"]

    # Inference on normalised test images already on the device (conversion is not timed).
    n_inf = min(len(ds.test), mc.infer_limit or len(ds.test))
    images = test_loader.convert(test_loader.x[:n_inf])
    load = LoadMeter()
    load.start()
    with autocast():
        if run.stepper.compiled:  # compile the batch-1 eval graph before anything is timed
            with torch.no_grad():
                model.eval()
                model(images[:1])
        if mc.infer_batch1:
            results.update(batch1_pass(model, images, device))
        results.update(latency_percentiles(model, images, device, mc.latency_warmup, mc.latency_repeats))
        results.update(throughput(model, images, device, mc.throughput_batch, mc.throughput_time_s))
    sample = load.stop()
    results["measure_time_s"] = time.perf_counter() - measure_start
    if sample is not None:
        results["infer_other_cores"] = sample.other_cores
        results["infer_busy"] = int(sample.busy)
    return results


def validation_figures(history: list[EpochRow], task: str, num_val: int | None) -> dict[str, Any]:
    """The figures that choose: the validation split's after the last epoch and at its best, and the best epoch.

    ``best_epoch`` is the epoch with the highest validation accuracy (R² for regression; the earliest of
    ties), or, without a validation split (``num_val`` None), the same read on test — then
    ``best_epoch_split`` is ``"test"`` and the choice flatters the test figures. ``test_acc_at_best`` /
    ``test_r2_at_best``: the test figure of that epoch, the score of the choice.
    """
    split = "val" if num_val is not None else "test"
    quality = "acc" if task == "classification" else "r2"
    out: dict[str, Any] = {"best_epoch_split": split}
    if num_val is not None:
        last = history[-1]
        out.update(num_val=num_val, val_loss=last.val_loss)
        if task == "classification":
            out["val_acc"] = last.val_acc
            out["best_val_acc"] = max((r.val_acc for r in history if r.val_acc is not None), default=None)
        else:
            out["val_mae"], out["val_r2"] = last.val_mae, last.val_r2
    scored = [(r, v) for r in history if (v := getattr(r, f"{split}_{quality}")) is not None]
    if scored:
        best_row = max(scored, key=lambda rv: rv[1])[0]  # max keeps the first of equal values: the earliest
        out["best_epoch"] = best_row.epoch
        out[f"test_{quality}_at_best"] = getattr(best_row, f"test_{quality}")
    return out


def machine_load(history: list[EpochRow]) -> dict[str, Any]:
    """Per-run summary of the epochs' CPU accounting (``trainlab.measure.load``): the epochs timed on a busy
    machine, and the most other work seen in an epoch (cores); empty when nothing was measured."""
    rows = [r for r in history if r.other_cores is not None]
    if not rows:
        return {}
    return {
        "busy_epochs": sum(is_busy(r.cpu_cores, r.other_cores, r.cores) for r in rows),
        "other_cores_max": max(r.other_cores for r in rows if r.other_cores is not None),
        "cpu_cores_mean": sum(r.cpu_cores or 0.0 for r in rows) / len(rows),
    }


def _total(values: Iterable[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return sum(vals) if vals else None


PROFILED_STEPS = 20  # training steps the GPU profile of a step is taken over


def gpu_step_profile(run: Training, steps: int = PROFILED_STEPS) -> dict[str, Any]:
    """How busy the GPU is during a training step (CUDA only): kernel time / wall time over ``steps`` steps.

    Taken after everything else is measured and the weights are saved, because these steps train the model
    further. A small share means the GPU waits for the host to launch work: the step is launch-bound.
    Keys: ``gpu_busy_share``, ``step_wall_ms`` and ``step_kernel_ms`` (per step).
    """
    if run.device.type != "cuda":  # not measured off a GPU: stated as absent, not left out
        return {"gpu_busy_share": None, "step_wall_ms": None, "step_kernel_ms": None}
    x, y = run.examples()[0]
    run.model.train()
    for _ in range(3):  # warm: allocator, cuDNN algorithm choice
        run.stepper.step(x, y)
    synchronize(run.device)
    activities = [torch.profiler.ProfilerActivity.CPU, torch.profiler.ProfilerActivity.CUDA]
    with torch.profiler.profile(activities=activities) as prof:
        t0 = time.perf_counter()
        for _ in range(steps):
            run.stepper.step(x, y)
        synchronize(run.device)
        wall = time.perf_counter() - t0
    kernel_us = sum(e.self_device_time_total for e in prof.key_averages())
    return {
        "gpu_busy_share": min(kernel_us / 1e6 / wall, 1.0) if wall > 0 else None,
        "step_wall_ms": wall / steps * 1e3,
        "step_kernel_ms": kernel_us / 1e3 / steps,
    }


def utilisation(
    achieved: float, peak: float, peak_min: float | None = None, peak_max: float | None = None
) -> dict[str, Any]:
    """``mfu`` = achieved / peak, when it can be a fact. An MFU above 100% means the peak does not describe
    the work (another precision, a kernel the probe does not reach): it is kept as ``mfu_unchecked`` with a
    ``mfu_note``, never as ``mfu``.

    With the probe's slowest and fastest rounds (``peak_min``, ``peak_max``; ``trainlab.measure.peak``):
    ``mfu_low`` = achieved / peak_max and ``mfu_high`` = achieved / peak_min, the MFU range the probe's spread
    allows, and ``mfu_uncertain`` — whether the spread ``(peak_max - peak_min) / peak`` exceeds
    ``PEAK_SPREAD_UNCERTAIN``; then ``mfu_uncertain_note`` says so. The MFU is kept either way (not
    ``mfu_note``, which means that no MFU is stated)."""
    mfu = achieved / peak if peak > 0 else None
    if mfu is None:
        return {}
    if mfu > 1.0:
        return {
            "mfu_unchecked": mfu,
            "mfu_note": f"achieved {achieved / 1e9:.3g} GFLOP/s exceeds the probed peak {peak / 1e9:.3g} GFLOP/s:"
            " the peak does not describe this run's numerics, so no MFU is stated",
        }
    out: dict[str, Any] = {"mfu": mfu}
    if peak_min is None or peak_max is None or not 0 < peak_min <= peak_max:
        return out
    out["mfu_low"], out["mfu_high"] = min(achieved / peak_max, mfu), max(achieved / peak_min, mfu)
    spread = (peak_max - peak_min) / peak
    out["mfu_uncertain"] = spread > PEAK_SPREAD_UNCERTAIN
    if out["mfu_uncertain"]:
        out["mfu_uncertain_note"] = (
            f"the peak probe's rounds varied by {spread:.0%} ({peak_min / 1e9:.3g} to {peak_max / 1e9:.3g} GFLOP/s:"
            f" the machine was busy while it was probed), so this MFU of {pct2(mfu)} is uncertain: between"
            f" {pct2(out['mfu_low'])} and {pct2(out['mfu_high'])}"
        )
    return out
