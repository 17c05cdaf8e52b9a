"""Checkpoints: everything a run needs to continue after its last completed epoch.

A checkpoint holds the model, optimizer and scheduler states, every RNG state, and the completed epochs' rows,
so a run resumed on this or another machine continues bit-identically (deterministic mode, same device) and can
restore the store's epoch rows even when the driver missed the last one. Plain tensors and Python data only:
loaded with ``weights_only=True``. Writes are atomic (temp file + rename).
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from trainlab.engine.events import EpochRow


def rng_state() -> dict[str, Any]:
    """Python, NumPy, torch and CUDA generator states as plain data."""
    np_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy_keys": torch.from_numpy(np_state[1].astype(np.int64)),
        "numpy_pos": int(np_state[2]),
        "numpy_gauss": [int(np_state[3]), float(np_state[4])],
        "python": list(random.getstate()[1]),
        "python_version": random.getstate()[0],
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` captured."""
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    keys = state["numpy_keys"].numpy().astype(np.uint32)
    np.random.set_state(("MT19937", keys, state["numpy_pos"], state["numpy_gauss"][0], state["numpy_gauss"][1]))
    random.setstate((state["python_version"], tuple(state["python"]), None))


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    """Write atomically: a crash mid-write leaves the previous checkpoint intact."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: Path) -> dict[str, Any] | None:
    """The checkpoint at ``path``, or None when there is none or it is unreadable (the run restarts)."""
    if not path.is_file():
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # a corrupt checkpoint is discarded: the run restarts from scratch
        return None


@dataclass
class Resume:
    """Where a run continues: the epochs already done and the states to load."""

    history: list[EpochRow]
    states: dict[str, Any]

    @property
    def epoch(self) -> int:
        return len(self.history)


def find_resume(path: Path | None) -> Resume | None:
    """The resume point in ``path``; None when there is no usable checkpoint (missing, corrupt, or written by
    a trainlab without epoch rows in its checkpoints: such a run starts over)."""
    ckpt = load_checkpoint(path) if path is not None else None
    if ckpt is None or "history" not in ckpt or len(ckpt["history"]) != int(ckpt["epoch"]):
        return None
    return Resume([EpochRow.from_record(r) for r in ckpt["history"]], ckpt)


def write_checkpoint(
    path: Path, history: list[EpochRow], model: torch.nn.Module, optimizer: Any, scheduler: Any, scaler: Any = None
) -> None:
    """Checkpoint after the last row of ``history``."""
    save_checkpoint(
        path,
        {
            "epoch": history[-1].epoch,
            "history": [row.to_record() for row in history],
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict() if scheduler is not None else None,
            "scaler": scaler.state_dict() if scaler is not None else None,
            "rng": rng_state(),
        },
    )


def restore(resume: Resume, model: torch.nn.Module, optimizer: Any, scheduler: Any, scaler: Any = None) -> None:
    """Load a checkpoint's states into a freshly built model, optimizer, scheduler and gradient scaler, and the
    RNGs. A tensor learning rate (a CUDA-graph run's) is kept as the same tensor, updated in place."""
    model.load_state_dict(resume.states["model"])
    lrs = [g["lr"] for g in optimizer.param_groups]
    optimizer.load_state_dict(resume.states["optimizer"])
    for group, lr in zip(optimizer.param_groups, lrs):
        if torch.is_tensor(lr):
            lr.fill_(float(group["lr"]))
            group["lr"] = lr
    if scheduler is not None and resume.states.get("scheduler"):
        scheduler.load_state_dict(resume.states["scheduler"])
    if scaler is not None and resume.states.get("scaler"):
        scaler.load_state_dict(resume.states["scaler"])
    set_rng_state(resume.states["rng"])
