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

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal, Protocol

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
# The statuses of a run that trained or may still train: its epochs so far are the report's to read.
TRAINING: tuple[RunStatus, ...] = ("done", "running", "pending")

# RunOutcome.detail of a run that failed because the disk filled up: the driver stops the study (a rerun resumes).
DISK_FULL = "disk full"


# The per-epoch figures of the validation split (EpochRow), left out of a stored row when not measured.
VAL_FIGURES = ("val_loss", "val_acc", "val_mae", "val_r2")


@dataclass
class EpochRow:
    """One completed epoch. Times in seconds; losses are data losses (no L2 penalty); accuracies are fractions.

    ``train_*`` are running means over the epoch's batches in training mode; ``test_*`` (and ``val_*``, with a
    validation split) are computed after the epoch in eval mode (absent from an epoch that diverged before
    evaluation). The keys and their definitions
    are the per-epoch entries of ``trainlab.measure.metrics.EPOCH_METRICS``.
    """

    epoch: int  # 1-based
    train_loss: float | None  # None when it was not finite (stored as null: JSON has no NaN)
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
    # The validation split's figures (data.val_fraction, or the source's own validation split); None without one.
    val_loss: float | None = None
    val_acc: float | None = None
    val_mae: float | None = None  # regression only
    val_r2: float | None = None  # regression only
    data_gpu_time_s: float | None = None  # CUDA only: batch preparation on the GPU timeline
    data_startup_s: float | None = None  # the wait for the first batch (worker start-up), part of data_time_s
    cpu_cores: float | None = None  # cores the run's process tree kept busy (CPU s / wall s)
    other_cores: float | None = None  # cores other work kept busy on the run's CPUs meanwhile
    cores: int | None = None  # CPUs the run may use (its affinity)
    eval_time_s: float | None = None  # wall s of the epoch's evaluation (test and validation), outside its clock
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
        for key in (
            *VAL_FIGURES,
            "data_gpu_time_s",
            "data_startup_s",
            "cpu_cores",
            "other_cores",
            "cores",
            "eval_time_s",
        ):
            if d[key] is None:
                del d[key]
        return d

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> EpochRow:
        """Inverse of :meth:`to_record` (a stored row, e.g. from a checkpoint or the store).

        A stored row may lack figures its writer did not measure (an epoch that diverged, a store written by an
        older trainlab, a row a test or a user wrote by hand): they read as None. A non-finite loss is stored as
        null and reads as None too. Keys the type does not know are left out."""
        known = {f.name: record.get(f.name) for f in fields(cls) if f.name != "evaluated"}
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
    ``step_wall_ms``/``step_kernel_ms``, ``infer_other_cores``, a pruned trial's ``pruned_epoch`` and
    ``prune_curve``.
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
    trial: int | None = None  # a [tune] trial's 0-based index among its variant's trials; None: a study run
    tuned: dict[str, Any] = field(default_factory=dict)  # dotted key -> the value [tune] set for this run

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> RunRecord:
        """A record from a stored row whose JSON columns are parsed (columns the type does not know are left out)."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in row.items() if k in names})

    @property
    def pruned_epoch(self) -> int | None:
        """The epoch after which a pruned tuning trial stopped (``[tune] prune``); None for a run that ran every
        epoch."""
        epoch = self.results.get("pruned_epoch")
        return epoch if isinstance(epoch, int) and not isinstance(epoch, bool) else None

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

    # The run's context, which the catalogue does not define: read here, by key, and nowhere else.
    @property
    def device(self) -> str | None:
        """The device it trained on (``cpu``, ``cuda:0``), as recorded."""
        return self.results.get("device")

    @property
    def compile_mode(self) -> str | None:
        """How its step was compiled (``train.compile`` as it took effect: ``cuda-graph``, ``inductor``...)."""
        return self.results.get("compile")

    @property
    def mfu_note(self) -> str | None:
        """Why no MFU is stated for it (e.g. no peak was probed for its device), when none is."""
        return self.results.get("mfu_note")

    @property
    def mfu_uncertain(self) -> bool:
        """The peak behind its MFU was probed on a busy machine: the MFU is the range mfu_low–mfu_high."""
        return bool(self.results.get("mfu_uncertain"))

    @property
    def finished(self) -> bool:
        """A rerun of the study does not repeat it (done, diverged or skipped)."""
        return self.status in FINISHED

    @property
    def failed(self) -> bool:
        """It failed the study (failed or diverged)."""
        return self.status in FAILED


# The statuses of a deployment row: measured, an error ended it (reason in ``error``), or it cannot happen here.
DeploymentStatus = Literal["done", "failed", "skipped"]


@dataclass
class DeploymentFigures:
    """What one deployment (a run's model as float, int8 or ONNX) measured: the ``figures`` JSON column of the
    store's ``deployments`` table, as written by ``trainlab.deploy``.

    Every field is None when the deployment did not record it: a variant that failed or was skipped records
    next to nothing, the float row has no layer lists, a regression model no ``test_acc``/``agreement``.

    Sizes: ``saved_kb`` bytes of the saved file / 2^10; ``size_mb`` bytes of the tensors held in memory / 2^20.
    Timings: ``latency_p50_ms``/``p90``/``p99``/``mean``/``std`` ms per batch-1 forward after
    ``latency_warmup`` calls, over ``latency_repeats`` calls; ``throughput_ips`` images/s at batch
    ``throughput_batch``; ``first_calls_s``, ``prepare_s``, ``compile_s`` seconds; ``threads`` CPU threads.
    Quality on ``test_samples`` test samples: ``test_acc`` and ``agreement`` fractions, ``test_loss``
    cross-entropy (nats), ``test_mse`` (regression), ``max_abs_diff`` largest |logit - float logit|.
    """

    # Sizes
    saved_kb: float | None = None  # the saved file (float: state_dict; int8: its tensors; onnx: .onnx), bytes / 2^10
    size_mb: float | None = None  # tensors held in memory (onnx: the graph's initializers), bytes / 2^20
    # Batch-1 latency, ms per forward after warm-up
    latency_p50_ms: float | None = None
    latency_p90_ms: float | None = None
    latency_p99_ms: float | None = None
    latency_mean_ms: float | None = None
    latency_std_ms: float | None = None
    latency_warmup: int | None = None  # calls before timing
    latency_repeats: int | None = None  # timed calls
    # Throughput
    throughput_ips: float | None = None  # images/s at batch throughput_batch
    throughput_batch: int | None = None  # images per call
    # Quality, on the test split
    test_acc: float | None = None  # fraction (classification)
    test_loss: float | None = None  # cross-entropy, nats (classification)
    test_mse: float | None = None  # mean squared error (regression)
    test_samples: int | None = None  # samples measured
    agreement: float | None = None  # fraction of test samples predicted as the float model predicts them
    max_abs_diff: float | None = None  # largest |logit - float logit| over the test samples, logit units
    matches_float: bool | None = None  # onnx: max_abs_diff within tolerance
    tolerance: float | None = None  # onnx: allowed max_abs_diff per unit of (1 + max |float logit|)
    # Times, seconds
    first_calls_s: float | None = None  # the first call at each of the two measured shapes (compiles)
    prepare_s: float | None = None  # quantizing or exporting
    compile_s: float | None = None  # torch.compile of the int8 graph at batch 1
    # How it ran
    runtime: str | None = None  # plain words: eager PyTorch, torch.compile, onnxruntime
    backend: str | None = None  # library and version
    artefact: str | None = None  # path of the saved file
    reloaded: bool | None = None  # measured as reloaded from that file
    compiled: bool | None = None  # int8: run through torch.compile (False: the eager reference graph)
    threads: int | None = None  # torch CPU threads while measuring
    calibration_batches: int | None = None  # int8: training batches the static ranges were calibrated on
    quantized_layers: list[str] | None = None  # int8: the float model's weight layers made int8, "name (Type)"
    float_layers: list[str] | None = None  # int8: the weight layers left in float, "name (Type)"
    notes: list[str] | None = None  # plain words the table's note repeats
    session: str | None = None  # stamp shared by the rows of one deployment call: timings compare within one
    detail: str | None = None  # failed: the traceback

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> DeploymentFigures:
        """Figures from the stored JSON object: keys it lacks read as None, keys the type does not know are
        left out (``None``: no figures)."""
        d = d or {}
        return cls(**{f.name: d[f.name] for f in fields(cls) if f.name in d})


@dataclass
class DeploymentRecord:
    """One deployment as the store holds it: a row of its ``deployments`` table, ``figures`` parsed."""

    run_id: str
    method: str  # "float" (the baseline, measured alongside) or a deployment method (dynamic, static, onnx)
    status: DeploymentStatus
    figures: DeploymentFigures = field(default_factory=DeploymentFigures)
    error: str | None = None  # why it failed or was skipped
    created_at: str = ""  # ISO 8601, UTC, seconds

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> DeploymentRecord:
        """A record from a stored row whose ``figures`` JSON is parsed (columns it does not know are left out)."""
        return cls(
            run_id=row["run_id"],
            method=row["method"],
            status=row["status"],
            figures=DeploymentFigures.from_dict(row.get("figures")),
            error=row.get("error"),
            created_at=row.get("created_at") or "",
        )


class RunIdentity(Protocol):
    """What a sink or tracker reads of a run: a live ``engine.spec.RunSpec`` and a stored :class:`RunRecord`
    both have it (``config``: the RunSpec's pydantic config, or the record's stored JSON of it)."""

    run_id: str
    study: str
    variant: str
    repeat: int
    seed: int
    overrides: dict[str, Any]
    config: Any


__all__ = [
    "DISK_FULL",
    "FAILED",
    "FINISHED",
    "OUTCOMES",
    "STATUSES",
    "TRAINING",
    "DeploymentFigures",
    "DeploymentRecord",
    "DeploymentStatus",
    "EpochRow",
    "RunIdentity",
    "RunOutcome",
    "RunRecord",
    "RunStatus",
]
