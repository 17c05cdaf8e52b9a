"""Generated data of any shape and class count, for tests and smoke runs.

Each class has a random prototype; samples are the prototype plus noise, so a model can learn them (accuracy
well above chance within an epoch) while the set is fully determined by ``train.seed``-independent sizes.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
from pydantic import Field, PositiveInt

from trainlab.data.base import Dataset, Split
from trainlab.data.options import TaskOption
from trainlab.errors import ConfigError

if TYPE_CHECKING:
    from trainlab.data.config import DataConfig

GENERATOR_SEED = 1234  # fixed: the data does not change with the run's seed
# Most the generator may hold: (train_size + test_size + num_classes) samples of data.shape in float32, its
# working precision (noise and prototypes are float32 before images become uint8). 8 GiB: far above any
# test or smoke set (tiny_study's is 3 KiB), below what a shape like [3, 100000, 100000] would try to allocate.
MAX_GENERATED_BYTES = 8 * 1024**3


def generated_bytes(shape: list[int] | tuple[int, ...], num_classes: int, train_size: int, test_size: int) -> int:
    """Bytes of float32 the generator holds for these options (Python ints: no overflow)."""
    return (train_size + test_size + num_classes) * math.prod(shape) * 4


def size_problem(shape: list[int] | tuple[int, ...], num_classes: int, train_size: int, test_size: int) -> str | None:
    """Why data.shape and the sizes cannot be generated (too many dimensions, or too large), or None."""
    if len(shape) not in (1, 3):
        return f"data.shape must be (C, H, W) or (F,), got {list(shape)}"
    need = generated_bytes(shape, num_classes, train_size, test_size)
    if need > MAX_GENERATED_BYTES:
        return (
            f"data.shape {list(shape)} with {train_size} + {test_size} samples and {num_classes} classes needs "
            f"{need / 1024**3:,.1f} GiB of float32 to generate, more than the {MAX_GENERATED_BYTES / 1024**3:,.1f} GiB "
            "allowed; make data.shape, data.train_size or data.test_size smaller"
        )
    return None


class SyntheticOptions(TaskOption):
    """``synthetic``'s options: the sample shape, the class count, the split sizes and the task."""

    shape: list[PositiveInt] = Field([1, 8, 8], description="synthetic: per-sample shape (C, H, W) or (F,).")
    num_classes: PositiveInt = Field(10, ge=2, description="synthetic: number of classes.")
    train_size: PositiveInt = Field(512, description="synthetic: training samples.")
    test_size: PositiveInt = Field(128, description="synthetic: test samples.")

    def check(self, cfg: DataConfig) -> None:
        """``data.shape`` is (C, H, W) or (F,), and the set fits in :data:`MAX_GENERATED_BYTES`."""
        problem = size_problem(self.shape, self.num_classes, self.train_size, self.test_size)
        if problem:
            raise ValueError(problem)


def make_synthetic(
    shape: tuple[int, ...],
    num_classes: int,
    train_size: int,
    test_size: int,
    seed: int = GENERATOR_SEED,
    task: str = "classification",
) -> Dataset:
    """Build a learnable synthetic dataset; 3-D shapes give uint8 images, 1-D shapes float features.

    ``task = "regression"`` (1-D shapes): a float32 target ``y = x . w + noise`` (the stand-in for a table).
    """
    problem = size_problem(shape, num_classes, train_size, test_size)  # also for callers that skip validation
    if problem:
        raise ConfigError(problem)
    g = torch.Generator().manual_seed(seed)
    n = train_size + test_size
    if task == "regression":
        if len(shape) != 1:
            raise ConfigError(f"synthetic regression needs a feature shape (F,), got {list(shape)}")
        x = torch.randn((n, *shape), generator=g)
        w = torch.randn(shape, generator=g)
        y = x @ w + 0.1 * torch.randn(n, generator=g)  # (N,) float32
        return Dataset(
            name="synthetic",
            train=Split(x[:train_size], y[:train_size]),
            test=Split(x[train_size:], y[train_size:]),
            classes=[],
            task="regression",
            source=f"generated: {shape[0]} features, linear target plus noise",
        )
    labels = torch.arange(n) % num_classes
    labels = labels[torch.randperm(n, generator=g)]
    if len(shape) == 3:
        protos = torch.rand((num_classes, *shape), generator=g) * 200.0 + 28.0  # (K, C, H, W) in 28..228
        noise = torch.randn((n, *shape), generator=g) * 40.0
        x = (protos[labels] + noise).clamp(0, 255).round().to(torch.uint8)
    elif len(shape) == 1:
        protos = torch.randn((num_classes, *shape), generator=g) * 2.0
        x = (protos[labels] + torch.randn((n, *shape), generator=g)).float()
    else:
        raise ConfigError(f"data.shape must be (C, H, W) or (F,), got {list(shape)}")
    return Dataset(
        name="synthetic",
        train=Split(x[:train_size], labels[:train_size]),
        test=Split(x[train_size:], labels[train_size:]),
        classes=[f"class{i}" for i in range(num_classes)],
        source=f"generated: shape {list(shape)}, {num_classes} classes",
    )


def load_synthetic(cfg: DataConfig) -> Dataset:
    """The ``synthetic`` source: shape, class count and sizes come from ``[data]`` (:class:`SyntheticOptions`)."""
    opts = cfg.options
    assert isinstance(opts, SyntheticOptions)  # the registry gives synthetic these options
    return make_synthetic(tuple(opts.shape), opts.num_classes, opts.train_size, opts.test_size, task=opts.task)
