"""The anatomy and cost of a model, by one stated convention.

- params / trainable_params / frozen_params: parameter entries; a parameter shared by two modules counts once.
- macs: multiply-accumulates of one forward pass at batch 1 in ``eval()`` mode, counted by
  ``torch.utils.flop_counter.FlopCounterMode`` (convolutions and matrix products only; bias, activations,
  pooling, normalisation and resizing are not counted). ``flops = 2 * macs``. This matches fvcore and
  thop >= 0.1. Worked example, the MNIST SimpleCNN on 1x28x28: conv 1->32 3x3 pad 1 is
  32*28*28 outputs x 1*3*3 = 225,792 MACs; conv 32->64 3x3 on 14x14 is 64*14*14 x 32*3*3 = 3,612,672;
  linear 3136->10 is 31,360; total 3,869,824 MACs.
- train_flops_per_sample: FLOPs of one training step (forward in ``train()`` mode + backward, no optimizer)
  counted the same way at batch 2 and divided by 2 (batch norm needs more than one sample in training mode).
  Frozen parameters get no weight gradient, so freezing lowers it. Roughly 3x the forward FLOPs otherwise.
- size_mb: bytes of parameters and buffers in memory / 2^20; saved_kb: bytes of the ``torch.save``-d
  state_dict / 2^10 (counted while serialising, nothing is written; a buffer's zip records are named
  ``archive/...``, a file's after its stem, so a file on disk differs by a few bytes per tensor).
- conv_layers / linear_layers: Conv*/ConvTranspose* and ``nn.Linear`` modules (ResNet-18 has 20 convolutions:
  the stem, 16 in its blocks and 3 1x1 shortcuts); last_linear_in_features: the last-registered Linear's input
  width (the classifier's feature count).
- nonzero_grads: gradient entries that are non-zero after one optimizer step on a seeded random batch of 2
  (standard normal inputs, uniform random labels), on a copy of the model.

Counting runs on a copy of the model on PyTorch's ``meta`` device (shapes only, no arithmetic), so it costs
almost nothing even for large models; a model whose forward needs real values (data-dependent control flow,
CPU tensors created inside forward) is counted on a real copy instead. Only ``nonzero_grads`` needs real
arithmetic: one forward and backward at batch 2, on one CPU thread. The model passed in is never modified,
nor the global RNG or the thread count.
"""

from __future__ import annotations

import contextlib
import copy
import io
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from trainlab.optim import check_optimizer_name, make_optimizer

CONV_TYPES = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
ROOT_ROW = "(model)"  # layer-table name of the model's own work (parameters or ops not inside a child module)
TRAIN_BATCH = 2  # batch of the counted training step and of the nonzero_grads step


@dataclass
class LayerRow:
    """One row of the layer table: a leaf module, or a module with its own parameters or operations.

    ``output_shape`` is at batch 1 (``[1, C, H, W]``); ``macs`` are the module's own (not its children's).
    """

    name: str
    type: str
    output_shape: list[int] | None
    params: int
    macs: int
    trainable_params: int = 0


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
        """Figures and layer table, JSON-ready."""
        return asdict(self)

    def conv_share(self) -> float:
        """The fraction of the forward pass's MACs done by convolution layers (the rest: matmuls)."""
        conv = sum(r.macs for r in self.layers if "Conv" in r.type)
        return conv / self.macs if self.macs else 0.0


# ------------------------------------------------------------------------------------------------------
# Sizes


def count_params(model: nn.Module) -> tuple[int, int]:
    """(total, trainable) parameter counts; shared parameters are counted once."""
    total = trainable = 0
    for p in model.parameters():  # parameters() already yields a shared parameter once
        total += p.numel()
        if p.requires_grad:
            trainable += p.numel()
    return total, trainable


def size_in_memory_mb(model: nn.Module) -> float:
    """Bytes of parameters and buffers / 2^20."""
    nbytes = sum(p.numel() * p.element_size() for p in model.parameters())
    nbytes += sum(b.numel() * b.element_size() for b in model.buffers())
    return nbytes / 2**20


