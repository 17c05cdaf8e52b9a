"""The training step and evaluation: what one batch does, and how a split is scored.

``train_step`` is the whole optimisation step of one batch — forward, loss, backward, optimizer step — and
nothing else: no timing, no logging, no device synchronisation, so it is the unit a later compiler or CUDA graph
can capture. Conventions: the returned loss is the data loss only; the explicit L2 penalty (``train.l2``) is
added for the gradient but not reported, so variants with and without it stay comparable.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import torch
from torch import nn

from trainlab.errors import TrainlabError

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def make_loss(name: str, task: str, num_outputs: int) -> LossFn:
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


def forward_loss(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    loss_fn: LossFn,
    l2: float = 0.0,
    autocast: Callable[[], AbstractContextManager[Any]] = nullcontext,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The forward half of a step: (outputs, data loss, loss to differentiate = data loss + L2 penalty)."""
    with autocast():
        out = model(x)
        loss = loss_fn(out, y)
        total = loss + l2 * l2_penalty(model).to(loss.device) if l2 else loss
    return out, loss, total


def train_step(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    loss_fn: LossFn,
    optimizer: torch.optim.Optimizer,
    l2: float = 0.0,
    autocast: Callable[[], AbstractContextManager[Any]] = nullcontext,
    scaler: torch.amp.GradScaler | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimisation step on the batch ``(x, y)``; returns the detached (data loss, outputs).

    Shapes: ``x`` is (batch, *input_shape), ``y`` is (batch,) class indices or (batch, ...) regression targets;
    the outputs are (batch, num_outputs). ``autocast``: the mixed-precision region of the forward pass and
    loss; ``scaler``: fp16's gradient scaler. Nothing here reads a value back to the host (a scaler does, to
    skip a step whose gradients overflowed).
    """
    out, loss, total = forward_loss(model, x, y, loss_fn, l2, autocast)
    optimizer.zero_grad(set_to_none=True)
    if scaler is None:
        total.backward()
        optimizer.step()
    else:
        scaler.scale(total).backward()
        scaler.step(optimizer)
        scaler.update()
    return loss.detach(), out.detach()


@torch.no_grad()
def evaluate(
    model: nn.Module,
    loader: Any,
    loss_fn: LossFn,
    task: str,
    num_classes: int,
    confusion: bool = False,
    target_scale: float = 1.0,
    autocast: Callable[[], AbstractContextManager[Any]] = nullcontext,
) -> dict[str, Any]:
    """Mean loss and accuracy over ``loader`` in ``eval()`` mode (regression: loss, MAE and R²).

    ``target_scale`` converts a scaled regression target's MAE back to the target's units (R² is unchanged);
    ``autocast``: the run's mixed-precision region (a model trained in bf16 is evaluated in bf16).
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
        with autocast():
            out = model(x)
            loss = loss_fn(out, y)
        out = out.float()
        loss_sum += float(loss) * len(y)
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
