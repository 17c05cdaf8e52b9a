"""Checkpoints: everything a run needs to continue after its last completed epoch.

A checkpoint holds the model, optimizer and scheduler states, every RNG state, and the completed epochs' rows,
so a run resumed on this or another machine continues bit-identically (deterministic mode, same device) and can
restore the store's epoch rows even when the driver missed the last one. Plain tensors and Python data only:
loaded with ``weights_only=True``. Writes are atomic (temp file + rename).

A checkpoint proves which run it belongs to: it carries the run's id and a hash of its full resolved config, and
a resume checks both, and that its rows are epochs 1..n. One that fails (another run's file copied over, an
unreadable file, one from an older trainlab) is never used: it is set aside as ``<name>.rejected`` (not deleted)
and the run starts over, with the reason in the run's record.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import random
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from trainlab.engine.events import EpochRow

# A failed write with less free space than its tensors plus this much is taken for a full disk (bytes).
DISK_MARGIN_BYTES = 1 << 20


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


def _nbytes(obj: Any) -> int:
    """Bytes of the tensors in ``obj`` (nested dicts, lists and tuples): about what ``torch.save`` writes."""
    if torch.is_tensor(obj):
        return obj.numel() * obj.element_size()
    if isinstance(obj, dict):
        return sum(_nbytes(v) for v in obj.values())
    if isinstance(obj, list | tuple):
        return sum(_nbytes(v) for v in obj)
    return 0


def save_checkpoint(path: Path, payload: Any) -> None:
    """Write ``payload`` atomically: a crash mid-write leaves the previous file intact. A write that fails on a
    full disk raises ``OSError(ENOSPC)`` (torch's own error does not say so), and leaves no partial file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    try:
        torch.save(payload, tmp)
    except Exception as exc:
        tmp.unlink(missing_ok=True)
        need = _nbytes(payload)
        free = shutil.disk_usage(path.parent).free
        if isinstance(exc, OSError) or free >= need + DISK_MARGIN_BYTES:  # an OSError says what it is
            raise
        raise OSError(errno.ENOSPC, f"No space left on device writing {path} ({need} bytes, {free} free)") from exc
    os.replace(tmp, path)


def load_checkpoint(path: Path) -> dict[str, Any] | None:
    """The checkpoint at ``path``; None when there is none. Raises for an unreadable one."""
    if not path.is_file():
        return None
    return torch.load(path, map_location="cpu", weights_only=True)


def run_identity(run_id: str, config: dict[str, Any]) -> dict[str, str]:
    """What a checkpoint must carry to be resumed by a run: its id and the SHA-256 of its full resolved config
    (every key, defaults included, as JSON with sorted keys)."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"))
    return {"run_id": run_id, "config_sha256": hashlib.sha256(text.encode()).hexdigest()}


@dataclass
class Resume:
    """Where a run continues: the epochs already done and the states to load."""

    history: list[EpochRow]
    states: dict[str, Any]

    @property
    def epoch(self) -> int:
        return len(self.history)


def _refusal(ckpt: dict[str, Any], identity: dict[str, str]) -> str | None:
    """Why the loaded checkpoint ``ckpt`` cannot continue the run of ``identity``; None when it can."""
    theirs = {k: ckpt.get(k) for k in identity}
    if theirs["run_id"] is None:
        return "it carries no run id (written by an older trainlab)"
    if theirs["run_id"] != identity["run_id"]:
        return f"it belongs to run {theirs['run_id']}, not {identity['run_id']}"
    if theirs["config_sha256"] != identity["config_sha256"]:
        return "its config hash differs from this run's config"
    history = ckpt.get("history")
    if not isinstance(history, list) or [r.get("epoch") for r in history] != list(range(1, len(history) + 1)):
        return "its epoch rows are not epochs 1..n"
    if len(history) != int(ckpt.get("epoch", -1)):
        return f"it says epoch {ckpt.get('epoch')} but holds {len(history)} epoch rows"
    return None


def find_resume(path: Path | None, identity: dict[str, str]) -> tuple[Resume | None, str | None]:
    """The resume point in ``path`` for the run of ``identity`` (:func:`run_identity`), and, when a checkpoint
    was there but cannot be used, why (it is then set aside as ``<name>.rejected`` and the run starts over)."""
    if path is None:
        return None, None
    try:
        ckpt = load_checkpoint(path)
    except Exception as exc:  # truncated, not a checkpoint, or holding objects weights_only refuses
        ckpt, why = None, f"it is unreadable ({type(exc).__name__})"
    else:
        if ckpt is None:
            return None, None
        why = _refusal(ckpt, identity) if isinstance(ckpt, dict) else "it is not a trainlab checkpoint"
    if why is None:
        return Resume([EpochRow.from_record(r) for r in ckpt["history"]], ckpt), None
    aside = path.with_name(path.name + ".rejected")
    os.replace(path, aside)
    return None, f"checkpoint {path} not used: {why}; kept as {aside.name}, the run starts over"


def write_checkpoint(
    path: Path,
    identity: dict[str, str],
    history: list[EpochRow],
    model: torch.nn.Module,
    optimizer: Any,
    scheduler: Any,
    scaler: Any = None,
) -> None:
    """Checkpoint the run of ``identity`` (:func:`run_identity`) after the last row of ``history``."""
    save_checkpoint(
        path,
        {
            **identity,
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
