"""Measuring one variant of a run's model: accuracy, agreement with float, batch-1 latency and throughput.

The same function measures the float baseline and every variant, in the same process and conditions:
- ``test_acc`` (or ``test_mse``), ``test_loss``: the test samples in batches of ``throughput_batch``, the
  remainder one by one (so a compiled int8 model is compiled for two shapes only);
- ``agreement``: fraction of test samples whose predicted class equals the float model's; ``max_abs_diff``:
  largest |logit - float logit| over the test samples;
- ``latency_p50_ms``/``p90``/``p99``: batch-1 forwards after warm-up (:mod:`trainlab.measure.latency`);
- ``throughput_ips``: images/s at batch ``throughput_batch``;
- ``first_calls_s``: the first call at each of those two shapes (compiles a compiled model), never sampled.
"""

from __future__ import annotations

import time
from typing import Any

import torch
from torch import nn

from trainlab.config import DeployConfig
from trainlab.deploy.inputs import CPU, DeployInputs
from trainlab.measure.latency import latency_percentiles, throughput


def forward_all(model: nn.Module, x: torch.Tensor, batch: int) -> torch.Tensor:
    """Logits of every sample of ``x``: full batches of ``batch``, then the remainder one sample at a time."""
    outs = []
    full = len(x) - len(x) % batch
    with torch.inference_mode():
        for start in range(0, full, batch):
            outs.append(model(x[start : start + batch]).float())
        for i in range(full, len(x)):
            outs.append(model(x[i : i + 1]).float())
    return torch.cat(outs)


def measure(
    model: nn.Module, inputs: DeployInputs, cfg: DeployConfig, reference: torch.Tensor | None = None
) -> tuple[dict[str, Any], torch.Tensor]:
    """Accuracy, latency and throughput of ``model`` (any callable nn.Module); also its test logits.

    ``reference``: the float model's test logits, for ``agreement`` and ``max_abs_diff``.
    """
    batch = min(cfg.throughput_batch, max(len(inputs.test_x), 1))
    figures: dict[str, Any] = {}
    # First call at each shape the model will see: compiles a compiled model; timed and reported, never sampled.
    t0 = time.perf_counter()
    with torch.inference_mode():
        model(inputs.test_x[:1])
        model(inputs.test_x[:batch])
    figures["first_calls_s"] = time.perf_counter() - t0

    logits = forward_all(model, inputs.test_x, batch)
    figures.update(_quality(logits, inputs.test_y, inputs.task, reference))
    figures.update(latency_percentiles(model, inputs.test_x, CPU, cfg.latency_warmup, cfg.latency_repeats))
    tiled = inputs.test_x[: cfg.throughput_batch]
    figures.update(throughput(model, tiled, CPU, cfg.throughput_batch, min_time_s=cfg.throughput_time_s))
    figures["threads"] = torch.get_num_threads()
    return figures, logits


def _quality(logits: torch.Tensor, y: torch.Tensor, task: str, reference: torch.Tensor | None) -> dict[str, Any]:
    """Test accuracy and loss (regression: MSE) of ``logits``; agreement and difference with ``reference``."""
    figures: dict[str, Any] = {}
    if task == "classification":
        figures["test_acc"] = float((logits.argmax(1) == y).float().mean())
        figures["test_loss"] = float(nn.functional.cross_entropy(logits, y))
    else:
        figures["test_mse"] = float(nn.functional.mse_loss(logits.reshape(y.shape), y.float()))
    if reference is not None:
        figures["max_abs_diff"] = float((logits - reference).abs().max())
        if task == "classification":
            figures["agreement"] = float((logits.argmax(1) == reference.argmax(1)).float().mean())
    figures["test_samples"] = len(y)
    return figures
