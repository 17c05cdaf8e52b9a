"""The study file's schema: pydantic models of every section, composed from the layers' own configs.

A study file has the sections ``[study]``, ``[data]``, ``[model]``, ``[train]``, ``[measure]``, ``[deploy]``,
an optional ``[sweep]`` grid, an optional list of ``[[variant]]`` overrides, and ``repeats``. The data, model
and measure sections are owned by their layers (``trainlab.data.config``, ``trainlab.models.config``,
``trainlab.measure.config``); this module adds the training recipe, deployment, the study section and the
composition. Loading TOML, ``--set`` overrides and sweep expansion are ``trainlab.study``'s job.

Nothing in a config is evaluated: values are TOML literals; a user model is named as ``package.module:Class``
and imported, never ``eval``-ed.
"""

from __future__ import annotations

from collections import Counter
from functools import cache
from typing import Annotated, Any, Literal

from pydantic import (
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    StrictInt,
    field_validator,
    model_validator,
)

from trainlab.data.config import AugmentConfig, DataConfig, NormalizeStats
from trainlab.errors import did_you_mean
from trainlab.measure.config import MeasureConfig
from trainlab.measure.metrics import BY_KEY
from trainlab.models.config import ModelConfig
from trainlab.names import DEPLOY_BASELINE, DEPLOY_METHODS, TRACKERS
from trainlab.optim import OPTIMIZERS
from trainlab.schema import PERFORMANCE_ONLY, SMOKE, SMOKE_AT_MOST, Strict, field_at, marked_fields, perf_only
from trainlab.tune.config import TuneConfig

SCHEDULERS = ("none", "step", "cosine", "onecycle")
LOSSES = ("cross_entropy", "mse")
PRECISIONS = ("default", "fp32", "tf32", "bf16", "fp16")
COMPILE_MODES = ("none", "default", "max-autotune", "cuda-graph")
# Optimizers with a capturable form (state on the GPU, a tensor learning rate read inside a CUDA graph).
GRAPH_LR_OPTIMIZERS = ("adam", "adamw", "rmsprop", "adadelta")
DeployMethod = Literal[DEPLOY_METHODS]  # the names live in trainlab.names
# Hard bounds on keys whose huge values do harm before any check at run time could help. A thread count goes
# to torch.set_num_threads, which crashes the process (a segfault, no message) at ~100000; 1024 is more
# cores than a machine has (fitting the count to the machine that runs the study is the engine's business).
MAX_THREADS = 1024
# A seed reaches torch.manual_seed (at most 2**64 - 1) and the store's SQLite INTEGER column (signed 64 bit).
MAX_SEED = 2**63 - 1
# The most runs a study may expand to unless it raises [study] max_runs: a typo such as repeats = 1000000000
# would otherwise build every run's config in memory (gigabytes) before anything says no.
DEFAULT_MAX_RUNS = 10_000


class StudySection(Strict):
    """``[study]``: what the study is called and which variant the others are compared with."""

    name: str = Field("study", min_length=1, description="Study name; also the default output folder.")
    description: str = Field("", description="One or two sentences: the question the study answers.")
    baseline: str | None = Field(
        None, description="Name of the variant every other variant is compared with (default: the first)."
    )
    columns: list[str] | None = Field(
        None,
        description="Figures of the report's comparison table, in order (default: a standard set); "
        "any key of docs/measurements.md, e.g. ['train_acc', 'test_acc', 'train_time_s'].",
    )
    max_runs: StrictInt = Field(
        DEFAULT_MAX_RUNS,
        gt=0,
        description="The most runs the study may expand to (variants x sweep points x repeats); a study that"
        " expands to more is refused before any run is built. Raise it for a deliberately large study.",
    )

    @field_validator("columns")
    @classmethod
    def _known_columns(cls, v: list[str] | None) -> list[str] | None:

        for key in v or []:
            if key not in BY_KEY:
                raise ValueError(f"unknown figure '{key}'{did_you_mean(key, BY_KEY)}; allowed: {', '.join(BY_KEY)}")
        return v


