"""A model's complexity profile counted once per architecture in a process, reused for its other instances.

A study profiles every run's model, and a worker runs many runs of one model (seeds, optimizers, learning
rates): counting a ResNet-18 costs about 0.7 s of a 2-core CPU each time, the cached answer about 0.3 s (the
``nonzero_grads`` step, which is measured again on each instance).
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import torch.nn as nn

from trainlab.measure.complexity import Profile, nonzero_grads, profile_model


class ProfileCache:
    """Profiles already counted in this process, reused for another instance of the same model.

    Every figure of a profile but one depends only on the architecture and the sample shape; the key holds the
    model's config (``key``, from the caller), the type of every module, the name, shape, dtype and trainability
    of every parameter and buffer, the device, the input shape, the class count and whether there is an
    optimizer. ``nonzero_grads`` depends on the instance's weights (a dead ReLU, a zero-initialised layer), so
    it is measured again on each instance, by the same step without the counter. Holds ``size`` profiles (the
    least recently used is dropped).
    """

    def __init__(self, size: int = 8) -> None:
        self.size = size
        self._profiles: dict[tuple[Any, ...], Profile] = {}
        self.hits = 0  # profiles reused (for tests and benchmarks)

    def profile(
        self,
        key: str,
        model: nn.Module,
        input_shape: tuple[int, ...],
        num_outputs: int | None = None,
        optimizer: str | None = "sgd",
    ) -> Profile:
        """:func:`~trainlab.measure.complexity.profile_model` of ``model``, reusing what an earlier instance of
        the same model counted."""
        # The optimizer is not in the key: the step's FLOPs are forward + backward, and its gradients (whose
        # non-zero entries are counted) come before the optimizer's update, so only whether there is one counts.
        full = (key, structure(model), tuple(int(d) for d in input_shape), num_outputs, optimizer is None)
        cached = self._profiles.pop(full, None)
        if cached is None:
            cached = found = profile_model(model, input_shape, num_outputs, optimizer)
        else:
            self.hits += 1
            found = cached
            if optimizer is not None and cached.nonzero_grads is not None:
                nonzero = nonzero_grads(model, tuple(cached.input_shape), num_outputs, optimizer)
                found = dataclasses.replace(cached, nonzero_grads=nonzero, optimizer=optimizer)
        self._profiles[full] = cached  # most recently used last
        while len(self._profiles) > self.size:
            self._profiles.pop(next(iter(self._profiles)))
        return copy.deepcopy(found)  # a run never shares a profile's layer list with another


def structure(model: nn.Module) -> tuple[Any, ...]:
    """What two instances of one architecture share: module types, parameters' and buffers' names, shapes,
    dtypes and trainability, and the device."""
    modules = tuple((name, type(m).__module__, type(m).__qualname__) for name, m in model.named_modules())
    params = tuple((name, tuple(p.shape), p.dtype, p.requires_grad) for name, p in model.named_parameters())
    buffers = tuple((name, tuple(b.shape), b.dtype) for name, b in model.named_buffers())
    devices = {str(t.device) for t in (*model.parameters(), *model.buffers())}
    return modules, params, buffers, tuple(sorted(devices))
