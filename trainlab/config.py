"""The study file: pydantic models, TOML loading, ``--set`` overrides, sweep expansion, JSON schema.

A study file has the sections ``[study]``, ``[data]``, ``[model]``, ``[train]``, ``[measure]``, an optional
``[sweep]`` grid, an optional list of ``[[variant]]`` overrides, and ``repeats``. It is validated once, up
front, against the models below: every error names the key, where it is in the file and what is allowed, and
nothing runs until the whole study (every variant) validates.

Nothing in a config is evaluated: values are TOML literals; a user model is named as ``package.module:Class``
and imported, never ``eval``-ed.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    ValidationError,
    field_validator,
    model_validator,
)

from trainlab.errors import ConfigError, did_you_mean

OPTIMIZERS = ("sgd", "nesterov", "adagrad", "adadelta", "adam", "adamw", "rmsprop")
SCHEDULERS = ("none", "step", "cosine", "onecycle")
LOSSES = ("cross_entropy", "mse")


class Strict(BaseModel):
    """Base for every config section: unknown keys are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid")


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

    @field_validator("columns")
    @classmethod
    def _known_columns(cls, v: list[str] | None) -> list[str] | None:
        from trainlab.report.metrics import BY_KEY

        for key in v or []:
            if key not in BY_KEY:
                raise ValueError(f"unknown figure '{key}'{did_you_mean(key, BY_KEY)}; allowed: {', '.join(BY_KEY)}")
        return v


class NormalizeStats(Strict):
    """Explicit per-channel normalisation statistics, in units of [0, 1] pixel values."""

    mean: list[float] = Field(min_length=1)
    std: list[PositiveFloat] = Field(min_length=1)

    @model_validator(mode="after")
    def _same_length(self) -> NormalizeStats:
        if len(self.mean) != len(self.std):
            raise ValueError(f"mean has {len(self.mean)} values but std has {len(self.std)}; give one per channel")
        return self


class AugmentConfig(Strict):
    """``[data.augment]``: batch augmentations applied to training images only (never to the test split)."""

    crop_padding: NonNegativeInt = Field(
        0, description="Random crop back to the input size after zero-padding this many pixels per side."
    )
    hflip: bool = Field(False, description="Random horizontal flip with probability 0.5.")
    brightness: float = Field(0.0, ge=0.0, le=1.0, description="Brightness jitter: factor in [1-b, 1+b].")
    contrast: float = Field(0.0, ge=0.0, le=1.0, description="Contrast jitter: factor in [1-c, 1+c].")

    @property
    def active(self) -> bool:
        return bool(self.crop_padding or self.hflip or self.brightness or self.contrast)


