"""Test helpers: tiny study dicts and models with known timing or failure behaviour.

Models here are referenced from studies as ``helpers:ClassName`` (pytest puts ``tests/`` on ``sys.path``).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from typing import Any, ClassVar

import torch
from torch import nn


def tiny_study(**sections: Any) -> dict[str, Any]:
    """A seconds-long study on generated data; keyword arguments update its sections."""
    study: dict[str, Any] = {
        "study": {"name": "tiny"},
        "data": {
            "name": "synthetic",
            "shape": [1, 8, 8],
            "num_classes": 3,
            "train_size": 96,
            "test_size": 32,
            "batch_size": 16,
        },
        "model": {"name": "mlp", "hidden": [16]},
        "train": {"epochs": 2, "lr": 0.05, "momentum": 0.9, "seed": 3, "device": "cpu", "threads": 1},
        "measure": {
            "latency_repeats": 5,
            "latency_warmup": 1,
            "throughput_batch": 8,
            "infer_limit": 16,
            "throughput_time_s": 0.02,
        },
    }
    for key, value in sections.items():
        # [model] is replaced whole (another model's keys would not fit); other sections are updated.
        if key != "model" and isinstance(value, dict) and isinstance(study.get(key), dict):
            study[key].update(value)
        else:
            study[key] = value
    return study


def to_toml(study: dict[str, Any]) -> str:
    """A study dict as a TOML file's text: one table per section, a sub-table per nested dict (``[data.augment]``).
    Keys are quoted (``"train.lr" = [...]`` in a sweep); JSON's strings, numbers, booleans and lists are TOML's."""

    def table(name: str, section: dict[str, Any]) -> str:
        flat = {k: v for k, v in section.items() if not isinstance(v, dict)}
        text = f"[{name}]\n" + "".join(f"{json.dumps(k)} = {json.dumps(v)}\n" for k, v in flat.items()) + "\n"
        return text + "".join(table(f"{name}.{k}", v) for k, v in section.items() if isinstance(v, dict))

    lists = {k: v for k, v in study.items() if isinstance(v, list)}  # [[variant]] arrays of tables
    text = "".join(table(k, v) for k, v in study.items() if isinstance(v, dict))
    for name, items in lists.items():
        for item in items:
            text += f"[[{name}]]\n" + "".join(f"{json.dumps(k)} = {json.dumps(v)}\n" for k, v in item.items()) + "\n"
    return text


def free_port() -> int:
    """A port on 127.0.0.1 with nothing listening (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def hold(seconds: float) -> float:
    """Block for at least ``seconds`` of wall time; return the time really held (s).

    A spin on the clock rather than time.sleep, and the real duration is returned because on a loaded machine
    the process can be descheduled past the deadline: tests compare the clocks with what really happened.
    """
    start = time.perf_counter()
    end = start + seconds
    while (now := time.perf_counter()) < end:
        pass
    return now - start


class SleepyNet(nn.Module):
    """A linear classifier whose forward takes ``sleep_ms`` more milliseconds: a model of known cost."""

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, sleep_ms: float = 5.0) -> None:
        super().__init__()
        n = 1
        for d in input_shape:
            n *= d
        self.fc = nn.Linear(n, num_classes)
        self.sleep_s = sleep_ms / 1000.0

    held: ClassVar[dict[bool, list[float]]] = {True: [], False: []}  # seconds really held, by training mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        SleepyNet.held[self.training].append(hold(self.sleep_s))
        return self.fc(x.flatten(1))


class KilledNet(nn.Module):
    """A linear classifier whose process is killed (SIGKILL, as the kernel's OOM killer does) at its ``die_at``-th
    training forward pass when ``die`` is set: a run that takes its worker down with it."""

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, die: bool = False, die_at: int = 3) -> None:
        super().__init__()
        self.fc = nn.Linear(int(torch.tensor(input_shape).prod()), num_classes)
        self.die, self.die_at, self.calls = die, die_at, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and self.die and x.device.type != "meta":
            self.calls += 1
            if self.calls >= self.die_at:
                os.kill(os.getpid(), signal.SIGKILL)
        return self.fc(x.flatten(1))


class HungryNet(nn.Module):
    """A linear classifier that holds ``mb`` MiB of scratch memory (in 16 MiB chunks) during each training forward
    pass, released after it: a run with a known, large peak."""

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, mb: int = 0) -> None:
        super().__init__()
        self.fc = nn.Linear(int(torch.tensor(input_shape).prod()), num_classes)
        self.mb = mb

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Training batches only: not the profile's batch-2 step, whose freed chunks glibc would keep, raising
        # the baseline the run's peak is measured from.
        if self.training and self.mb and x.device.type != "meta" and len(x) > 2:
            # 16 MiB chunks (float32, written so their pages are resident): under the mmap threshold that
            # trainlab.engine.runtime raises, so glibc keeps them on its heap once freed
            chunks = [torch.ones(2**22) for _ in range(self.mb // 16)]
            x = x + sum(c[:1].sum() for c in chunks) * 0
        return self.fc(x.flatten(1))


class CrashingNet(nn.Module):
    """Raises in its training forward pass: a model bug the runner must record, not propagate."""

    def __init__(self, input_shape: tuple[int, ...], num_classes: int) -> None:
        super().__init__()
        self.fc = nn.Linear(int(torch.tensor(input_shape).prod()), num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            raise RuntimeError("boom: deliberate crash in forward")
        return self.fc(x.flatten(1))


def assert_user_error(code: int, stderr: str, names: str | None = None, expected_code: int = 2) -> None:
    """The standard for a user's mistake: exit ``expected_code``, one ``error:`` line (naming ``names`` when
    given: the key or the file at fault), and no traceback."""
    assert code == expected_code, f"exit {code}, not {expected_code}; stderr: {stderr[-2000:]}"
    assert "Traceback" not in stderr, stderr[-4000:]
    lines = [line for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1, f"expected one 'error:' line, got: {lines}"
    if names is not None:
        assert names in errors[0], f"{names!r} not named in: {errors[0]}"


def user_net_source(name: str = "TinyNet") -> str:
    """The source of a user model module (``module:name``), as a user would write it: an MLP that takes the
    dataset's ``input_shape`` and ``num_classes`` and a ``width``."""
    return f"""
import torch.nn as nn


class {name}(nn.Module):
    def __init__(self, input_shape, num_classes, width: int = 8):
        super().__init__()
        n = 1
        for d in input_shape:
            n *= d
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(n, width), nn.ReLU(), nn.Linear(width, num_classes))

    def forward(self, x):
        return self.net(x)
"""
