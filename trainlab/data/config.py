"""``[data]``: the dataset and how it is fed to the model — the data layer's own typed config.

:class:`DataConfig` holds the options every dataset shares. A source's own options (``data.target`` for
``csv``, ``data.shape`` for ``synthetic``, ...) are owned by that source's options model (see
:mod:`trainlab.data.registry`): ``[data]`` accepts them as extra keys, checks each against its owner, and
``cfg.options`` is the validated options model of the source ``cfg.name`` selects. With ``data.name =
"module:function"`` (:mod:`trainlab.data.user`) the extra keys are that function's keyword arguments instead,
checked against its signature, and validation calls it (once per process) to check what it returns.
"""

from __future__ import annotations

import copy
from typing import Any, Literal

from pydantic import (
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    SerializationInfo,
    SerializerFunctionWrapHandler,
    ValidationError,
    field_validator,
    model_serializer,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_core import InitErrorDetails

from trainlab.data.options import SourceOptions, square_size
from trainlab.data.registry import DATASETS, option_models, source_for
from trainlab.data.user import LABEL_COLUMN, UserDataOptions, is_user_name, materialize_user, name_problem, sort_keys
from trainlab.errors import did_you_mean
from trainlab.schema import SMOKE, SMOKE_AT_MOST, Strict, perf_only, study_relative

# Each DataLoader worker is a process: 100000 of them exhaust the machine's process table and memory before
# the first batch. 1024 is more workers than a machine has cores to feed them.
MAX_WORKERS = 1024


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
        """Whether any augmentation is switched on."""
        return bool(self.crop_padding or self.hflip or self.brightness or self.contrast)


def _option_fields() -> dict[str, tuple[type[SourceOptions], FieldInfo]]:
    """Every source option key -> (the first options model that owns it, its field); shared keys agree."""
    fields: dict[str, tuple[type[SourceOptions], FieldInfo]] = {}
    for model in option_models():
        for key, info in model.model_fields.items():
            if key in fields and (fields[key][1].annotation, fields[key][1].default) != (info.annotation, info.default):
                raise TypeError(f"data.{key} is defined differently by {fields[key][0].__name__} and {model.__name__}")
            fields.setdefault(key, (model, info))
    return fields


# Option key -> (owner model, field): what [data] accepts beside DataConfig's own fields.
OPTION_FIELDS = _option_fields()


def _error_details(err: ValidationError) -> list[InitErrorDetails]:
    """``err``'s errors in the form ``ValidationError.from_exception_data`` takes (to merge several)."""
    out: list[InitErrorDetails] = []
    for e in err.errors():
        detail: InitErrorDetails = {"type": e["type"], "loc": e["loc"], "input": e["input"]}
        if "ctx" in e:
            detail["ctx"] = e["ctx"]
        out.append(detail)
    return out


def _schema_with_options(schema: dict[str, Any]) -> None:
    """Describe every source's options in ``[data]``'s JSON schema, as the fields they were (for editors).

    A registered dataset takes the shared fields and the sources' options only; a data function
    (``"module:function"``) takes its keyword arguments as extra keys, which only its signature knows
    (validation checks them against it), so the options and the closed key list apply to the first alone.
    """
    shared = schema.setdefault("properties", {})
    options = {key: model.model_json_schema()["properties"][key] for key, (model, _) in OPTION_FIELDS.items()}
    schema.pop("additionalProperties", None)
    schema["if"] = {"properties": {"name": {"type": "string", "pattern": ":"}}, "required": ["name"]}
    schema["else"] = {"properties": options, "propertyNames": {"enum": sorted([*shared, *options])}}
    schema["description"] = schema.get("description", "").split("\n\n")[0]  # the docstring's summary, for editors


class DataConfig(Strict):
    """``[data]``: the dataset and how it is fed to the model.

    The fields are the options every dataset shares. A source's own options are extra keys, validated against
    the options model that owns them (:data:`OPTION_FIELDS`); a key of another source than ``name`` is
    type-checked and ignored (``--smoke`` swaps a study's dataset for ``synthetic`` and keeps the rest), a key
    no source owns is an error. :attr:`options` is the selected source's validated options model.
    """

    model_config = ConfigDict(extra="allow", json_schema_extra=_schema_with_options)

    name: str = Field("digits", description="Dataset name (see `trainlab data list`).")
    root: str | None = Field(
        None,
        description="Folder (or file) holding the dataset files (default: per dataset); a relative path is read"
        " from the study file's folder.",
        json_schema_extra=study_relative(),
    )
    download: bool = Field(True, description="Fetch the dataset on first use when it is missing.")
    batch_size: PositiveInt = Field(64, description="Training batch size (samples).", json_schema_extra={SMOKE: 8})
    test_batch_size: PositiveInt = Field(
        1000,
        description="Evaluation batch size (samples).",
        json_schema_extra=perf_only("it only changes how the test split is batched"),
    )
    normalize: bool | NormalizeStats = Field(
        False,
        description="true: per-channel mean/std of the training split; or explicit {mean=[..], std=[..]}.",
    )
    loader: Literal["resident", "dataloader"] = Field(
        "resident",
        description="resident: the split lives on the device as one tensor; dataloader: torch DataLoader.",
        json_schema_extra=perf_only("both loaders yield the same batches"),
    )
    pipeline: Literal["tensor", "pil"] = Field(
        "tensor",
        description="Per-sample transforms of the dataloader loader. tensor: crop/flip/normalise by tensor"
        " indexing; pil: each sample decoded to a PIL image, padded, cropped, flipped, converted to a tensor and"
        " normalised, as torchvision users write it (dataloader only; images only).",
        json_schema_extra=perf_only("both pipelines apply the same transforms with the same random choices"),
    )
    num_workers: NonNegativeInt = Field(
        0,
        le=MAX_WORKERS,
        description="DataLoader worker processes, at most 1024 (dataloader only).",
        json_schema_extra={**perf_only("the batches are identical for every worker count"), SMOKE_AT_MOST: 1},
    )
    pin_memory: bool = Field(
        False,
        description="DataLoader pin_memory (dataloader only).",
        json_schema_extra=perf_only("pinning only changes how batches are copied"),
    )
    persistent_workers: bool = Field(
        False,
        description="DataLoader persistent_workers (dataloader only).",
        json_schema_extra=perf_only("it only keeps the workers alive between epochs"),
    )
    prefetch_factor: PositiveInt | None = Field(
        None,
        description="DataLoader prefetch_factor (workers > 0).",
        json_schema_extra=perf_only("it only changes how far ahead workers load"),
    )
    limit_train: PositiveInt | None = Field(None, description="Use only the first N training samples.")
    limit_test: PositiveInt | None = Field(None, description="Use only the first N test samples.")
    val_fraction: float | None = Field(
        None,
        gt=0.0,
        lt=1.0,
        description="Hold out this fraction of the training split as a validation split (stratified by class,"
        " seeded by data.val_seed), which chooses the best epoch, the epochs to target and the best variant;"
        " the test split is then only scored. A source with its own validation split uses that instead.",
    )
    val_seed: NonNegativeInt = Field(
        0,
        description="Seed of the validation split: the same for every run of a study, so every variant is"
        " chosen on the same samples.",
    )
    limit_val: PositiveInt | None = Field(None, description="Use only the first N validation samples.")
    augment: AugmentConfig = Field(default_factory=AugmentConfig)
    # Image size on the device (every image dataset).
    resize: list[PositiveInt] | None = Field(
        None,
        description="Resize image batches on the device to [H, W] (one number: square), train and test alike,"
        " after augmentation (bilinear, antialiased when shrinking); the model sees this size.",
    )

    @field_validator("name")
    @classmethod
    def _known_dataset(cls, v: str) -> str:
        if is_user_name(v):
            problem = name_problem(v)
            if problem:
                raise ValueError(problem)
            return v
        if v not in DATASETS:
            raise ValueError(
                f"unknown dataset '{v}'{did_you_mean(v, DATASETS)}; allowed: {', '.join(sorted(DATASETS))},"
                " or 'module:function' for a function of yours that returns the splits"
            )
        return v

    @field_validator("resize", mode="before")
    @classmethod
    def _size(cls, v: Any) -> Any:
        return square_size(v)

    @model_validator(mode="after")
    def _pipeline_needs_dataloader(self) -> DataConfig:
        if self.pipeline == "pil" and self.loader != "dataloader":
            raise ValueError(
                f"data.pipeline = 'pil' needs data.loader = 'dataloader' (its per-sample PIL transforms run in the"
                f" DataLoader), not '{self.loader}'; allowed: data.pipeline = 'tensor' with either loader, or"
                " 'pil' with data.loader = 'dataloader'"
            )
        return self

    @model_validator(mode="wrap")
    @classmethod
    def _source_options(cls, data: Any, handler: ModelWrapValidatorHandler[DataConfig]) -> DataConfig:
        # The source options are checked beside the fields, so one pass reports every problem; a required
        # option is checked only once everything is valid (as pydantic runs an "after" validator).
        if not isinstance(data, dict):
            return handler(data)  # a DataConfig already validated, or a wrong type pydantic reports
        name = data.get("name")
        if is_user_name(name) and name_problem(name) is None:
            return cls._function_source(data, handler)
        given = {k: v for k, v in data.items() if k not in cls.model_fields}
        options, errors = cls._check_options(given)
        # As validated (coerced), so dumps and run ids see what the old fields held.
        cfg = cls._validated(data, handler, errors, options)
        selected = cfg.options
        if selected is not None:
            selected.check(cfg)
        return cfg

    @classmethod
    def _validated(
        cls,
        data: dict[str, Any],
        handler: ModelWrapValidatorHandler[DataConfig],
        errors: list[InitErrorDetails],
        extra: dict[str, Any],
    ) -> DataConfig:
        """The fields validated, with ``errors`` (the extra keys' problems) reported in the same pass; the
        config's extra keys then become ``extra``, as checked."""
        try:
            cfg = handler(data)
        except ValidationError as err:
            if not errors:
                raise
            raise ValidationError.from_exception_data(err.title, [*_error_details(err), *errors]) from None
        if errors:
            raise ValidationError.from_exception_data(cls.__name__, errors)
        held = cfg.__pydantic_extra__
        assert held is not None  # extra="allow"
        held.clear()
        held.update(extra)
        return cfg

    @classmethod
    def _function_source(cls, data: dict[str, Any], handler: ModelWrapValidatorHandler[DataConfig]) -> DataConfig:
        """``data.name = "module:function"``: the other keys are the function's keyword arguments (and
        ``label_column``), checked against its signature; the function is called, and its return checked."""
        given = {k: v for k, v in data.items() if k not in cls.model_fields}
        kept, problems = sort_keys(data["name"], given)  # imports the module: a ConfigError when it cannot
        errors: list[InitErrorDetails] = [
            {"type": "value_error", "loc": (key,), "input": given.get(key), "ctx": {"error": ValueError(msg)}}
            for key, msg in problems
        ]
        if LABEL_COLUMN in kept:
            try:
                kept[LABEL_COLUMN] = UserDataOptions.model_validate({LABEL_COLUMN: kept[LABEL_COLUMN]}).label_column
            except ValidationError as err:
                errors.extend(_error_details(err))
        cfg = cls._validated(data, handler, errors, kept)
        materialize_user(cfg)  # a bad return is a DataError naming the function, in `trainlab check` too
        return cfg

    @classmethod
    def _check_options(cls, given: dict[str, Any]) -> tuple[dict[str, Any], list[InitErrorDetails]]:
        """Validate source option keys against their owners: ``(validated values, errors)``."""
        errors: list[InitErrorDetails] = []
        by_owner: dict[type[SourceOptions], dict[str, Any]] = {}
        for key, value in given.items():
            if key in OPTION_FIELDS:
                by_owner.setdefault(OPTION_FIELDS[key][0], {})[key] = value
        valid: dict[str, Any] = {}
        for model, values in by_owner.items():
            try:
                opts = model.model_validate(values)
            except ValidationError as err:
                errors.extend(_error_details(err))
            else:
                valid.update({k: getattr(opts, k) for k in values})
        allowed = sorted([*cls.model_fields, *OPTION_FIELDS])
        for key in given:
            if key not in OPTION_FIELDS:
                msg = f"unknown key 'data.{key}'{did_you_mean(key, allowed)}; allowed here: {', '.join(allowed)}"
                errors.append(
                    {"type": "value_error", "loc": (key,), "input": given[key], "ctx": {"error": ValueError(msg)}}
                )
        return {k: valid[k] for k in given if k in valid}, errors

    @property
    def options(self) -> SourceOptions | None:
        """The options of the source ``name`` selects, validated, defaults filled in (None: it has none)."""
        model = source_for(self.name).options
        if model is None:
            return None
        extra = self.__pydantic_extra__ or {}
        return model.model_validate({k: v for k, v in extra.items() if k in model.model_fields})

    @model_serializer(mode="wrap")
    def _dump(self, handler: SerializerFunctionWrapHandler, info: SerializationInfo) -> dict[str, Any]:
        # As the old flat model dumped: every source's options with their value or default (the store keeps
        # this, and dataset_key compares it), or, with exclude_defaults (run ids), only those off their default.
        out: dict[str, Any] = handler(self)
        if is_user_name(self.name):
            return out  # a data function's keys exactly as given: validating the dump calls it with the same
        extra = self.__pydantic_extra__ or {}
        for key, (_, field) in OPTION_FIELDS.items():
            if key in extra:
                if info.exclude_defaults and key in out and extra[key] == field.default:
                    del out[key]
            elif not (
                info.exclude_defaults
                or info.exclude_unset
                or (info.exclude_none and field.default is None)
                or not _included(key, info)
            ):
                out[key] = copy.deepcopy(field.default)
        return out


def _included(key: str, info: SerializationInfo) -> bool:
    """Whether ``model_dump``'s include/exclude arguments keep the top-level key ``key``."""
    include, exclude = info.include, info.exclude
    if exclude is not None and key in exclude and (isinstance(exclude, set | frozenset) or exclude[key] in (True, ...)):
        return False
    return include is None or key in include


if set(OPTION_FIELDS) & set(DataConfig.model_fields):
    raise TypeError(f"source options shadow [data] fields: {sorted(set(OPTION_FIELDS) & set(DataConfig.model_fields))}")
