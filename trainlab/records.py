"""What a study records, as types: a run's status and its sets, one epoch's row, a run's outcome, a stored run.

These sit below the store (which returns them) and the engine (whose events carry them), so the report, the
trackers and the API read the same typed records the engine writes, without importing the engine. A per-run
figure is read through the metric catalogue (:meth:`RunRecord.figure`), so a misspelt key raises instead of
reading as "not measured".

The statuses are defined here and nowhere else::

    pending   planned, not started          running   started, not ended (or its driver died meanwhile)
    done      trained and measured          failed    an error ended it (the reason is in ``error``)
    diverged  its loss became non-finite    skipped   it cannot happen here (e.g. no CUDA): not an error
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

from trainlab.measure.format import is_number
from trainlab.measure.metrics import BY_KEY, derived

RunStatus = Literal["pending", "running", "done", "failed", "diverged", "skipped"]

# Every status, in the order the report lists them ("2 done, 1 running, 1 failed").
STATUSES: tuple[RunStatus, ...] = ("done", "running", "pending", "failed", "diverged", "skipped")
# The statuses a run's outcome (RunOutcome) can have: how a run ended.
OUTCOMES: tuple[RunStatus, ...] = ("done", "diverged", "failed", "skipped")
# The statuses a rerun of the study does not repeat (a failed run is trained again, from its checkpoint).
FINISHED: tuple[RunStatus, ...] = ("done", "diverged", "skipped")
# The statuses that fail a study (exit code 1); the report states their reasons.
FAILED: tuple[RunStatus, ...] = ("failed", "diverged")

# RunOutcome.detail of a run that failed because the disk filled up: the driver stops the study (a rerun resumes).
DISK_FULL = "disk full"


@dataclass
class EpochRow:
    """One completed epoch. Times in seconds; losses are data losses (no L2 penalty); accuracies are fractions.

    ``train_*`` are running means over the epoch's batches in training mode; ``test_*`` are computed after the
    epoch in eval mode (absent from an epoch that diverged before evaluation). The keys and their definitions
    are the per-epoch entries of ``trainlab.measure.metrics.EPOCH_METRICS``.
    """

    epoch: int  # 1-based
    train_loss: float
    train_acc: float | None  # None for regression
    epoch_time_s: float
    data_time_s: float
    compute_time_s: float
    steps: int
    samples: int
    lr: float
    test_loss: float | None = None
    test_acc: float | None = None
    test_mae: float | None = None  # regression only
    test_r2: float | None = None  # regression only
    data_gpu_time_s: float | None = None  # CUDA only: batch preparation on the GPU timeline
    data_startup_s: float | None = None  # the wait for the first batch (worker start-up), part of data_time_s
    cpu_cores: float | None = None  # cores the run's process tree kept busy (CPU s / wall s)
    other_cores: float | None = None  # cores other work kept busy on the run's CPUs meanwhile
    cores: int | None = None  # CPUs the run may use (its affinity)
    evaluated: bool = False

    def to_record(self) -> dict[str, Any]:
        """The row as stored: test figures only when evaluated, regression figures only for regression."""
        d = asdict(self)
        del d["evaluated"]
        if not self.evaluated:
            for key in ("test_loss", "test_acc", "test_mae", "test_r2"):
                del d[key]
        else:
            for key in ("test_mae", "test_r2"):
                if d[key] is None:
                    del d[key]
        for key in ("data_gpu_time_s", "data_startup_s", "cpu_cores", "other_cores", "cores"):
            if d[key] is None:
                del d[key]
        return d

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> EpochRow:
        """Inverse of :meth:`to_record` (a stored row, e.g. from a checkpoint)."""
        known = {k: record[k] for k in cls.__dataclass_fields__ if k in record and k != "evaluated"}
        return cls(**known, evaluated="test_loss" in record)


@dataclass
class RunOutcome:
    """What a run produced: its status, per-run figures (keys of the metric catalogue and the run's context),
    and, on failure, the reason (``error``) and a traceback for failures that are not the user's input."""

    status: RunStatus  # one of OUTCOMES
    results: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    detail: str | None = None

    @property
    def disk_full(self) -> bool:
        """The run failed because the disk filled up (not for its own reasons)."""
        return self.status == "failed" and self.detail == DISK_FULL


@dataclass
class RunRecord:
    """One run as the store holds it (a row of its ``runs`` table, JSON columns parsed).

    ``results`` is the raw dict of what the run recorded: the catalogue's per-run figures (read them with
    :meth:`figure`) and the run's context, which the catalogue does not define and which is read by key —
    ``device``, ``precision_effective``, ``compile``, ``resumed_from_epoch``, ``checkpoint_rejected``,
    ``peak_flops*``, ``mfu_low``/``mfu_high``/``mfu_uncertain``/``mfu_note``, ``classes``, ``confusion``,
    ``step_wall_ms``/``step_kernel_ms``, ``infer_other_cores``.
    """

    run_id: str
    study: str
    variant: str
    repeat: int
    seed: int
    status: RunStatus
    error: str | None = None
    detail: str | None = None  # a traceback, or DISK_FULL
    config: dict[str, Any] = field(default_factory=dict)  # the run's resolved config (RunConfig as JSON)
    overrides: dict[str, Any] = field(default_factory=dict)  # dotted key -> value: the variant's and sweep's
    results: dict[str, Any] = field(default_factory=dict)
    env: dict[str, Any] = field(default_factory=dict)  # hostname, device, versions (trainlab.measure.hardware)
    profile: dict[str, Any] | None = None  # the model's profile (params, MACs, layers), when measured
    created_at: str = ""  # ISO 8601, UTC, seconds
    started_at: str | None = None
    finished_at: str | None = None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> RunRecord:
        """A record from a stored row whose JSON columns are parsed (columns the type does not know are left out)."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in row.items() if k in names})

    def figure(self, key: str) -> float | None:
        """Per-run figure ``key`` of the metric catalogue (``trainlab.measure.metrics.METRICS``), as stored or
        derived from the stored ones (``data_share``); None when the run did not record it or it is not a
        finite number. A key the catalogue does not define raises :class:`KeyError`."""
        if key not in BY_KEY:
            raise KeyError(f"{key!r} is not a per-run figure of the metric catalogue (trainlab.measure.metrics)")
        value = self.results.get(key)
        if value is None:
            value = derived(self.results).get(key)
        return float(value) if is_number(value) else None

    @property
    def finished(self) -> bool:
        """A rerun of the study does not repeat it (done, diverged or skipped)."""
        return self.status in FINISHED

    @property
    def failed(self) -> bool:
        """It failed the study (failed or diverged)."""
        return self.status in FAILED


__all__ = [
    "DISK_FULL",
    "FAILED",
    "FINISHED",
    "OUTCOMES",
    "STATUSES",
    "EpochRow",
    "RunOutcome",
    "RunRecord",
    "RunStatus",
]
