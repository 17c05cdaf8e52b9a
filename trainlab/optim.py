"""Optimizers and learning-rate schedules, built from a [train] config and the model they will train.

Kept apart from the loop so the profiler can build the same optimizers without importing the data pipeline.
"""

from __future__ import annotations

import torch
from torch import nn

from trainlab.config import TrainConfig


def build_optimizer(cfg: TrainConfig, model: nn.Module) -> torch.optim.Optimizer:
    """The optimizer named by ``cfg.optimizer``, built from ``model``'s trainable parameters."""
    params = [p for p in model.parameters() if p.requires_grad]
    wd = cfg.weight_decay
    match cfg.optimizer:
        case "sgd" | "nesterov":
            nesterov = cfg.optimizer == "nesterov" or cfg.nesterov
            return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, nesterov=nesterov, weight_decay=wd)
        case "adagrad":
            return torch.optim.Adagrad(params, lr=cfg.lr, weight_decay=wd)
        case "adadelta":
            return torch.optim.Adadelta(params, lr=cfg.lr, weight_decay=wd)
        case "adam":
            return torch.optim.Adam(params, lr=cfg.lr, weight_decay=wd)
        case "adamw":
            return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=wd)
        case "rmsprop":
            return torch.optim.RMSprop(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=wd)
    raise AssertionError(cfg.optimizer)  # unreachable: the config validated the name


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
