"""Optimizers and learning-rate schedules, built from a [train] config and the model they will train."""

from __future__ import annotations

import torch
from torch import nn

from trainlab.config import TrainConfig
from trainlab.optim import make_optimizer


def build_optimizer(cfg: TrainConfig, model: nn.Module) -> torch.optim.Optimizer:
    """The optimizer named by ``cfg.optimizer``, built from ``model``'s trainable parameters."""
    return make_optimizer(
        cfg.optimizer,
        model,
        lr=cfg.lr,
        momentum=cfg.momentum,
        nesterov=cfg.nesterov,
        weight_decay=cfg.weight_decay,
        capturable=cfg.compile == "cuda-graph",  # the whole step, optimizer included, is captured
    )


def build_scheduler(
    cfg: TrainConfig, optimizer: torch.optim.Optimizer, steps_per_epoch: int
) -> tuple[torch.optim.lr_scheduler.LRScheduler | None, bool]:
    """(scheduler, steps per batch?) for ``cfg.scheduler``; epoch schedulers step once per epoch."""
    match cfg.scheduler:
        case "step":
            return torch.optim.lr_scheduler.StepLR(optimizer, cfg.step_size, cfg.gamma), False
        case "cosine":
            return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg.epochs), False
        case "onecycle":
            sched = torch.optim.lr_scheduler.OneCycleLR(
                optimizer, max_lr=cfg.lr, epochs=cfg.epochs, steps_per_epoch=steps_per_epoch
            )
            return sched, True
    return None, False
