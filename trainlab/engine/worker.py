"""The worker side of the default executor: a warm process that runs one study run after another.

A run's process used to start cold: Python, torch (about 2 s here), trainlab, and on the run's first optimizer
or ``FlopCounterMode`` pass ``torch._dynamo`` (torch's ``Optimizer.__init__`` imports it through its
``_disable_dynamo`` wrapper: about 1.7 s on a quiet 2-core machine). A short run paid that every time. A worker
pays it once, before its first job (:func:`warm_up`), and then runs jobs from its inbox one at a time, so what
a run's own process gave still holds:

- **timing**: nothing else runs in the worker while a run trains (one job at a time, the driver never sends a
  second before the first's ``RunEnded``), and the warm-up happens before the first job, outside any clock;
- **peak memory**: the CPU peak (``VmHWM``) and the CUDA peak are reset when the run's meter starts
  (``trainlab.measure.memory``), so a previous run's peak never counts. What a previous run freed is handed
  back to the kernel after it (:func:`release_memory`: garbage collection, ``malloc_trim``, CUDA's cache), so
  the gross peak and the baseline are not raised by it either; the worker keeps only the dataset of its last
  run (one, so that another dataset's tensors never sit in a run's baseline);
- **global state**: torch's process-wide settings a run may change (threads, deterministic algorithms, cuDNN
  and TF32 flags, matmul precision, default dtype, grad mode, warning filters, compiled graphs) are put back
  after every run (:class:`GlobalState`), so a run never inherits its predecessor's;
- **crash isolation**: a run that kills its process (segfault, the OOM killer, SIGKILL) takes only that run
  down; the driver records it as failed and starts a fresh worker for the next run. A run that *failed*
  (an exception, which may leave a CUDA context or a library in a bad state) retires its worker too;
- **resume** is the run's own (its checkpoint), whichever worker picks it up.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import gc
import multiprocessing as mp
import os
import sys
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from trainlab.data import DatasetCache, dataset_cache
from trainlab.engine.events import RunEnded
from trainlab.engine.loop import execute_run
from trainlab.engine.runtime import tune_allocator
from trainlab.measure.complexity import profile_model
from trainlab.measure.profile_cache import ProfileCache

if TYPE_CHECKING:
    from trainlab.data import Dataset
    from trainlab.data.config import DataConfig
    from trainlab.engine.pool import WorkerSlot


@dataclass
class GlobalState:
    """torch's (and Python's) process-wide settings that a run may change, captured once and put back after each
    run. Anything a run sets for itself (seed, threads, precision scope) is set again at its start anyway; this
    covers what it sets only sometimes (``train.deterministic``, ``train.threads``, a user model's own calls)."""

    threads: int
    deterministic: bool
    deterministic_warn_only: bool
    cudnn_benchmark: bool
    cudnn_deterministic: bool
    cudnn_allow_tf32: bool
    matmul_allow_tf32: bool
    matmul_precision: str
    default_dtype: torch.dtype
    grad_enabled: bool
    warning_filters: list[Any]

    @classmethod
    def capture(cls) -> GlobalState:
        return cls(
            threads=torch.get_num_threads(),
            deterministic=torch.are_deterministic_algorithms_enabled(),
            deterministic_warn_only=torch.is_deterministic_algorithms_warn_only_enabled(),
            cudnn_benchmark=torch.backends.cudnn.benchmark,
            cudnn_deterministic=torch.backends.cudnn.deterministic,
            cudnn_allow_tf32=torch.backends.cudnn.allow_tf32,
            matmul_allow_tf32=torch.backends.cuda.matmul.allow_tf32,
            matmul_precision=torch.get_float32_matmul_precision(),
            default_dtype=torch.get_default_dtype(),
            grad_enabled=torch.is_grad_enabled(),
            warning_filters=list(warnings.filters),
        )

    def restore(self) -> None:
        if torch.get_num_threads() != self.threads:
            torch.set_num_threads(self.threads)
        torch.use_deterministic_algorithms(self.deterministic, warn_only=self.deterministic_warn_only)
        torch.backends.cudnn.benchmark = self.cudnn_benchmark
        torch.backends.cudnn.deterministic = self.cudnn_deterministic
        # Through the legacy flags only: reading both APIs back and forth is what torch warns about.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.backends.cudnn.allow_tf32 = self.cudnn_allow_tf32
            torch.backends.cuda.matmul.allow_tf32 = self.matmul_allow_tf32
            torch.set_float32_matmul_precision(self.matmul_precision)
        torch.set_default_dtype(self.default_dtype)
        torch.set_grad_enabled(self.grad_enabled)
        warnings.filters[:] = self.warning_filters
        dynamo = sys.modules.get("torch._dynamo")
        if dynamo is not None:  # a compiled run's graphs and guards: the next run compiles (and times) its own
            dynamo.reset()


def release_memory() -> None:
    """Hand what the last run freed back to the kernel: Python's garbage, glibc's free heap (``malloc_trim``:
    ``tune_allocator`` keeps freed blocks mapped between steps, which must not carry into the next run's
    baseline) and CUDA's cached blocks."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim(0)
    if torch.cuda.is_initialized():
        torch.cuda.empty_cache()


def warm_up() -> None:
    """Pay, once per worker, the costs every run would pay on its first step: the ``torch._dynamo`` import
    behind the first optimizer and the first ``FlopCounterMode`` pass, and the profile's first count."""
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3))
    torch.optim.SGD(model.parameters(), lr=0.1)
    profile_model(model, (4,), 3, optimizer="sgd")


