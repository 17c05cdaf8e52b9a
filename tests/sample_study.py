"""A synthetic study store: realistic-looking records without training, for tests and for trying the report.

``write_sample_store(out_dir)`` validates a small study with :func:`trainlab.config.load_study`, records its
plan in a real :class:`trainlab.store.Store`, and fills each run with generated epochs and figures. A per-variant
``behaviour`` picks what the run looks like: ``done`` (learns well), ``overfit`` (test loss turns up),
``underfit`` (barely learns), ``data_bound`` (waits for data half the time), ``slow_device`` (low MFU),
``diverged``, ``failed``, ``skipped``, ``running`` (half its epochs so far) or ``pending``.
"""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Any

from trainlab.store import Store

BEHAVIOURS = (
    "done",
    "overfit",
    "underfit",
    "data_bound",
    "slow_device",
    "diverged",
    "failed",
    "skipped",
    "running",
    "pending",
)


def sample_config(
    name: str = "sample study",
    description: str = "A synthetic study: three MLP widths on a 3-class problem.",
    variants: list[dict[str, Any]] | None = None,
    repeats: int = 1,
    epochs: int = 6,
    sweep: dict[str, list[Any]] | None = None,
    num_classes: int = 3,
) -> dict[str, Any]:
    """A study dict on the ``synthetic`` dataset (validates without any data file)."""
    if variants is None and sweep is None:
        variants = [
            {"name": "small", "model.name": "mlp", "model.hidden": [16]},
            {"name": "medium", "model.name": "mlp", "model.hidden": [64]},
            {"name": "large", "model.name": "mlp", "model.hidden": [256]},
        ]
    cfg: dict[str, Any] = {
        "study": {"name": name, "description": description},
        "data": {"name": "synthetic", "shape": [1, 8, 8], "num_classes": num_classes},
        "model": {"name": "mlp", "hidden": [32]},
        "train": {"epochs": epochs, "lr": 0.05, "target_accuracy": 0.8},
        "repeats": repeats,
    }
    if variants:
        cfg["variant"] = variants
    if sweep:
        cfg["sweep"] = sweep
    return cfg


def _env() -> dict[str, Any]:
    return {
        "date": "2025-01-01T12:00:00+00:00",
        "hostname": "sample-host",
        "platform": "Linux-6.1-x86_64",
        "python": "3.11.7",
        "cpu": "Sample CPU @ 3.0GHz",
        "cpu_count": 8,
        "cpu_affinity": 8,
        "torch_threads": 8,
        "torch": "2.13.0+cpu",
        "numpy": "2.0.0",
        "trainlab": "0.1.0",
        "device": "cpu",
        "cuda_available": False,
        "git_commit": "0123456789abcdef0123456789abcdef01234567",
    }


def _profile(width: int, k: int) -> dict[str, Any]:
    layers = [
        {"name": "flatten", "type": "Flatten", "output_shape": [1, 64], "params": 0, "macs": 0},
        {"name": "fc1", "type": "Linear", "output_shape": [1, width], "params": 64 * width + width, "macs": 64 * width},
        {"name": "act1", "type": "ReLU", "output_shape": [1, width], "params": 0, "macs": 0},
        {"name": "fc2", "type": "Linear", "output_shape": [1, k], "params": width * k + k, "macs": width * k},
    ]
    params = sum(layer["params"] for layer in layers)
    macs = sum(layer["macs"] for layer in layers)
    return {
        "input_shape": [1, 8, 8],
        "params": params,
        "trainable_params": params,
        "frozen_params": 0,
        "macs": macs,
        "flops": 2 * macs,
        "train_flops_per_sample": 6 * macs,
        "size_mb": params * 4 / 2**20,
        "saved_kb": params * 4 / 1024 + 1.2,
        "conv_layers": 0,
        "linear_layers": 2,
        "last_linear_in_features": width,
        "nonzero_grads": params - 3,
        "optimizer": "sgd",
        "layers": layers,
    }


