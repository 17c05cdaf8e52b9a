"""``[tune]``: the keys every variant is tuned over, the budget per variant, the sampler and the metric.

In the study file the keys to tune sit beside the section's own options, as dotted keys::

    [tune]
    "train.lr" = { low = 1e-4, high = 1.0, log = true }   # a range; a list is a choice
    trials = 16
    sampler = "quasirandom"

They are collected into :attr:`TuneConfig.params` (which a stored config, dumped as JSON, already holds).
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import (
    ConfigDict,
    Field,
    NonNegativeInt,
    PositiveInt,
    StrictFloat,
    StrictInt,
    ValidationError,
    field_validator,
    model_validator,
)

from trainlab.errors import did_you_mean
from trainlab.measure.metrics import BY_KEY
from trainlab.schema import Strict

SAMPLERS = ("quasirandom", "tpe")
PRUNERS = ("none", "median")
RANGE_FORM = "{ low = ..., high = ..., log = true|false, integer = true|false }"


class Range(Strict):
    """A numeric range to tune over: ``low`` to ``high``, evenly in log space when ``log`` (learning rates)."""

    low: StrictInt | StrictFloat = Field(description="Smallest value tried.")
    high: StrictInt | StrictFloat = Field(description="Largest value tried.")
    log: bool = Field(False, description="Spread the trials evenly in log space (needs low > 0).")
    integer: bool = Field(False, description="Whole numbers only (a batch size, a width); rounded.")

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if not self.low < self.high:
            raise ValueError(f"low ({self.low}) must be below high ({self.high})")
        if self.log and self.low <= 0:
            raise ValueError(f"log = true needs low > 0 (got {self.low})")
        if self.integer and (self.low != math.floor(self.low) or self.high != math.floor(self.high)):
            raise ValueError(f"integer = true needs whole-number ends (got {self.low} to {self.high})")
        return self

    def value(self, u: float) -> int | float:
        """The value at position ``u`` in [0, 1] of the range (in log space when ``log``)."""
        if self.log:
            v = math.exp(math.log(self.low) + u * (math.log(self.high) - math.log(self.low)))
        else:
            v = self.low + u * (self.high - self.low)
        v = min(max(v, self.low), self.high)  # exp(log(x)) may land one ulp outside
        return min(max(round(v), int(self.low)), int(self.high)) if self.integer else float(v)

    def position(self, value: float) -> float:
        """Where ``value`` lies in the range, 0 (low) to 1 (high), in log space when ``log``: ``value``'s inverse."""
        if self.log:
            return (math.log(value) - math.log(self.low)) / (math.log(self.high) - math.log(self.low))
        return (value - self.low) / (self.high - self.low)


def _dotted_keys_schema(schema: dict[str, Any]) -> None:
    """Let an editor's JSON Schema check take the dotted keys [tune] holds beside its options: each is what a
    value of ``params`` is."""
    value = schema["properties"]["params"]["additionalProperties"]
    schema["patternProperties"] = {r"^(data|model|train|measure)\.[A-Za-z0-9_.]+$": value}


def _dotted(key: str) -> bool:
    return "." in key


# The tables a key to tune may start with (a run's sections, trainlab.config.RUN_SECTIONS).
RUN_TABLES = ("data", "model", "train", "measure")


def _flatten(key: str, value: Any) -> dict[str, Any]:
    """``train.lr = {...}`` written unquoted in TOML is a table ``train`` holding ``lr``: the dotted keys of the
    ranges and lists inside it (a table with a range's ``low`` or ``high`` is the range)."""
    if not isinstance(value, dict) or not value or {"low", "high"} & set(value):
        return {key: value}
    out: dict[str, Any] = {}
    for k, v in value.items():
        out.update(_flatten(f"{key}.{k}", v))
    return out