class RecentDataset:
    """The dataset of the worker's last run, reused by the next run of the same ``[data]`` config; a run with
    another config drops it first (a worker holds one dataset, so another run's data never sits in a baseline)."""

    def __init__(self) -> None:
        self._cache: DatasetCache = dataset_cache()
        self._key: str | None = None

    def get(self, cfg: DataConfig) -> Dataset | None:
        """The loaded dataset, or None when it does not load (the run then loads it and records the error)."""
        if self._cache.peek(cfg) is None:
            self._cache = dataset_cache()  # drop the previous run's dataset before loading this one
            gc.collect()
        try:
            return self._cache.get(cfg)
        except Exception:  # any: the run loads it again and records the error with its own message
            return None


def worker_main(slot: WorkerSlot, inbox: Any, events: Any) -> None:
    """A worker process's work (called by ``pool.worker_entry``): pin, warm up, then run each job from ``inbox``
    (None: stop), sending its events (the last one RunEnded) to ``events``."""
    tune_allocator()  # this process is the runs' own: keep freed tensor memory mapped (see engine.runtime)
    # A spawned child inherits "spawn" as its start method, so its DataLoader workers would be spawned too: each
    # re-imports torch and unpickles the dataset (~2 s per worker per epoch for CIFAR-10), which a user's own
    # script on Linux (fork) never pays. Back to the platform's default, as in the user's script.
    mp.set_start_method(None, force=True)
    if slot.gpu is not None:  # before anything starts CUDA in this process
        os.environ["CUDA_VISIBLE_DEVICES"] = slot.gpu
    if slot.cpus is not None:
        os.sched_setaffinity(0, slot.cpus)  # DataLoader workers inherit it
        # torch sized its thread pool when it was imported, before the pinning: one thread per CPU of the slot
        torch.set_num_threads(len(slot.cpus))
    warm_up()
    # Everything loaded so far (torch, dynamo, trainlab: ~10^6 objects) lives as long as the worker: out of the
    # collector's sight, so the collection after each run walks only what runs made (0.2 s -> milliseconds).
    gc.freeze()
    state = GlobalState.capture()
    data = RecentDataset()
    profiles = ProfileCache()  # a model's profile, counted once for all its runs in this worker
    while (job := inbox.get()) is not None:
        outcome = execute_run(
            job.spec,
            emit=events.put,
            checkpoint_path=job.checkpoint,
            weights_path=job.weights,
            study_path=job.study_path,
            dataset=data.get(job.spec.config.data),
            profiles=profiles,
        )
        events.put(RunEnded(outcome))
        state.restore()
        release_memory()
