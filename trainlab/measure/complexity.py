"""The anatomy and cost of a model, by one stated convention.

- MACs: multiply-accumulates of one forward pass at batch 1, counted by
  ``torch.utils.flop_counter.FlopCounterMode`` (convolutions and matrix products only; bias, activations,
  pooling and normalisation are not counted). ``flops = 2 * macs``. This matches fvcore and thop >= 0.1.
- train_flops_per_sample: forward + backward FLOPs of one training step, counted the same way at batch 2 and
  divided by 2 (batch norm needs more than one sample in training mode).
- size_mb: bytes of parameters and buffers in memory / 2^20; saved_kb: bytes of the ``torch.save``-d
  state_dict / 2^10.
- nonzero_grads: non-zero gradient entries after one seeded optimizer step on a random batch, on a copy of
  the model (the model itself is never changed by profiling).
"""

from __future__ import annotations

import copy
import io
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

CONV_TYPES = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)


@dataclass
class LayerRow:
    """One leaf module of the layer table."""

    name: str
    type: str
    output_shape: list[int] | None
    params: int
    macs: int


@dataclass
class Profile:
    """The profile figures of one model (see the module docstring for each definition)."""

    input_shape: list[int]
    params: int
    trainable_params: int
    frozen_params: int
    macs: int
    flops: int
    train_flops_per_sample: int | None
    size_mb: float
    saved_kb: float
    conv_layers: int
    linear_layers: int
    last_linear_in_features: int | None
    nonzero_grads: int | None
    optimizer: str | None
    layers: list[LayerRow] = field(default_factory=list)

    def figures(self) -> dict[str, Any]:
        """The scalar figures (no layer table), as stored with a run and written to results.csv."""
        d = asdict(self)
        d.pop("layers")
        return d

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def count_params(model: nn.Module) -> tuple[int, int]:
    """(total, trainable) parameter counts; shared parameters are counted once."""
    seen: set[int] = set()
    total = trainable = 0
    for p in model.parameters():
        if id(p) in seen:
            continue
        seen.add(id(p))
        total += p.numel()
        if p.requires_grad:
            trainable += p.numel()
    return total, trainable


def size_in_memory_mb(model: nn.Module) -> float:
    """Bytes of parameters and buffers / 2^20."""
    nbytes = sum(p.numel() * p.element_size() for p in model.parameters())
    nbytes += sum(b.numel() * b.element_size() for b in model.buffers())
    return nbytes / 2**20


def saved_size_kb(model: nn.Module) -> float:
    """Bytes of ``torch.save(model.state_dict())`` / 2^10."""
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    return buf.tell() / 1024.0


def _example(input_shape: tuple[int, ...], batch: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.randn((batch, *input_shape), generator=g, dtype=dtype).to(device)


def _model_device_dtype(model: nn.Module) -> tuple[torch.device, torch.dtype]:
    for p in model.parameters():
        return p.device, p.dtype if p.dtype.is_floating_point else torch.float32
    return torch.device("cpu"), torch.float32


def count_forward(model: nn.Module, input_shape: tuple[int, ...]) -> tuple[int, dict[str, int], dict[str, list[int]]]:
    """Forward MACs at batch 1 (eval mode, no grad), MACs per leaf module, and each leaf's output shape."""
    device, dtype = _model_device_dtype(model)
    was_training = model.training
    model.eval()
    root_name = type(model).__name__
    shapes: dict[str, list[int]] = {}
    handles = []
    for name, mod in model.named_modules():
        if name and not list(mod.children()):

            def hook(_m: nn.Module, _i: Any, out: Any, name: str = name) -> None:
                if isinstance(out, torch.Tensor):
                    shapes[name] = list(out.shape)

            handles.append(mod.register_forward_hook(hook))
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(_example(input_shape, 1, device, dtype))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    per_module: dict[str, int] = {}
    for key, ops in counter.get_flop_counts().items():
        if key.startswith(root_name + "."):
            per_module[key[len(root_name) + 1 :]] = int(sum(ops.values())) // 2
    return int(counter.get_total_flops()) // 2, per_module, shapes


def build_optimizer_for(name: str, model: nn.Module) -> torch.optim.Optimizer:
    """A default-hyper-parameter optimizer of kind ``name`` for profiling's one step."""
    from trainlab.config import TrainConfig
    from trainlab.train import build_optimizer

    momentum = 0.9 if name in ("nesterov",) else 0.0
    return build_optimizer(TrainConfig(optimizer=name, momentum=momentum, lr=0.01), model)


def train_step_figures(
    model: nn.Module, input_shape: tuple[int, ...], num_outputs: int, optimizer: str | None, seed: int = 0
) -> tuple[int, int | None]:
    """Training FLOPs per sample and (when ``optimizer`` is given) non-zero gradient entries after one step.

    Works on a deep copy so the caller's model, its batch-norm statistics and its RNG are untouched.
    """
    device, dtype = _model_device_dtype(model)
    clone = copy.deepcopy(model)
    clone.train()
    cpu_rng = torch.get_rng_state()
    try:
        torch.manual_seed(seed)
        x = _example(input_shape, 2, device, dtype)
        target = torch.randint(0, max(num_outputs, 1), (2,), generator=torch.Generator().manual_seed(seed)).to(device)
        opt = build_optimizer_for(optimizer, clone) if optimizer else None
        with FlopCounterMode(display=False) as counter:
            out = clone(x)
            if out.dim() == 2 and out.shape[1] > 1:
                loss = nn.functional.cross_entropy(out, target)
            else:
                loss = out.float().pow(2).mean()
            loss.backward()
        train_flops = int(counter.get_total_flops()) // 2  # per sample: batch of 2
        nonzero = None
        if opt is not None:
            opt.step()
            nonzero = sum(int((p.grad != 0).sum()) for p in clone.parameters() if p.grad is not None)
    finally:
        torch.set_rng_state(cpu_rng)
    return train_flops, nonzero


def profile_model(
    model: nn.Module,
    input_shape: tuple[int, ...],
    num_outputs: int | None = None,
    optimizer: str | None = "sgd",
    train_figures: bool = True,
) -> Profile:
    """Profile ``model`` for samples of ``input_shape`` (no batch dimension). The model is not modified."""
    input_shape = tuple(input_shape)
    total, trainable = count_params(model)
    macs, per_module, shapes = count_forward(model, input_shape)
    convs = [m for m in model.modules() if isinstance(m, CONV_TYPES)]
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    layers = []
    for name, mod in model.named_modules():
        if name and not list(mod.children()):
            layers.append(
                LayerRow(
                    name=name,
                    type=type(mod).__name__,
                    output_shape=shapes.get(name),
                    params=sum(p.numel() for p in mod.parameters(recurse=False)),
                    macs=per_module.get(name, 0),
                )
            )
    train_flops = nonzero = None
    if train_figures:
        if num_outputs is None:
            num_outputs = linears[-1].out_features if linears else 2
        train_flops, nonzero = train_step_figures(model, input_shape, num_outputs, optimizer)
    return Profile(
        input_shape=list(input_shape),
        params=total,
        trainable_params=trainable,
        frozen_params=total - trainable,
        macs=macs,
        flops=2 * macs,
        train_flops_per_sample=train_flops,
        size_mb=size_in_memory_mb(model),
        saved_kb=saved_size_kb(model),
        conv_layers=len(convs),
        linear_layers=len(linears),
        last_linear_in_features=linears[-1].in_features if linears else None,
        nonzero_grads=nonzero,
        optimizer=optimizer if train_figures else None,
        layers=layers,
    )