class TrainConfig(Strict):
    """``[train]``: the optimisation recipe."""

    epochs: NonNegativeInt = Field(
        10,
        description="Passes over the training split; 0 = no training, only the model's anatomy (profile).",
        json_schema_extra={SMOKE_AT_MOST: 1},  # 0 stays 0 in a smoke run: an anatomy study
    )
    optimizer: Literal[OPTIMIZERS] = Field("sgd", description="Optimizer; 'nesterov' is SGD with nesterov=true.")
    lr: PositiveFloat = Field(0.01, description="Learning rate.")
    momentum: float = Field(0.0, ge=0.0, lt=1.0, description="Momentum (sgd, nesterov, rmsprop).")
    nesterov: bool = Field(False, description="Nesterov momentum for sgd (needs momentum > 0).")
    weight_decay: NonNegativeFloat = Field(0.0, description="Optimizer weight decay (decoupled for adamw).")
    l2: NonNegativeFloat = Field(
        0.0,
        description="Explicit L2 penalty l2 * sum(w^2) over weights added to the loss (not weight decay).",
    )
    scheduler: Literal[SCHEDULERS] = Field("none", description="Learning-rate schedule, stepped per epoch.")
    step_size: PositiveInt = Field(10, description="step scheduler: epochs between decays.")
    gamma: float = Field(0.1, gt=0.0, le=1.0, description="step scheduler: decay factor.")
    loss: Literal[LOSSES] = Field("cross_entropy", description="Loss function.")
    # Strict: pydantic's lax int takes true as 1 and 2.0 as 2, and a seed written so is a mistake.
    seed: StrictInt = Field(
        0, ge=0, le=MAX_SEED, description="Seed for Python, NumPy, torch and the data order (0 to 2**63 - 1)."
    )
    device: Literal["auto", "cpu", "cuda"] = Field(
        "auto",
        description="auto: cuda when available, else cpu.",
        json_schema_extra=perf_only("every device runs the same arithmetic"),
    )
    deterministic: bool = Field(
        False,
        description="torch deterministic algorithms (bit-identical on CPU).",
        json_schema_extra=perf_only("it only chooses deterministic kernels"),
    )
    threads: PositiveInt | None = Field(
        None,
        le=MAX_THREADS,
        description="torch intra-op threads, at most 1024 (default: torch's choice).",
        json_schema_extra=perf_only("threads only split the same arithmetic"),
    )
    target_accuracy: float | None = Field(
        None,
        gt=0.0,
        le=1.0,
        description="Accuracy target for epochs_to_target (a fraction: 0.96), read on the validation split when"
        " there is one (data.val_fraction), else on the training accuracy.",
    )
    target_test_accuracy: float | None = Field(
        None, gt=0.0, le=1.0, description="Test accuracy target for test_epochs_to_target (a fraction)."
    )
    checkpoint: bool = Field(
        True,
        description="Save a checkpoint each epoch so an interrupted run resumes.",
        json_schema_extra=perf_only("checkpoints are written outside the training step"),
    )
    precision: Literal[PRECISIONS] = Field(
        "default",
        description="Numerics of the training step: default (torch's own settings, recorded as they are: on CUDA"
        " fp32 matmuls and TF32 convolutions), fp32 (no TF32 anywhere), tf32 (TF32 matmuls and convolutions on"
        " CUDA), bf16 or fp16 (autocast; fp16 with a gradient scaler). Weights and optimizer state stay fp32.",
    )
    channels_last: bool = Field(
        False,
        description="Keep 4-d activations and weights in channels-last memory format (NHWC): faster convs.",
        json_schema_extra=perf_only("the memory layout does not change the arithmetic"),
    )
    compile: Literal[COMPILE_MODES] = Field(
        "none",
        description="none (eager), default or max-autotune (torch.compile of the model, compilation timed apart"
        " as compile_time_s), or cuda-graph (CUDA only: the whole step - forward, backward, optimizer - captured"
        " once and replayed per batch).",
        json_schema_extra=perf_only("compilation runs the same arithmetic"),
    )

    @field_validator("target_accuracy", "target_test_accuracy", mode="before")
    @classmethod
    def _fraction(cls, v: Any) -> Any:
        if isinstance(v, int | float) and not isinstance(v, bool) and 1.0 < v <= 100.0:
            raise ValueError(f"give a fraction, e.g. {v / 100:g} for {v:g}%")
        return v

    @model_validator(mode="after")
    def _nesterov_needs_momentum(self) -> TrainConfig:
        if (self.nesterov or self.optimizer == "nesterov") and self.momentum <= 0.0:
            raise ValueError("nesterov momentum needs train.momentum > 0 (e.g. 0.9)")
        return self

    @model_validator(mode="after")
    def _graph_constraints(self) -> TrainConfig:
        if self.compile != "cuda-graph":
            return self
        if self.precision == "fp16":
            raise ValueError(
                "train.compile = 'cuda-graph' cannot capture fp16's gradient scaler (it reads values back to the"
                " host every step); use precision = 'bf16', which needs no scaler"
            )
        if self.optimizer == "adagrad":
            raise ValueError(
                "train.compile = 'cuda-graph' cannot capture torch's adagrad (its step counter lives on the host);"
                f" use sgd, nesterov or one of {', '.join(GRAPH_LR_OPTIMIZERS)}"
            )
        if self.scheduler == "onecycle" and self.optimizer not in GRAPH_LR_OPTIMIZERS:
            raise ValueError(
                f"train.compile = 'cuda-graph' with a per-batch schedule (onecycle) needs an optimizer that reads"
                f" its learning rate from GPU memory inside the graph: {', '.join(GRAPH_LR_OPTIMIZERS)};"
                f" torch's {self.optimizer} bakes it in at capture"
            )
        return self