class _ByteCounter(io.RawIOBase):
    """A write-only sink that counts bytes (torch.save's zip writer only calls write and flush)."""

    def __init__(self) -> None:
        self.n = 0

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        n = memoryview(b).nbytes
        self.n += n
        return n


def saved_size_kb(model: nn.Module) -> float:
    """Bytes of ``torch.save(model.state_dict())`` / 2^10, counted without keeping the bytes."""
    sink = _ByteCounter()
    torch.save(model.state_dict(), sink)
    return sink.n / 1024.0


# ------------------------------------------------------------------------------------------------------
# Copies the counter works on


def _model_device_dtype(model: nn.Module) -> tuple[torch.device, torch.dtype]:
    for p in model.parameters():
        return p.device, p.dtype if p.dtype.is_floating_point else torch.float32
    for b in model.buffers():
        if b.dtype.is_floating_point:
            return b.device, b.dtype
    return torch.device("cpu"), torch.float32


def _example(input_shape: tuple[int, ...], batch: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """A seeded standard-normal batch ``(batch, *input_shape)``; on ``meta`` only its shape exists."""
    if device.type == "meta":
        return torch.empty((batch, *input_shape), dtype=dtype, device=device)
    g = torch.Generator().manual_seed(0)
    return torch.randn((batch, *input_shape), generator=g, dtype=dtype).to(device)


def _meta_clone(model: nn.Module) -> nn.Module:
    """A deep copy whose parameters and buffers live on the ``meta`` device (no data copied)."""
    memo: dict[int, Any] = {}
    for t in model.parameters():
        memo[id(t)] = nn.Parameter(t.detach().to("meta"), requires_grad=t.requires_grad)
    for t in model.buffers():
        memo[id(t)] = t.detach().to("meta")
    return copy.deepcopy(model, memo)


# ------------------------------------------------------------------------------------------------------
# Counting


@dataclass
class _Count:
    total: int  # MACs of the whole pass
    per_module: dict[str, int]  # MACs by module name (a parent includes its children), root is ""
    shapes: dict[str, list[int]]  # output shape by module name


def _counted_pass(
    model: nn.Module,
    input_shape: tuple[int, ...],
    batch: int,
    train: bool,
    num_outputs: int = 2,
    seed: int = 0,
    counted: bool = True,
) -> tuple[_Count, torch.Tensor | None]:
    """Run ``model`` (forward, and backward when ``train``) under FlopCounterMode; MACs are FLOPs / 2.

    Returns the count and the loss (None for a forward-only pass). ``model`` is used as given: callers pass
    a meta or real copy. ``counted=False``: the same pass without the counter (its count is then 0), for
    the gradients alone.
    """
    device, dtype = _model_device_dtype(model)
    root = type(model).__name__
    shapes: dict[str, list[int]] = {}
    handles = []
    for name, mod in model.named_modules():

        def hook(_m: nn.Module, _i: Any, out: Any, name: str = name) -> None:
            if isinstance(out, torch.Tensor):
                shapes[name] = list(out.shape)

        handles.append(mod.register_forward_hook(hook))
    model.train(train)
    loss = None
    try:
        x = _example(input_shape, batch, device, dtype)
        counter = FlopCounterMode(display=False)
        with torch.set_grad_enabled(train), counter if counted else contextlib.nullcontext():
            out = model(x)
            if train:
                loss = _loss(out, num_outputs, seed)
                if loss.requires_grad:  # False when every parameter is frozen: nothing to backpropagate
                    loss.backward()
    finally:
        for h in handles:
            h.remove()
    per_module: dict[str, int] = {}
    for key, ops in counter.get_flop_counts().items():
        if key == root:
            per_module[""] = int(sum(ops.values())) // 2
        elif key.startswith(root + "."):
            per_module[key[len(root) + 1 :]] = int(sum(ops.values())) // 2
    return _Count(int(counter.get_total_flops()) // 2, per_module, shapes), loss


def _loss(out: Any, num_outputs: int, seed: int) -> torch.Tensor:
    """Cross-entropy on seeded random labels for (B, K>1) logits; otherwise the mean square of the output."""
    if isinstance(out, tuple | list):  # e.g. (logits, aux): the first output is the prediction
        out = out[0]
    if out.dim() == 2 and out.shape[1] > 1:
        g = torch.Generator().manual_seed(seed)
        target = torch.randint(0, max(num_outputs, 1), (out.shape[0],), generator=g)
        target = target.clamp(max=out.shape[1] - 1).to(out.device)
        return nn.functional.cross_entropy(out, target)
    return out.float().pow(2).mean()


def _count(model: nn.Module, input_shape: tuple[int, ...], batch: int, train: bool, num_outputs: int = 2) -> _Count:
    """Count on a meta copy; fall back to a real copy when the forward needs real values."""
    try:
        count, _ = _counted_pass(_meta_clone(model), input_shape, batch, train, num_outputs)
        return count
    except Exception:  # any failure on meta (data-dependent code, CPU tensors made in forward): count for real
        with _one_thread(), torch.random.fork_rng(devices=_cuda_devices(model)):
            torch.manual_seed(0)
            count, _ = _counted_pass(copy.deepcopy(model), input_shape, batch, train, num_outputs)
        return count


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """Run the profiler's real arithmetic on one CPU thread, then restore the caller's thread count.

    The work is small (batch 2), so more threads gain little, and on a busy machine OpenMP threads competing
    for cores made it several times slower (ResNet-18: 0.8 s on one thread vs 5 s on two at load 7 on 2
    cores). One thread also makes the floating-point summation order independent of the machine.
    """
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


def _cuda_devices(model: nn.Module) -> list[int]:
    device, _ = _model_device_dtype(model)
    return [device.index or 0] if device.type == "cuda" else []


def count_forward(model: nn.Module, input_shape: tuple[int, ...]) -> tuple[int, dict[str, int], dict[str, list[int]]]:
    """Forward MACs at batch 1 (eval mode, no grad), MACs per module name, and each module's output shape.

    Per-module MACs include the module's children; the root module is the empty name ``""``.
    """
    c = _count(model, tuple(input_shape), 1, train=False)
    return c.total, c.per_module, c.shapes


def build_optimizer_for(name: str, model: nn.Module) -> torch.optim.Optimizer:
    """A default-hyper-parameter optimizer of kind ``name`` for profiling's one step.

    Raises :class:`~trainlab.errors.ConfigError` for an unknown name (with a did-you-mean).
    """
    momentum = 0.9 if name == "nesterov" else 0.0  # nesterov needs momentum > 0
    return make_optimizer(name, model, lr=0.01, momentum=momentum)


def _real_train_step(
    model: nn.Module,
    input_shape: tuple[int, ...],
    num_outputs: int,
    optimizer: str,
    seed: int = 0,
    counted: bool = True,
) -> tuple[int, int]:
    """One counted training step on a real copy: (training MACs of the batch, non-zero gradient entries);
    ``counted=False``: the same step without the counter (MACs 0), several times faster.

    The caller's model, its batch-norm statistics and the global RNG (CPU and CUDA) are left untouched.
    """
    with _one_thread(), torch.random.fork_rng(devices=_cuda_devices(model)):
        torch.manual_seed(seed)  # dropout masks
        clone = copy.deepcopy(model)
        for p in clone.parameters():
            p.grad = None
        trainable = any(p.requires_grad for p in clone.parameters())
        opt = build_optimizer_for(optimizer, clone) if trainable else None  # no parameters: no optimizer
        count, _ = _counted_pass(clone, input_shape, TRAIN_BATCH, train=True, num_outputs=num_outputs, seed=seed,
                                 counted=counted)  # fmt: skip
        if opt is None:
            return count.total, 0
        opt.step()
        nonzero = sum(int(torch.count_nonzero(p.grad)) for p in clone.parameters() if p.grad is not None)
        return count.total, nonzero


def nonzero_grads_after_step(
    model: nn.Module, input_shape: tuple[int, ...], num_outputs: int, optimizer: str, seed: int = 0
) -> int:
    """Non-zero gradient entries after one ``optimizer`` step on a seeded random batch of 2, on a copy."""
    return _real_train_step(model, tuple(input_shape), num_outputs, optimizer, seed)[1]


def train_step_figures(
    model: nn.Module, input_shape: tuple[int, ...], num_outputs: int, optimizer: str | None, seed: int = 0
) -> tuple[int, int | None]:
    """Training FLOPs per sample and (when ``optimizer`` is given) non-zero gradient entries after one step.

    With an optimizer the FLOPs are counted on that real step (one pass serves both figures); without one,
    on a meta copy.
    """
    input_shape = tuple(input_shape)
    if optimizer is not None:
        check_optimizer_name(optimizer)  # an unknown name fails before any work
        macs, nonzero = _real_train_step(model, input_shape, num_outputs, optimizer, seed)
    else:
        macs, nonzero = _count(model, input_shape, TRAIN_BATCH, train=True, num_outputs=num_outputs).total, None
    return 2 * macs // TRAIN_BATCH, nonzero


# ------------------------------------------------------------------------------------------------------
# The profile


def layer_rows(model: nn.Module, per_module: dict[str, int], shapes: dict[str, list[int]]) -> list[LayerRow]:
    """The layer table: leaf modules, plus any module with parameters or operations of its own.

    A module's own MACs are its count minus its children's, so the rows add up to the total (a functional
    matmul in a container's ``forward`` shows on the container's row; on the model itself as ``(model)``).
    """
    rows = []
    for name, mod in model.named_modules():
        children = [f"{name}.{c}" if name else c for c, _ in mod.named_children()]
        own_macs = per_module.get(name, 0) - sum(per_module.get(c, 0) for c in children)
        own = list(mod.parameters(recurse=False))
        is_leaf = not children
        if (name and is_leaf) or own or own_macs > 0:
            rows.append(
                LayerRow(
                    name=name or ROOT_ROW,
                    type=type(mod).__name__,
                    output_shape=shapes.get(name),
                    params=sum(p.numel() for p in own),
                    macs=max(own_macs, 0),
                    trainable_params=sum(p.numel() for p in own if p.requires_grad),
                )
            )
    return rows


def profile_model(
    model: nn.Module,
    input_shape: tuple[int, ...],
    num_outputs: int | None = None,
    optimizer: str | None = "sgd",
    train_figures: bool = True,
) -> Profile:
    """Profile ``model`` for samples of ``input_shape`` (no batch dimension). The model is not modified.

    ``num_outputs``: the class count (labels of the training step; default: the last Linear's width).
    ``optimizer``: a ``train.optimizer`` name for ``nonzero_grads`` (None: skip that step). ``train_figures``:
    False skips ``train_flops_per_sample`` and ``nonzero_grads``.
    """
    input_shape = tuple(int(d) for d in input_shape)
    total, trainable = count_params(model)
    count = _count(model, input_shape, 1, train=False)
    convs = [m for m in model.modules() if isinstance(m, CONV_TYPES)]
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    train_flops = nonzero = None
    if train_figures:
        outputs = num_outputs if num_outputs is not None else default_outputs(model)
        train_flops, nonzero = train_step_figures(model, input_shape, outputs, optimizer)
    return Profile(
        input_shape=list(input_shape),
        params=total,
        trainable_params=trainable,
        frozen_params=total - trainable,
        macs=count.total,
        flops=2 * count.total,
        train_flops_per_sample=train_flops,
        size_mb=size_in_memory_mb(model),
        saved_kb=saved_size_kb(model),
        conv_layers=len(convs),
        linear_layers=len(linears),
        last_linear_in_features=linears[-1].in_features if linears else None,
        nonzero_grads=nonzero,
        optimizer=optimizer if train_figures else None,
        layers=layer_rows(model, count.per_module, count.shapes),
    )


def default_outputs(model: nn.Module) -> int:
    """The class count a profile assumes when none is given: the last Linear's width (2 without one)."""
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    return linears[-1].out_features if linears else 2


def nonzero_grads(
    model: nn.Module, input_shape: tuple[int, ...], num_outputs: int | None = None, optimizer: str = "sgd"
) -> int:
    """A profile's ``nonzero_grads`` alone: the same seeded step on a copy, without the FLOP counter."""
    check_optimizer_name(optimizer)
    outputs = num_outputs if num_outputs is not None else default_outputs(model)
    return _real_train_step(model, tuple(int(d) for d in input_shape), outputs, optimizer, counted=False)[1]
