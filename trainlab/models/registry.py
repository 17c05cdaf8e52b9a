"""The model registry: each family is one module; a user's own model is named ``package.module:ClassName``.

Every registered model has a pydantic parameter model, so ``[model]`` keys are validated like the rest of the
study (an unknown or mistyped key names itself). Builders receive the dataset's input shape and class count.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError
from torch import nn

from trainlab.errors import ConfigError, did_you_mean
from trainlab.userload import import_user_module, keyword_params
from trainlab.userload import set_study_folder as set_study_folder  # re-exported: the study sets it here

if TYPE_CHECKING:
    from trainlab.models.config import ModelConfig


@dataclass
class ModelEntry:
    """A registered model: its parameters' schema and a builder ``(params, input_shape, num_classes)``."""

    name: str
    description: str
    params: type[BaseModel]
    build: Callable[[Any, tuple[int, ...], int], nn.Module]


MODELS: dict[str, ModelEntry] = {}


def register(name: str, description: str, params: type[BaseModel]) -> Callable:
    """Decorator registering a builder under ``name``."""

    def deco(fn: Callable[[Any, tuple[int, ...], int], nn.Module]) -> Callable:
        MODELS[name] = ModelEntry(name, description, params, fn)
        return fn

    return deco


def registry() -> dict[str, ModelEntry]:
    """All registered models by name (the family modules register themselves when ``trainlab.models`` loads)."""
    return MODELS


def _import_user_class(name: str) -> type[nn.Module]:
    module_name, _, attr = name.partition(":")
    if not module_name or not attr:
        raise ConfigError(f"model.name '{name}': a user model is written 'package.module:ClassName'")
    # From the study's folder (that module alone, by path) or the installed packages: trainlab.userload.
    module = import_user_module(module_name, f"model.name '{name}'")
    cls = getattr(module, attr, None)
    if cls is None or not (inspect.isclass(cls) and issubclass(cls, nn.Module)):
        raise ConfigError(f"model.name '{name}': '{attr}' is not an nn.Module class in module '{module_name}'")
    return cls


def validate_model_kwargs(name: str, kwargs: dict[str, Any]) -> BaseModel | None:
    """Check a model name and its keyword arguments; raise ``ValueError`` naming the key and what is allowed."""
    if ":" in name:
        params = keyword_params(_import_user_class(name).__init__, skip=("self", "input_shape", "num_classes"))
        allowed = params.names
        for key in kwargs:
            if not params.any_keyword and key not in allowed:
                raise ValueError(
                    f"unknown key 'model.{key}' for {name}{did_you_mean(key, allowed)}; "
                    f"its __init__ accepts: {', '.join(allowed) or 'nothing'}"
                )
        return None
    models = registry()
    if name not in models:
        raise ValueError(f"unknown model '{name}'{did_you_mean(name, models)}; allowed: {', '.join(sorted(models))}")
    params = models[name].params
    try:
        return params.model_validate(kwargs)
    except ValidationError as err:
        msgs = []
        for e in err.errors():
            key = ".".join(str(p) for p in e["loc"])
            if e["type"] == "extra_forbidden":
                allowed = sorted(params.model_fields)
                msgs.append(
                    f"unknown key 'model.{key}' for model '{name}'{did_you_mean(key, allowed)}; "
                    f"allowed: name, {', '.join(allowed)}"
                )
            else:
                msg = e["msg"].removeprefix("Value error, ")
                msgs.append(f"model.{key}: {msg} (got {e.get('input')!r})")
        raise ValueError("; ".join(msgs)) from None


def build_model(cfg: ModelConfig, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """Build the model named by ``cfg`` for samples of ``input_shape`` and ``num_classes`` outputs."""
    if ":" in cfg.name:
        cls = _import_user_class(cfg.name)
        sig = inspect.signature(cls.__init__)
        extra = {}
        if "input_shape" in sig.parameters:
            extra["input_shape"] = tuple(input_shape)
        if "num_classes" in sig.parameters:
            extra["num_classes"] = num_classes
        return cls(**extra, **cfg.kwargs)
    entry = registry()[cfg.name]
    params = entry.params.model_validate(cfg.kwargs)
    return entry.build(params, tuple(input_shape), num_classes)


def flat_features(input_shape: tuple[int, ...]) -> int:
    """Number of input features once a sample is flattened."""
    n = 1
    for d in input_shape:
        n *= d
    return n