# Why a section that is read after (or beside) training is performance-only: none of its keys enter training.
NOT_IN_TRAINING = "it does not enter training"

# The sections a variant or a sweep point may change: what one run's config holds.
RUN_SECTIONS = ("data", "model", "train", "measure")


def _check_dotted_key(key: str, what: str) -> None:
    """Refuse a sweep or variant key that is not ``section.key`` with a run section: it would replace a whole
    table by a value (``"train" = [1, 2]``) or set a key no run reads."""
    parts = key.split(".")
    if len(parts) < 2 or parts[0] not in RUN_SECTIONS or not all(parts):
        raise ValueError(
            f"{what} '{key}' must be written section.key (e.g. 'train.lr'), with section one of"
            f" {', '.join(RUN_SECTIONS)}"
        )


class RunConfig(Strict):
    """Everything one run needs: the study's sections with one variant's overrides applied."""

    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    measure: MeasureConfig = Field(
        default_factory=MeasureConfig, json_schema_extra=perf_only(NOT_IN_TRAINING)
    )  # what is measured after training


class DeployConfig(Strict):
    """``[deploy]``: deployment variants of each trained float model, measured against it (``trainlab deploy``)."""

    methods: list[DeployMethod] = Field(
        default_factory=list,
        description="Variants to produce after training: dynamic (int8 Linear weights, activation range per call),"
        " static (int8 weights and activations, calibrated), onnx (ONNX export run by onnxruntime). Empty: none.",
    )
    calibration_batches: PositiveInt = Field(
        10,
        description="static: training batches (data.batch_size each) run through the model to fix activation ranges.",
    )
    compile: bool = Field(
        True,
        description="Run int8 models through torch.compile (inductor) so int8 kernels do the work; false: the"
        " eager reference graph (int8 numerics simulated in float: same accuracy, no speed-up).",
    )
    latency_warmup: NonNegativeInt = Field(10, description="Warm-up batch-1 calls before latency is sampled.")
    latency_repeats: PositiveInt = Field(100, description="Batch-1 forward calls sampled for p50/p90/p99 (ms).")
    throughput_batch: PositiveInt = Field(256, description="Batch size for throughput (images/s); also the eval batch.")
    throughput_time_s: PositiveFloat = Field(0.5, description="Minimum seconds of repeated calls for throughput.")
    eval_limit: PositiveInt | None = Field(None, description="Test accuracy on at most this many test samples.")
    threads: PositiveInt | None = Field(
        None,
        le=MAX_THREADS,
        description="torch (and onnxruntime) intra-op threads while measuring, at most 1024 (default: torch's).",
    )
    onnx_tolerance: PositiveFloat = Field(
        1e-4,
        description="onnx: largest allowed |onnxruntime - float model| logit difference (absolute, plus the same"
        " relative to the logit's size); a larger one fails the variant.",
    )