class DataConfig(Strict):
    """``[data]``: the dataset and how it is fed to the model."""

    name: str = Field("digits", description="Dataset name (see `trainlab data list`).")
    root: str | None = Field(None, description="Folder holding the dataset files (default: per dataset).")
    download: bool = Field(True, description="Fetch the dataset on first use when it is missing.")
    batch_size: PositiveInt = Field(64, description="Training batch size (samples).")
    test_batch_size: PositiveInt = Field(1000, description="Evaluation batch size (samples).")
    normalize: bool | NormalizeStats = Field(
        False,
        description="true: per-channel mean/std of the training split; or explicit {mean=[..], std=[..]}.",
    )
    loader: Literal["resident", "dataloader"] = Field(
        "resident",
        description="resident: the split lives on the device as one tensor; dataloader: torch DataLoader.",
    )
    num_workers: NonNegativeInt = Field(0, description="DataLoader worker processes (dataloader only).")
    pin_memory: bool = Field(False, description="DataLoader pin_memory (dataloader only).")
    persistent_workers: bool = Field(False, description="DataLoader persistent_workers (dataloader only).")
    prefetch_factor: PositiveInt | None = Field(None, description="DataLoader prefetch_factor (workers > 0).")
    limit_train: PositiveInt | None = Field(None, description="Use only the first N training samples.")
    limit_test: PositiveInt | None = Field(None, description="Use only the first N test samples.")
    augment: AugmentConfig = Field(default_factory=AugmentConfig)
    # Options of the `synthetic` dataset (ignored by the others).
    shape: list[PositiveInt] = Field([1, 8, 8], description="synthetic: per-sample shape (C, H, W) or (F,).")
    num_classes: PositiveInt = Field(10, ge=2, description="synthetic: number of classes.")
    train_size: PositiveInt = Field(512, description="synthetic: training samples.")
    test_size: PositiveInt = Field(128, description="synthetic: test samples.")
    # Image size on the device (every image dataset).
    resize: list[PositiveInt] | None = Field(
        None,
        description="Resize image batches on the device to [H, W] (one number: square), train and test alike,"
        " after augmentation (bilinear, antialiased when shrinking); the model sees this size.",
    )
    # Options of the `folder` dataset.
    image_size: list[PositiveInt] | None = Field(
        None,
        description="folder: size [H, W] (one number: square) every image is decoded and resized to once, "
        "then cached; required for folder.",
    )
    grayscale: bool = Field(False, description="folder: decode images as 1-channel grayscale instead of RGB.")
    # Options of `folder` (a single tree) and `csv`: the held-out split, fixed by its own seed.
    test_fraction: float = Field(
        0.2,
        gt=0.0,
        lt=1.0,
        description="folder (one tree, no train/ and test/) and csv: fraction held out as the test split, "
        "per class (stratified) for classification.",
    )
    split_seed: int = Field(0, description="folder and csv: seed of the fixed train/test split (not train.seed).")
    # Options of the `csv` dataset.
    target: str | None = Field(None, description="csv: name of the target column (required for csv).")
    features: list[str] | None = Field(
        None, min_length=1, description="csv: feature columns by name (default: every column but the target)."
    )
    task: Literal["classification", "regression"] = Field(
        "classification",
        description="csv and synthetic: classify the target's distinct values, or regress a numeric target.",
    )
    scaling: Literal["none", "minmax", "standard"] = Field(
        "standard", description="csv: scaling of numeric feature columns, fitted on the training split only."
    )
    target_scaling: Literal["none", "minmax", "standard"] = Field(
        "none",
        description="csv regression: scale the target, fitted on the training split (loss in scaled units; "
        "MAE reported in the target's units).",
    )
    missing: Literal["error", "drop"] = Field(
        "error", description="csv: an empty/NA cell in a used column is an error naming its row, or drops the row."
    )
    delimiter: str = Field(",", min_length=1, max_length=1, description="csv: field separator character.")
    # Option of `cifar100`.
    cifar100_labels: Literal["fine", "coarse"] = Field(
        "fine", description="cifar100: the 100 fine classes or the 20 coarse superclasses."
    )

    @field_validator("name")
    @classmethod
    def _known_dataset(cls, v: str) -> str:
        from trainlab.data import DATASETS

        if v not in DATASETS:
            raise ValueError(
                f"unknown dataset '{v}'{did_you_mean(v, DATASETS)}; allowed: {', '.join(sorted(DATASETS))}"
            )
        return v

    @field_validator("resize", "image_size", mode="before")
    @classmethod
    def _size(cls, v: Any) -> Any:
        # One number means a square; [H, W] is kept; anything else is left for the type check to reject.
        if isinstance(v, int) and not isinstance(v, bool):
            return [v, v]
        if isinstance(v, list) and len(v) == 1:
            return [v[0], v[0]]
        if isinstance(v, list) and len(v) != 2:
            raise ValueError(f"give one size or [H, W], got {len(v)} values {v}")
        return v

    @model_validator(mode="after")
    def _dataset_options(self) -> DataConfig:
        # Options a dataset cannot do without; other datasets ignore them (so --smoke can swap the dataset).
        if self.name == "csv":
            if not self.target:
                raise ValueError('data.target is required for the csv dataset: the target column\'s name, e.g. "label"')
            if not self.root:
                raise ValueError("data.root is required for the csv dataset: the .csv file (or a folder holding it)")
            if self.features is not None and self.target in self.features:
                raise ValueError(f"data.features lists the target column '{self.target}'; remove it")
        if self.name == "folder":
            if not self.root:
                raise ValueError("data.root is required for the folder dataset: the top folder of the image tree")
            if self.image_size is None:
                raise ValueError("data.image_size is required for the folder dataset, e.g. image_size = [64, 64]")
        return self


class ModelConfig(BaseModel):
    """``[model]``: a registered model name (or ``package.module:Class``) and its keyword arguments.

    The keyword arguments are validated against the named model's own parameter model, so a typo in
    ``model.dropuot`` is an error that names it.
    """

    model_config = ConfigDict(extra="allow")

    name: str = Field("logreg", description="Model name (see `trainlab models`) or 'package.module:Class'.")

    @model_validator(mode="after")
    def _known_model(self) -> ModelConfig:
        from trainlab.models import validate_model_kwargs

        validate_model_kwargs(self.name, self.kwargs)
        return self

    @property
    def kwargs(self) -> dict[str, Any]:
        """The model's keyword arguments (everything but ``name``)."""
        return dict(self.model_extra or {})


