"""The optimizer catalogue: the names a study may use and how each is built from a model's parameters.

A low-level component (torch only) because two layers build optimizers: the engine trains with one, and the
profiler (``trainlab.measure.complexity``) takes one real step to count non-zero gradients.
"""

from __future__ import annotations

import torch
from torch import nn

from trainlab.errors import unknown_name

OPTIMIZERS = ("sgd", "nesterov", "adagrad", "adadelta", "adam", "adamw", "rmsprop")


def check_optimizer_name(name: str) -> None:
    """Raise :class:`~trainlab.errors.ConfigError` (with a did-you-mean) unless ``name`` is an optimizer."""
    if name not in OPTIMIZERS:
        raise unknown_name("optimizer", name, OPTIMIZERS)


def make_optimizer(
    name: str,
    model: nn.Module,
    *,
    lr: float,
    momentum: float = 0.0,
    nesterov: bool = False,
    weight_decay: float = 0.0,
    capturable: bool = False,
) -> torch.optim.Optimizer:
    """The optimizer ``name`` over ``model``'s trainable parameters ('nesterov' is SGD with nesterov=True).

    ``capturable``: keep the optimizer's step counters on the device so its step can be captured in a CUDA
    graph (adam, adamw, rmsprop, adadelta have that form; sgd needs none; adagrad has none).
    """
    check_optimizer_name(name)
    params = [p for p in model.parameters() if p.requires_grad]
    wd = weight_decay
    cap = {"capturable": True} if capturable else {}
    match name:
        case "sgd" | "nesterov":
            nesterov = name == "nesterov" or nesterov
            return torch.optim.SGD(params, lr=lr, momentum=momentum, nesterov=nesterov, weight_decay=wd)
        case "adagrad":
            return torch.optim.Adagrad(params, lr=lr, weight_decay=wd)
        case "adadelta":
            return torch.optim.Adadelta(params, lr=lr, weight_decay=wd, **cap)
        case "adam":
            return torch.optim.Adam(params, lr=lr, weight_decay=wd, **cap)
        case "adamw":
            return torch.optim.AdamW(params, lr=lr, weight_decay=wd, **cap)
        case "rmsprop":
            return torch.optim.RMSprop(params, lr=lr, momentum=momentum, weight_decay=wd, **cap)
    raise AssertionError(name)  # unreachable: checked above
