"""How the training step executes: eagerly, through ``torch.compile``, or captured whole in one CUDA graph.

``train.compile``:

- ``none``: :func:`~trainlab.engine.step.train_step` on the model, eagerly.
- ``default`` / ``max-autotune``: the same step on ``torch.compile(model, mode=...)``. Compilation happens in a
  warm-up before the first epoch — a forward and backward pass for each batch shape the epoch will see (the
  full batch and a smaller last one), on the real model, with its parameters, buffers (BatchNorm statistics),
  gradients and RNG state restored afterwards — so epoch 1 is not charged for it. Its wall time is
  ``compile_time_s``. Evaluation and inference run the compiled model too (its eval-mode graph compiles on
  first use, outside the training clock and behind the latency warm-up).
- ``cuda-graph`` (CUDA only): forward, backward *and optimizer step* captured once in a CUDA graph and replayed
  per batch from static input buffers, so a step is one launch instead of hundreds: what removes the
  launch-bound gap of small models on a big GPU. Correctness:

  * the capture's warm-up iterations (needed so lazily created state — momentum buffers, Adam moments —
    exists) run on the real model and optimizer, which are then restored in place (same tensors, so the graph
    keeps pointing at them): the first replay starts from the same state an eager run would;
  * BatchNorm's running statistics and ``num_batches_tracked`` are in-place buffer updates: captured, so each
    replay updates them as an eager step would; momentum buffers likewise;
  * the learning rate: an epoch-level schedule (step, cosine) or a constant rate is a number baked into the
    capture, so the graph is re-captured whenever the rate has changed at an epoch boundary (milliseconds);
    a per-batch schedule (onecycle) needs the rate in GPU memory: the optimizer is built ``capturable`` with a
    tensor learning rate, which the scheduler updates in place and every replay reads — torch supports this for
    adam, adamw, rmsprop and adadelta, and the config refuses the combination with others;
  * a last batch of another size is run eagerly on the same model and optimizer;
  * dropout draws from CUDA's graph-safe generator: each replay gets fresh random numbers, but not the stream an
    eager run would have drawn, so a graph run equals an eager run only up to dropout's masks;
  * fp16's gradient scaler reads values back to the host every step and cannot be captured (refused by the
    config); bf16 needs no scaler.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import torch
from torch import nn

from trainlab.engine.device import DeviceUnavailable
from trainlab.engine.step import LossFn, forward_loss, train_step
from trainlab.measure.clock import synchronize

Autocast = Callable[[], AbstractContextManager[Any]]
Batch = tuple[torch.Tensor, torch.Tensor]


class EagerStep:
    """The training step as written, on the model itself."""

    mode = "none"

    def __init__(
        self,
        model: nn.Module,
        loss_fn: LossFn,
        optimizer: torch.optim.Optimizer,
        l2: float,
        autocast: Autocast,
        scaler: torch.amp.GradScaler | None,
    ) -> None:
        self.model = model  # the module whose state_dict is saved: never a compiled wrapper
        self.run_model: nn.Module = model  # what the step, evaluation and inference call
        self.loss_fn, self.optimizer, self.l2 = loss_fn, optimizer, l2
        self.autocast, self.scaler = autocast, scaler
        self.compile_time_s: float | None = None

    @property
    def compiled(self) -> bool:
        return self.run_model is not self.model

    def prepare(self, examples: list[Batch]) -> None:
        """Get ready for batches shaped like ``examples`` (compile, capture); timed as ``compile_time_s``."""

    def epoch_start(self) -> None:
        """Called before each epoch's first step."""

    def step(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One training step; returns the detached (data loss, outputs)."""
        return train_step(self.run_model, x, y, self.loss_fn, self.optimizer, self.l2, self.autocast, self.scaler)


class _Snapshot:
    """The model's parameters and buffers, its gradients and the RNG states, restored in place."""

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer | None = None) -> None:
        self.model, self.optimizer = model, optimizer
        self.tensors = {k: v.detach().clone() for k, v in model.state_dict(keep_vars=True).items()}
        self.grads = [None if p.grad is None else p.grad.clone() for p in model.parameters()]
        self.opt_state = _clone_state(optimizer) if optimizer is not None else None
        self.cpu_rng = torch.get_rng_state()
        self.cuda_rng = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None

    def restore(self) -> None:
        with torch.no_grad():
            for k, v in self.model.state_dict(keep_vars=True).items():
                v.copy_(self.tensors[k])
        for p, g in zip(self.model.parameters(), self.grads):
            if g is None:
                p.grad = None
            elif p.grad is not None:
                p.grad.copy_(g)
        if self.optimizer is not None and self.opt_state is not None:
            _restore_state(self.optimizer, self.opt_state)
        torch.set_rng_state(self.cpu_rng)
        if self.cuda_rng is not None:
            torch.cuda.set_rng_state_all(self.cuda_rng)