def _epochs(index: int, behaviour: str, epochs: int, rng: random.Random, k: int) -> list[dict[str, Any]]:
    """Generated per-epoch records: accuracy rising towards a ceiling that grows with the variant index."""
    ceiling = {"underfit": 0.45}.get(behaviour, min(0.80 + 0.06 * index, 0.97))
    base_time = 0.20 * (1 + 0.35 * index)
    data_share = 0.55 if behaviour == "data_bound" else 0.06
    rows: list[dict[str, Any]] = []
    half = max(epochs // 2, 1)
    for e in range(1, epochs + 1):
        progress = 1 - math.exp(-e / 1.6)
        train_acc = min(ceiling * progress + 0.02 * (e / epochs) + rng.gauss(0, 0.004), 0.999)
        test_acc = min(ceiling * progress - 0.01 + rng.gauss(0, 0.004), 0.999)
        train_loss = -math.log(max(train_acc, 1e-3)) * (1.8 if behaviour == "underfit" else 1.0)
        if behaviour == "underfit":
            train_loss = 1.05 - 0.004 * e
        test_loss = -math.log(max(test_acc, 1e-3)) + 0.01
        if behaviour == "overfit" and e > half:
            test_loss = rows[half - 1]["test_loss"] * (1 + 0.15 * (e - half))  # turns up in the second half
            train_loss *= 0.5
        epoch_time = base_time * (1.35 if e == 1 else 1.0) * (1 + rng.gauss(0, 0.015))
        data = epoch_time * data_share
        compute = epoch_time * (1 - data_share) * 0.97
        rows.append(
            {
                "epoch": e,
                "train_loss": train_loss,
                "train_acc": train_acc,
                "epoch_time_s": epoch_time,
                "data_time_s": data,
                "compute_time_s": compute,
                "steps": 16,
                "samples": 512,
                "lr": 0.05,
                "test_loss": test_loss,
                "test_acc": test_acc,
            }
        )
    return rows


def _results(rows: list[dict[str, Any]], profile: dict[str, Any], behaviour: str, target: float, k: int,
             rng: random.Random) -> dict[str, Any]:  # fmt: skip
    last = rows[-1]
    train_time = sum(r["epoch_time_s"] for r in rows)
    reach = next((r for r in rows if r["train_acc"] >= target), None)
    n_test = 120
    correct = round(last["test_acc"] * n_test)
    per = n_test // k
    confusion = [[0] * k for _ in range(k)]
    wrong = n_test - correct
    for i in range(k):
        confusion[i][i] = per
    for w in range(wrong):  # move `wrong` samples off the diagonal
        i = w % k
        confusion[i][i] -= 1
        confusion[i][(i + 1 + w % max(k - 1, 1)) % k] += 1
    flops_per_s = profile["train_flops_per_sample"] * 512 * len(rows) / train_time
    peak = 2.0e11
    if behaviour == "slow_device":
        peak = flops_per_s * 50  # 2% MFU
    lat = 0.05 + profile["macs"] / 2e6
    return {
        "train_time_s": train_time,
        "epochs": len(rows),
        "data_time_s": sum(r["data_time_s"] for r in rows),
        "compute_time_s": sum(r["compute_time_s"] for r in rows),
        "epoch_time_mean_s": train_time / len(rows),
        "train_loss": last["train_loss"],
        "train_acc": last["train_acc"],
        "test_loss": last["test_loss"],
        "test_acc": last["test_acc"],
        "best_test_acc": max(r["test_acc"] for r in rows),
        "device": "cpu",
        "threads": 8,
        "num_train": 512,
        "num_test": n_test,
        "normalize_mean": [0.5],
        "normalize_std": [0.25],
        "peak_rss_mb": 310.0 + rng.random() * 5,
        "rss_before_mb": 290.0,
        "peak_mem_mb": 310.0 + rng.random() * 5,
        "epochs_to_target": reach["epoch"] if reach else None,
        "time_to_target_s": sum(r["epoch_time_s"] for r in rows[: reach["epoch"]]) if reach else None,
        "test_epochs_to_target": None,
        "test_time_to_target_s": None,
        **{k2: v for k2, v in profile.items() if k2 != "layers"},
        "train_flops_per_s": flops_per_s,
        "peak_flops": peak,
        "mfu": flops_per_s / peak,
        "confusion": confusion,
        "infer_total_s": lat * n_test / 1000,
        "infer_ms_per_image": lat,
        "infer_images": n_test,
        "latency_p50_ms": lat,
        "latency_p90_ms": lat * 1.1,
        "latency_p99_ms": lat * 1.4,
        "latency_mean_ms": lat * 1.02,
        "latency_std_ms": lat * 0.05,
        "throughput_ips": 1000 / lat * 4,
        "throughput_batch": 256,
        "resumed_from_epoch": None,
        "custom_metric": 42.5,  # an unknown figure: results.csv must carry it generically
    }


def write_sample_store(
    out_dir: str | Path,
    config: dict[str, Any] | None = None,
    behaviour: dict[str, str] | None = None,
    seed: int = 0,
    classes: list[str] | None = None,
) -> Store:
    """Create ``<out_dir>/trainlab.db`` for ``config`` (default :func:`sample_config`) with generated runs.

    ``behaviour`` maps variant names to one of :data:`BEHAVIOURS` (default ``done``); ``classes`` are stored
    as ``results["classes"]`` when given.
    """
    from trainlab.study import load_study

    study = load_study(config or sample_config())
    store = Store(Path(out_dir) / "trainlab.db")
    store.set_plan(study)
    behaviour = behaviour or {}
    variants = list(dict.fromkeys(r.variant for r in study.runs))
    for spec in study.runs:
        how = behaviour.get(spec.variant, "done")
        if how not in BEHAVIOURS:
            raise ValueError(f"unknown behaviour {how!r}; allowed: {', '.join(BEHAVIOURS)}")
        if how == "pending":
            continue
        index = variants.index(spec.variant)
        rng = random.Random(seed * 1000 + index * 10 + spec.repeat)
        k = spec.config.data.options.num_classes
        hidden = spec.config.model.kwargs.get("hidden") or [32]
        profile = _profile(int(hidden[0]), k)
        if how == "skipped":
            store.finish_run(spec.run_id, "skipped", error="device 'cuda' requested but CUDA is not available")
            continue
        store.start_run(spec.run_id, env=_env(), profile=profile)
        if how == "failed":
            detail = "Traceback (most recent call last):\n  ...\nRuntimeError: shapes <64> & <32>"
            store.finish_run(
                spec.run_id, "failed", error="RuntimeError: mat1 and mat2 shapes <64> & <32>", detail=detail
            )
            continue
        rows = _epochs(index, how, spec.config.train.epochs, rng, k)
        if how == "diverged":
            store.add_epoch(spec.run_id, rows[0])
            store.add_epoch(spec.run_id, {**rows[1], "train_loss": float("nan"), "test_loss": None, "test_acc": None})
            store.finish_run(spec.run_id, "diverged", error="training loss became nan in epoch 2")
            continue
        if how == "running":
            for row in rows[: max(len(rows) // 2, 1)]:
                store.add_epoch(spec.run_id, row)
            continue
        for row in rows:
            store.add_epoch(spec.run_id, row)
        target = spec.config.train.target_accuracy or 0.8
        results = _results(rows, profile, how, target, k, rng)
        if classes:
            results["classes"] = list(classes)
        store.finish_run(spec.run_id, "done", results=results)
    return store