class TrackConfig(Strict):
    """``[track]``: experiment trackers that receive the study live (``--track`` adds to them)."""

    to: list[Literal[TRACKERS]] = Field(
        default_factory=list, description="Trackers: mlflow (nested runs per study), tensorboard (a folder per run)."
    )
    tracking_uri: str | None = Field(
        None,
        description="MLflow tracking URI (default: MLFLOW_TRACKING_URI, else sqlite:///<out>/mlflow.db).",
    )


class StudyConfig(RunConfig):
    """A whole study file."""

    study: StudySection = Field(default_factory=StudySection)
    sweep: dict[str, list[Any]] = Field(
        default_factory=dict, description='Grid of values per dotted key, e.g. "model.dropout" = [0.0, 0.5].'
    )
    variant: list[dict[str, Any]] = Field(
        default_factory=list, description='Named overrides: { name = "bn", "model.batch_norm" = true }.'
    )
    repeats: Annotated[StrictInt, Field(gt=0)] | Literal["auto"] = Field(
        1,
        description="Seeds per variant: train.seed, train.seed+1, ...; or 'auto': 3 seeds, then 2 more at a time to"
        " the two variants the verdict compares, until their difference is settled or max_repeats is reached"
        " (docs/measurements.md, seeds until settled).",
    )
    max_repeats: StrictInt = Field(
        10, ge=3, description="repeats = 'auto': the most seeds a variant gets (the last look)."
    )
    margin: NonNegativeFloat = Field(
        0.0,
        description="repeats = 'auto': a difference of the study's quality metric smaller than this does not"
        " matter, in the metric's own units (0.005 = half an accuracy point); a difference whose interval lies"
        " inside +-margin ends the study as equivalent. 0: only a difference can settle it.",
    )
    tune: TuneConfig | None = Field(
        None,
        description="Tune every variant with the same budget of trials on the validation split, then run each"
        " variant's best setting with the study's seeds (docs/study-file.md, [tune]).",
    )
    deploy: DeployConfig = Field(
        default_factory=DeployConfig,
        description="Deployment variants (int8, ONNX).",
        json_schema_extra=perf_only(NOT_IN_TRAINING),
    )
    track: TrackConfig = Field(
        default_factory=TrackConfig,
        description="Experiment trackers (MLflow, TensorBoard).",
        json_schema_extra=perf_only(NOT_IN_TRAINING),
    )

    @property
    def planned_repeats(self) -> int:
        """Seeds per variant the study expands to: ``repeats``, or ``max_repeats`` for ``auto`` (which runs them
        in rounds, :mod:`trainlab.measure.sequential`)."""
        return self.max_repeats if self.repeats == "auto" else self.repeats

    @field_validator("repeats", mode="before")
    @classmethod
    def _repeats(cls, v: Any) -> Any:
        # One message for the two forms (pydantic would report a failure for each member of the union).
        if v == "auto" or (isinstance(v, int) and not isinstance(v, bool) and v > 0):
            return v
        raise ValueError(f"a number of seeds per variant (1 or more) or 'auto', not {v!r}")

    @model_validator(mode="after")
    def _tuned_keys(self) -> StudyConfig:
        for key in self.tune.params if self.tune else ():
            _check_dotted_key(key, "tune: key")
            if key in self.sweep:
                raise ValueError(f"'{key}' is both swept ([sweep]) and tuned ([tune]): keep it in one of them")
        return self

    @field_validator("sweep")
    @classmethod
    def _non_empty_sweep(cls, v: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for key, values in v.items():
            _check_dotted_key(key, "key")
            if not values:
                raise ValueError(f"sweep key '{key}' has no values")
        return v

    @field_validator("variant")
    @classmethod
    def _named_variants(cls, v: list[dict[str, Any]]) -> list[dict[str, Any]]:
        names = []
        for i, var in enumerate(v):
            name = var.get("name")
            if not isinstance(name, str) or not name:
                raise ValueError(f'variant #{i + 1} needs a name = "..."')
            for key in var:
                if key != "name":
                    _check_dotted_key(key, f"variant '{name}': key")
            names.append(name)
        dupes = {n for n, count in Counter(names).items() if count > 1}  # Counter: linear in the variants
        if dupes:
            raise ValueError(f"variant names must be unique; repeated: {', '.join(sorted(dupes))}")
        return v


@cache
def _performance_only() -> dict[str, str]:
    return marked_fields(StudyConfig, PERFORMANCE_ONLY)


def performance_only_keys() -> dict[str, str]:
    """Every key marked performance-only on its field (:func:`trainlab.schema.perf_only`), dotted
    (``train.threads``), with why its value cannot change what is computed; a marked section is a prefix
    (``measure.``, ``deploy.``, ``track.``) that stands for every key in it."""
    return dict(_performance_only())


def performance_only_reason(key: str) -> str | None:
    """Why the dotted ``key`` can only change speed, never what a run computes; None: it can change results."""
    marked = _performance_only()
    if key in marked:
        return marked[key]
    return next((why for k, why in marked.items() if k.endswith(".") and key.startswith(k)), None)


def smoke_settings(raw: dict[str, Any]) -> dict[str, Any]:
    """The ``--smoke`` stand-in of every key that declares one on its field, for the raw study tables ``raw``.

    A field marked :data:`~trainlab.schema.SMOKE` gets that value; one marked
    :data:`~trainlab.schema.SMOKE_AT_MOST` keeps the study's value when it is an integer no larger (the field's
    default when the study sets none or a malformed one, which validation reports), else the bound.
    """
    out: dict[str, Any] = dict(marked_fields(RunConfig, SMOKE))
    for key, bound in marked_fields(RunConfig, SMOKE_AT_MOST).items():
        given: Any = raw
        for part in key.split("."):
            given = given.get(part) if isinstance(given, dict) else None
        if not isinstance(given, int) or isinstance(given, bool):
            given = field_at(RunConfig, key).default
        out[key] = min(given, bound)
    return out


def json_schema() -> dict[str, Any]:
    """JSON schema of the study file, for editors (``trainlab schema``)."""
    schema = StudyConfig.model_json_schema()
    schema["title"] = "trainlab study"
    return schema


__all__ = [
    "COMPILE_MODES",
    "DEPLOY_BASELINE",
    "DEPLOY_METHODS",
    "GRAPH_LR_OPTIMIZERS",
    "LOSSES",
    "OPTIMIZERS",
    "PRECISIONS",
    "RUN_SECTIONS",
    "SCHEDULERS",
    "AugmentConfig",
    "DataConfig",
    "DeployConfig",
    "MeasureConfig",
    "ModelConfig",
    "NormalizeStats",
    "RunConfig",
    "StudyConfig",
    "StudySection",
    "TrackConfig",
    "TrainConfig",
    "json_schema",
    "performance_only_keys",
    "performance_only_reason",
    "smoke_settings",
]