def _clone_state(optimizer: torch.optim.Optimizer) -> dict[int, dict[str, Any]]:
    return {
        id(p): {k: v.clone() if torch.is_tensor(v) else v for k, v in st.items()} for p, st in optimizer.state.items()
    }


def _restore_state(optimizer: torch.optim.Optimizer, saved: dict[int, dict[str, Any]]) -> None:
    """Put the optimizer's state back, in place: tensors created since the snapshot are zeroed (a momentum
    buffer or Adam moment that did not exist starts from zero, which is what its first update assumes)."""
    for p, st in optimizer.state.items():
        before = saved.get(id(p), {})
        for k, v in st.items():
            if torch.is_tensor(v):
                with torch.no_grad():
                    v.copy_(before[k]) if k in before else v.zero_()
            elif k in before:
                st[k] = before[k]


class CompiledStep(EagerStep):
    """The step on ``torch.compile(model)``; compilation in a side-effect-free warm-up, timed."""

    def __init__(self, mode: str, *args: Any) -> None:
        super().__init__(*args)
        self.mode = mode
        self.run_model = torch.compile(self.model, mode=None if mode == "default" else mode)

    def prepare(self, examples: list[Batch]) -> None:
        device = next(self.model.parameters()).device
        snap = _Snapshot(self.model)
        synchronize(device)
        t0 = time.perf_counter()
        for x, y in examples:
            _, _, total = forward_loss(self.run_model, x, y, self.loss_fn, self.l2, self.autocast)
            total.backward()
        synchronize(device)
        self.compile_time_s = time.perf_counter() - t0
        snap.restore()


class GraphStep(EagerStep):
    """The whole step — forward, backward, optimizer — captured in one CUDA graph, replayed per batch."""

    mode = "cuda-graph"
    WARMUP_STEPS = 3  # eager iterations on a side stream before capture, as torch's documentation asks

    def __init__(self, *args: Any, per_batch_lr: bool) -> None:
        super().__init__(*args)
        if not torch.cuda.is_available() or next(self.model.parameters()).device.type != "cuda":
            raise DeviceUnavailable("train.compile = 'cuda-graph' captures CUDA work: it needs the run on a GPU")
        self.per_batch_lr = per_batch_lr
        self.graph: torch.cuda.CUDAGraph | None = None
        self.static: dict[str, torch.Tensor] = {}
        self.captured_lr: list[float] = []
        self.example: Batch | None = None
        if per_batch_lr:  # the rate lives in GPU memory: the scheduler writes it, every replay reads it
            device = next(self.model.parameters()).device
            for group in self.optimizer.param_groups:
                group["lr"] = torch.tensor(float(group["lr"]), device=device)

    def _lrs(self) -> list[float]:
        return [float(g["lr"]) for g in self.optimizer.param_groups]

    def prepare(self, examples: list[Batch]) -> None:
        self.example = examples[0]
        t0 = time.perf_counter()
        self._capture()
        self.compile_time_s = time.perf_counter() - t0

    def epoch_start(self) -> None:
        if not self.per_batch_lr and self._lrs() != self.captured_lr:
            self._capture()  # an epoch-level schedule changed the baked-in rate

    def _capture(self) -> None:
        assert self.example is not None
        x0, y0 = self.example
        self.static = {"x": x0.clone(), "y": y0.clone()}
        snap = _Snapshot(self.model, self.optimizer)
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(self.WARMUP_STEPS):
                train_step(self.model, self.static["x"], self.static["y"], self.loss_fn, self.optimizer, self.l2,
                           self.autocast)  # fmt: skip
        torch.cuda.current_stream().wait_stream(side)
        snap.restore()  # the warm-up made the lazy state exist; the values go back to before it
        self.optimizer.zero_grad(set_to_none=True)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            out, loss, total = forward_loss(
                self.model, self.static["x"], self.static["y"], self.loss_fn, self.l2, self.autocast
            )
            total.backward()
            self.optimizer.step()
        self.static["loss"], self.static["out"] = loss.detach(), out.detach()
        self.graph = graph
        self.captured_lr = self._lrs()

    def step(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.graph is None or x.shape != self.static["x"].shape:
            return train_step(self.model, x, y, self.loss_fn, self.optimizer, self.l2, self.autocast)
        self.static["x"].copy_(x, non_blocking=True)
        self.static["y"].copy_(y, non_blocking=True)
        self.graph.replay()
        return self.static["loss"], self.static["out"]


def make_stepper(
    mode: str,
    model: nn.Module,
    loss_fn: LossFn,
    optimizer: torch.optim.Optimizer,
    l2: float,
    autocast: Autocast,
    scaler: torch.amp.GradScaler | None,
    per_batch_lr: bool,
) -> EagerStep:
    """The step for ``train.compile = mode``."""
    args = (model, loss_fn, optimizer, l2, autocast, scaler)
    if mode == "none":
        return EagerStep(*args)
    if mode == "cuda-graph":
        return GraphStep(*args, per_batch_lr=per_batch_lr)
    return CompiledStep(mode, *args)