class TuneConfig(Strict):
    """``[tune]``: each variant is tuned with the same number of trials on the validation split; its best
    setting then runs with the study's seeds and is scored on test."""

    model_config = ConfigDict(
        extra="forbid",
        allow_inf_nan=False,
        # The keys to tune are written at the section's top level ("train.lr" = {...}): editors see them here.
        json_schema_extra=lambda schema: _dotted_keys_schema(schema),
    )

    params: dict[str, Range | list[Any]] = Field(
        default_factory=dict,
        description="The keys to tune, each a range { low, high, log, integer } or a list of values to choose"
        ' from: written as dotted keys in [tune], e.g. "train.lr" = { low = 1e-4, high = 1.0, log = true }.',
    )
    trials: PositiveInt = Field(
        16,
        description="Trials per variant: every variant gets this many, each an ordinary run scored on the"
        " validation split only (a --smoke run: at most 2).",
    )
    sampler: Literal[SAMPLERS] = Field(
        "quasirandom",
        description="quasirandom: a scrambled Sobol sequence, the same settings for every variant (as AlgoPerf"
        " tunes); tpe: Optuna's TPE, told each variant's finished trials (needs the tune extra: optuna).",
    )
    metric: str | None = Field(
        None,
        description="The validation figure a trial is judged by (a key of docs/measurements.md starting with"
        " val_ or best_val_); default: val_acc, or val_r2 for regression.",
    )
    seed: NonNegativeInt = Field(0, description="Seed of the sampler: the same seed, the same trials.")
    prune: Literal[PRUNERS] = Field(
        "none",
        description="median: a trial stops after an epoch (short of its last) whose validation figure is worse"
        " than the median at that epoch of its variant's trials of earlier rounds (Optuna's median rule); it"
        " counts against the budget and is never chosen. With quasirandom the trials then run in two rounds.",
    )
    prune_warmup: NonNegativeInt = Field(
        0,
        description="Epochs every trial runs before the median rule may stop it (Optuna's n_warmup_steps): a"
        " large learning rate can start slowly and overtake.",
    )

    @model_validator(mode="before")
    @classmethod
    def _collect_params(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        params = dict(data.get("params") or {}) if isinstance(data.get("params"), dict) else data.get("params", {})
        rest = {}
        for key, value in data.items():
            if isinstance(params, dict) and (_dotted(key) or (key in RUN_TABLES and isinstance(value, dict))):
                params.update(_flatten(key, value))
            elif key != "params":
                rest[key] = value
        return {**rest, "params": params}

    @field_validator("params", mode="before")
    @classmethod
    def _spaces(cls, v: Any) -> Any:
        # One message per key (pydantic would report a failure for each member of the union).
        if not isinstance(v, dict):
            return v
        if not v:
            raise ValueError('names no key to tune: add one, e.g. "train.lr" = { low = 1e-4, high = 1.0, log = true }')
        out: dict[str, Range | list[Any]] = {}
        for key, space in v.items():
            if isinstance(space, Range):
                out[key] = space
            elif isinstance(space, dict):
                try:
                    out[key] = Range.model_validate(space)
                except ValidationError as err:
                    first = err.errors()[0]
                    where = ".".join(str(p) for p in first["loc"])
                    msg = str(first["msg"]).removeprefix("Value error, ")
                    if first["type"] == "extra_forbidden":
                        msg, where = f"unknown key '{where}'{did_you_mean(where, Range.model_fields)}", ""
                    at = f" {where}" if where else ""
                    raise ValueError(f"'{key}'{at}: {msg} (a range is {RANGE_FORM})") from None
            elif isinstance(space, list) and space:
                out[key] = space
            elif isinstance(space, list):
                raise ValueError(f"'{key}' is an empty list: give the values to choose from")
            else:
                raise ValueError(f"'{key}' = {space!r}: give a range {RANGE_FORM} or a list of values to choose from")
        return out

    @field_validator("metric")
    @classmethod
    def _validation_metric(cls, v: str | None) -> str | None:
        if v is None:
            return v
        if v not in BY_KEY:
            raise ValueError(f"unknown figure '{v}'{did_you_mean(v, BY_KEY)}")
        if not v.startswith(("val_", "best_val_")):
            raise ValueError(
                f"'{v}' is not read on the validation split: a trial never reads the test split; use a val_"
                " figure, e.g. val_acc"
            )
        return v

    def metric_for(self, task: str) -> str:
        """The figure trials are judged by on a ``task`` (classification or regression) dataset."""
        return self.metric or ("val_r2" if task == "regression" else "val_acc")

    def epoch_key(self, task: str) -> tuple[str, bool]:
        """The per-epoch figure pruning reads for :meth:`metric_for` (an ``EpochRow`` field), and whether the
        metric is its best so far (``best_val_acc``: ``val_acc``, running)."""
        metric = self.metric_for(task)
        return metric.removeprefix("best_"), metric.startswith("best_")


__all__ = ["PRUNERS", "SAMPLERS", "Range", "TuneConfig"]
