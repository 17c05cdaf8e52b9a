"""The environment a result was measured on: machine, devices, library versions, code version.

:func:`environment` writes it as a JSON-able dict (a run's ``env`` in the store); :class:`HostEnv` reads one back.
"""

from __future__ import annotations

import multiprocessing
import os
import platform
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, fields
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


@dataclass(frozen=True)
class HostEnv:
    """A run's environment as :func:`environment` writes it, read back (e.g. from the store).

    Every field is None when the stored dict lacks it: a CPU run has no GPU fields, a store written by an older
    trainlab or a row written by hand may lack others. Values are as stored (not checked): a reader that formats
    a number checks it is one.
    """

    date: str | None = None  # when the run set up, ISO 8601 UTC
    hostname: str | None = None
    pid: int | None = None  # the process that ran the run (a child, or a cluster worker)
    platform: str | None = None  # platform.platform(): OS, kernel, architecture
    python: str | None = None  # version
    cpu: str | None = None  # model name
    cpu_count: int | None = None  # logical CPUs of the machine
    cpu_affinity: int | None = None  # logical CPUs the process may run on
    cpu_set: str | None = None  # which ones, as ranges: "0-3,8" (a run pinned by --jobs names its own)
    process_run: int | None = None  # the how-many-th run its process set up: 1 = a fresh process, 2+ = reused
    torch_threads: int | None = None  # torch's intra-op threads
    mp_start_method: str | None = None  # how DataLoader workers start: fork, spawn, forkserver
    torch: str | None = None  # version
    numpy: str | None = None  # version
    trainlab: str | None = None  # version
    device: str | None = None  # the device it trained on: cpu, cuda:0
    cuda_available: bool | None = None  # CUDA was usable, whether or not the run used it
    git_commit: str | None = None  # HEAD of the study file's repository, "+dirty" with changes
    # CUDA runs only
    gpu: str | None = None  # device name
    gpu_memory_mb: float | None = None  # total device memory, bytes / 2^20
    cuda: str | None = None  # the CUDA version torch was built with
    cudnn: int | None = None  # cuDNN version number (e.g. 90100)
    gpu_capability: str | None = None  # compute capability, "major.minor"
    gpu_driver: str | None = None  # NVIDIA driver version (nvidia-smi)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> HostEnv:
        """The environment from its stored dict: keys it lacks read as None, keys the type does not know are
        left out (``None`` or an empty dict: nothing recorded, every field None)."""
        d = d or {}
        return cls(**{f.name: d[f.name] for f in fields(cls) if f.name in d})


_runs_in_process = 0


def _count_run() -> int:
    """The how-many-th run this process describes (``environment`` is called once per run, at its start)."""
    global _runs_in_process
    _runs_in_process += 1
    return _runs_in_process


def cpu_ranges(cpus: list[int]) -> str:
    """CPU numbers as ranges, the way ``taskset``/``lscpu`` write them: ``[0, 1, 2, 5]`` -> ``"0-2,5"``."""
    parts: list[str] = []
    for c in cpus:
        if parts and "-" not in parts[-1] and int(parts[-1]) == c - 1:
            parts[-1] = f"{parts[-1]}-{c}"
        elif parts and "-" in parts[-1] and int(parts[-1].split("-")[1]) == c - 1:
            parts[-1] = f"{parts[-1].split('-')[0]}-{c}"
        else:
            parts.append(str(c))
    return ",".join(parts)


def environment(device: torch.device, study_path: Path | None = None) -> dict[str, Any]:
    """A JSON-able description of the machine and software a run executes on (read back by :class:`HostEnv`,
    which has a field for every key written here)."""
    env: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "hostname": platform.node(),
        "pid": os.getpid(),  # the process that ran the run (a child, or a cluster worker)
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cpu_set": cpu_ranges(sorted(os.sched_getaffinity(0))) if hasattr(os, "sched_getaffinity") else None,
        "process_run": _count_run(),
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