class TrainConfig(Strict):
    """``[train]``: the optimisation recipe."""

    epochs: NonNegativeInt = Field(
        10, description="Passes over the training split; 0 = no training, only the model's anatomy (profile)."
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
    seed: int = Field(0, description="Seed for Python, NumPy, torch and the data order.")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto: cuda when available, else cpu.")
    deterministic: bool = Field(False, description="torch deterministic algorithms (bit-identical on CPU).")
    threads: PositiveInt | None = Field(None, description="torch intra-op threads (default: torch's choice).")
    target_accuracy: float | None = Field(
        None, gt=0.0, le=1.0, description="Train accuracy target for epochs_to_target (a fraction: 0.96)."
    )
    target_test_accuracy: float | None = Field(
        None, gt=0.0, le=1.0, description="Test accuracy target for test_epochs_to_target (a fraction)."
    )
    checkpoint: bool = Field(True, description="Save a checkpoint each epoch so an interrupted run resumes.")

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


class MeasureConfig(Strict):
    """``[measure]``: what is measured after training, and how."""

    infer_batch1: bool = Field(True, description="Time a batch-1 forward pass over the test set.")
    infer_limit: PositiveInt | None = Field(None, description="Batch-1 pass over at most this many test images.")
    latency_warmup: NonNegativeInt = Field(10, description="Warm-up forward calls before latency is sampled.")
    latency_repeats: PositiveInt = Field(100, description="Batch-1 forward calls sampled for p50/p90/p99.")
    throughput_batch: PositiveInt = Field(256, description="Batch size for throughput (images/s).")
    throughput_time_s: PositiveFloat = Field(0.5, description="Minimum seconds of repeated calls for throughput.")
    profile: bool = Field(True, description="Count params/MACs/sizes of the model before training.")
    mfu: bool = Field(
        True, description="Measure the device's peak matmul FLOP/s (once per machine, cached) and report MFU."
    )


class RunConfig(Strict):
    """Everything one run needs: the study's sections with one variant's overrides applied."""

    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    measure: MeasureConfig = Field(default_factory=MeasureConfig)


class DeployConfig(Strict):
    """``[deploy]``: deployment variants of each trained float model, measured against it (``trainlab deploy``)."""

    methods: list[Literal["dynamic", "static", "onnx"]] = Field(
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
        None, description="torch (and onnxruntime) intra-op threads while measuring (default: torch's choice)."
    )
    onnx_tolerance: PositiveFloat = Field(
        1e-4,
        description="onnx: largest allowed |onnxruntime - float model| logit difference (absolute, plus the same"
        " relative to the logit's size); a larger one fails the variant.",
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
    repeats: PositiveInt = Field(1, description="Seeds per variant: train.seed, train.seed+1, ...")
    deploy: DeployConfig = Field(default_factory=DeployConfig, description="Deployment variants (int8, ONNX).")

    @field_validator("sweep")
    @classmethod
    def _non_empty_sweep(cls, v: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for key, values in v.items():
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
            names.append(name)
        dupes = {n for n in names if names.count(n) > 1}
        if dupes:
            raise ValueError(f"variant names must be unique; repeated: {', '.join(sorted(dupes))}")
        return v


RUN_SECTIONS = ("data", "model", "train", "measure")


@dataclass(frozen=True)
class RunSpec:
    """One run of a study: a variant at one seed, fully resolved."""

    study: str
    variant: str
    repeat: int  # 0-based index among the variant's seeds
    overrides: dict[str, Any]  # the dotted keys this variant changes (sweep values included)
    config: RunConfig
    run_id: str = field(default="")

    @property
    def seed(self) -> int:
        return self.config.train.seed


@dataclass
class Study:
    """A validated study: its config, the runs it expands to, and where it came from."""

    config: StudyConfig
    runs: list[RunSpec]
    path: Path | None = None
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.config.study.name

    @property
    def baseline(self) -> str:
        return self.config.study.baseline or self.runs[0].variant

    @property
    def swept_keys(self) -> list[str]:
        """Dotted keys that vary between runs, in first-seen order."""
        keys: list[str] = []
        for r in self.runs:
            for k in r.overrides:
                if k not in keys:
                    keys.append(k)
        return keys


# ------------------------------------------------------------------------------------------------------
# Loading and overrides


def parse_override(text: str) -> tuple[str, Any]:
    """Parse ``KEY=VALUE`` from ``--set``; VALUE is a TOML literal (``0.05``, ``true``, ``[1, 2]``) or a string."""
    if "=" not in text:
        raise ConfigError(f"--set expects KEY=VALUE (e.g. train.lr=0.05), got '{text}'")
    key, value = text.split("=", 1)
    key = key.strip()
    if not key:
        raise ConfigError(f"--set expects KEY=VALUE, got '{text}' with an empty key")
    try:
        parsed = tomllib.loads(f"v = {value.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        parsed = value.strip()  # a bare word such as adam or cuda is a string
    return key, parsed


def set_dotted(d: dict[str, Any], key: str, value: Any) -> None:
    """Set ``d[a][b][c] = value`` for ``key = "a.b.c"``, creating tables on the way.

    ``sweep.<dotted key>`` is special: the sweep table's keys contain dots themselves.
    """
    if key.startswith("sweep."):
        d.setdefault("sweep", {})[key[len("sweep.") :]] = value
        return
    parts = key.split(".")
    node = d
    for p in parts[:-1]:
        nxt = node.get(p)
        if nxt is None:
            nxt = node[p] = {}
        if not isinstance(nxt, dict):
            raise ConfigError(f"cannot set '{key}': '{p}' is a value, not a table")
        node = nxt
    node[parts[-1]] = value


def _locate(text: str | None, loc: tuple[Any, ...]) -> str:
    """Best-effort 'line N' for a validation error location in the TOML text (tomllib keeps no positions)."""
    if not text or not loc:
        return ""
    lines = text.splitlines()
    section = str(loc[0])
    start = 0
    header = re.compile(rf"^\s*\[\[?\s*{re.escape(section)}\s*\]?\]\s*$")
    for i, line in enumerate(lines):
        if header.match(line):
            start = i
            break
    if len(loc) > 1:
        key = str(loc[-1])
        pattern = re.compile(rf"^\s*\"?{re.escape(key)}\"?\s*=")
        for i in range(start, len(lines)):
            if pattern.match(lines[i]):
                return f"line {i + 1}"
    return f"line {start + 1}" if start else ""


def _format_validation_error(
    err: ValidationError, text: str | None, where: str, from_cli: frozenset[str] = frozenset()
) -> str:
    """One line per problem: the dotted key, what is wrong and allowed, and where (file and line, or --set)."""
    msgs = []
    for e in err.errors():
        loc = tuple(p for p in e["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        # pydantic reports union members as extra loc parts ("bool", "NormalizeStats"): drop them.
        loc = tuple(p for p in loc if p not in ("bool", "NormalizeStats", "int", "float", "str", "list[float]"))
        key = ".".join(str(p) for p in loc) or "(top level)"
        if key in from_cli:
            place = " (from --set)"
        else:
            line = _locate(text, loc)
            place = f" ({where}{', ' + line if line else ''})" if where else (f" ({line})" if line else "")
        if e["type"] == "extra_forbidden":
            allowed = _allowed_keys(loc[:-1])
            hint = did_you_mean(str(loc[-1]), allowed)
            msg = f"unknown key '{key}'{hint}; allowed here: {', '.join(allowed)}"
        else:
            msg = e["msg"].removeprefix("Value error, ")
            got = e.get("input")
            if e["type"] == "literal_error" and isinstance(got, str):
                choices = re.findall(r"'([^']+)'", e.get("ctx", {}).get("expected", ""))
                msg += did_you_mean(got, choices)
            # Our own validators already quote the value; pydantic's built-in messages do not.
            if e["type"] not in ("missing", "value_error") and not isinstance(got, dict | list):
                msg += f" (got {got!r})"
            # Messages from nested validators (model kwargs) already name their full key.
            if not msg.startswith(("unknown key", f"{key}.", "model.")):
                msg = f"{key}: {msg}"
        msgs.append(f"{msg}{place}")
    return "\n".join(msgs)


def _allowed_keys(parent: tuple[Any, ...]) -> list[str]:
    model: type[BaseModel] = StudyConfig
    for p in parent:
        f = model.model_fields.get(str(p))
        ann = getattr(f, "annotation", None) if f else None
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            model = ann
        else:
            break
    return sorted(model.model_fields)


def load_study(source: str | Path | dict[str, Any], overrides: list[str] | dict[str, Any] | None = None) -> Study:
    """Read, override and validate a study; expand it into runs.

    ``source`` is a TOML path, ``recipe:NAME`` or an already-parsed dict. ``overrides`` are ``KEY=VALUE``
    strings (as from ``--set``) or a dict of dotted keys. Raises :class:`ConfigError` with every problem.
    """
    text: str | None = None
    path: Path | None = None
    if isinstance(source, dict):
        raw = copy.deepcopy(source)
        where = ""
    else:
        path = resolve_study_path(str(source))
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read study file {path}: {exc.strerror}") from None
        try:
            raw = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from None
        where = str(path)

    items = list(overrides.items()) if isinstance(overrides, dict) else [parse_override(o) for o in overrides or []]
    for key, value in items:
        set_dotted(raw, key, value)
    from_cli = frozenset(k for k, _ in items)

    try:
        cfg = StudyConfig.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(_format_validation_error(err, text, where, from_cli)) from None

    runs = expand(cfg, raw, text, where)
    if cfg.study.baseline is not None and cfg.study.baseline not in {r.variant for r in runs}:
        names = sorted({r.variant for r in runs})
        raise ConfigError(
            f"study.baseline: no variant named '{cfg.study.baseline}'{did_you_mean(cfg.study.baseline, names)};"
            f" variants: {', '.join(names)}"
        )
    return Study(config=cfg, runs=runs, path=path, raw=raw)


def resolve_study_path(source: str) -> Path:
    """Map ``recipe:NAME`` to a shipped recipe file; otherwise treat ``source`` as a path."""
    if source.startswith("recipe:"):
        from trainlab.recipes import recipe_path

        return recipe_path(source[len("recipe:") :])
    path = Path(source)
    if not path.exists():
        raise ConfigError(f"study file not found: {path}")
    return path


def _format_value(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, list | dict):
        return json.dumps(v, separators=(",", ":"))
    return str(v)


def expand(cfg: StudyConfig, raw: dict[str, Any], text: str | None = None, where: str = "") -> list[RunSpec]:
    """Expand a study into runs: (explicit variants or one base) x sweep grid x repeats.

    A sweep point is named after its values (``model.dropout=0.5``); combined with an explicit variant the
    name is ``variant/model.dropout=0.5``. Seeds are ``train.seed + repeat``.
    """
    base = {k: copy.deepcopy(raw.get(k, {})) for k in RUN_SECTIONS}
    variants: list[tuple[str, dict[str, Any]]] = [
        (v["name"], {k: val for k, val in v.items() if k != "name"}) for v in cfg.variant
    ] or [("base", {})]
    grid_keys = list(cfg.sweep)
    grid = list(itertools.product(*(cfg.sweep[k] for k in grid_keys))) if grid_keys else [()]

    runs: list[RunSpec] = []
    for vname, vover in variants:
        for point in grid:
            over = dict(vover)
            over.update(zip(grid_keys, point))
            if grid_keys:
                label = ",".join(f"{k.split('.')[-1]}={_format_value(v)}" for k, v in zip(grid_keys, point))
                name = label if vname == "base" else f"{vname}/{label}"
            else:
                name = vname
            for rep in range(cfg.repeats):
                resolved = copy.deepcopy(base)
                # A variant that switches to another model starts from that model's defaults: the base
                # [model] keys belong to the base model and would not fit (e.g. mlp.hidden on a CNN).
                if "model.name" in over and over["model.name"] != base["model"].get("name", "logreg"):
                    resolved["model"] = {}
                for key, value in over.items():
                    if key.split(".")[0] not in RUN_SECTIONS:
                        raise ConfigError(
                            f"variant '{name}': key '{key}' must start with one of {', '.join(RUN_SECTIONS)}"
                        )
                    set_dotted(resolved, key, value)
                # Repeats differ only by seed: seed + repeat, counted from the variant's own seed if it sets one.
                first_seed = over.get("train.seed", cfg.train.seed)
                resolved.setdefault("train", {})["seed"] = first_seed + rep
                try:
                    rc = RunConfig.model_validate(resolved)
                except ValidationError as err:
                    raise ConfigError(f"variant '{name}': " + _format_validation_error(err, None, where)) from None
                runs.append(
                    RunSpec(
                        study=cfg.study.name,
                        variant=name,
                        repeat=rep,
                        overrides=over,
                        config=rc,
                        run_id=run_hash(rc, name),
                    )
                )
    return runs


def run_hash(config: RunConfig, variant: str) -> str:
    """Stable 16-hex-digit id of a resolved run: same config and variant name, same id (used to skip/resume).

    Keys left at their defaults are not part of the id, so a trainlab upgrade that adds a new option (with a
    default) does not orphan the runs of an existing study.
    """
    payload = json.dumps(
        {"variant": variant, "config": config.model_dump(mode="json", exclude_defaults=True)},
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def json_schema() -> dict[str, Any]:
    """JSON schema of the study file, for editors (``trainlab schema``)."""
    schema = StudyConfig.model_json_schema()
    schema["title"] = "trainlab study"
    return schema
