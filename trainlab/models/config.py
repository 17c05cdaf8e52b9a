"""``[model]``: the models layer's own typed config (a name and that model's keyword arguments)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from trainlab.models.registry import validate_model_kwargs


class ModelConfig(BaseModel):
    """``[model]``: a registered model name (or ``package.module:Class``) and its keyword arguments.

    The keyword arguments are validated against the named model's own parameter model, so a typo in
    ``model.dropuot`` is an error that names it.
    """

    model_config = ConfigDict(extra="allow")

    name: str = Field("logreg", description="Model name (see `trainlab models`) or 'package.module:Class'.")

    @model_validator(mode="after")
    def _known_model(self) -> ModelConfig:
        validate_model_kwargs(self.name, self.kwargs)
        return self

    @property
    def kwargs(self) -> dict[str, Any]:
        """The model's keyword arguments (everything but ``name``)."""
        return dict(self.model_extra or {})
