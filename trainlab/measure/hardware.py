"""The environment a result was measured on: machine, devices, library versions, code version."""

from __future__ import annotations

import multiprocessing
import os
import platform
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy
import torch

from trainlab.version import __version__


def cpu_model() -> str:
    """CPU model name from /proc/cpuinfo (falls back to platform.processor())."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def git_commit(path: Path | None) -> str | None:
    """HEAD commit of the git repository holding ``path`` (with '+dirty' when it has changes), or None."""
    if path is None:
        return None
    folder = path if path.is_dir() else path.parent
    try:
        head = subprocess.run(
            ["git", "-C", str(folder), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5
        )
        if head.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "-C", str(folder), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
        )
        return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def environment(device: torch.device, study_path: Path | None = None) -> dict[str, Any]:
    """A JSON-able description of the machine and software a run executes on."""
    env: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "hostname": platform.node(),
        "pid": os.getpid(),  # the process that ran the run (a child, or a cluster worker)
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "torch_threads": torch.get_num_threads(),
        # how DataLoader workers start (fork, spawn, forkserver): spawn re-imports everything per worker and epoch
        "mp_start_method": multiprocessing.get_start_method(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "trainlab": __version__,
        "device": str(device),
        "cuda_available": torch.cuda.is_available(),
        "git_commit": git_commit(study_path),
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        env.update(
            gpu=props.name,
            gpu_memory_mb=props.total_memory / 2**20,
            cuda=torch.version.cuda,
            cudnn=torch.backends.cudnn.version(),
            gpu_capability=f"{props.major}.{props.minor}",
        )
        try:
            smi = subprocess.run(
                ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                capture_output=True,
                text=True,
                timeout=10,
            )
            env["gpu_driver"] = smi.stdout.strip().splitlines()[0] if smi.returncode == 0 else None
        except (OSError, subprocess.SubprocessError, IndexError):
            env["gpu_driver"] = None
    return env
