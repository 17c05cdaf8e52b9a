"""Models: a registry of families (one module each), the ``[model]`` config, and building a model for a dataset.

Every registered model has a pydantic parameter model, so ``[model]`` keys are validated like the rest of the
study (an unknown or mistyped key names itself). A user's own model is named ``package.module:ClassName``.
Builders receive the dataset's input shape and class count; :func:`build_for` is the one place that builds a
model for a dataset and turns a model that cannot take that input into a :class:`ConfigError`.
"""

from __future__ import annotations

from typing import Protocol

from torch import nn

from trainlab.errors import ConfigError, TrainlabError

# The family modules register themselves with the registry when imported; importing them here makes every
# registered model known as soon as the package is.
from trainlab.models import alexnet, cnn, mlp, resnet, simplenet  # noqa: F401
from trainlab.models.config import ModelConfig
from trainlab.models.registry import (
    MODELS,
    ModelEntry,
    build_model,
    flat_features,
    register,
    registry,
    set_study_folder,
    validate_model_kwargs,
)


class InputSpec(Protocol):
    """What a model is built for: a sample's shape and the number of outputs (a ``Dataset`` is one)."""

    @property
    def input_shape(self) -> tuple[int, ...]: ...

    @property
    def num_classes(self) -> int: ...


def build_for(cfg: ModelConfig, data: InputSpec) -> nn.Module:
    """Build ``cfg``'s model for ``data``'s samples and classes; a model that cannot take them is a ConfigError."""
    try:
        return build_model(cfg, tuple(data.input_shape), data.num_classes)
    except TrainlabError:
        raise
    except (TypeError, ValueError, RuntimeError) as exc:
        raise ConfigError(
            f"model '{cfg.name}' cannot be built for input {list(data.input_shape)} and {data.num_classes}"
            f" classes: {exc}"
        ) from None


__all__ = [
    "MODELS",
    "InputSpec",
    "ModelConfig",
    "ModelEntry",
    "build_for",
    "build_model",
    "flat_features",
    "register",
    "registry",
    "set_study_folder",
    "validate_model_kwargs",
]
