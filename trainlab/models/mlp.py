"""Linear models: ``logreg`` (one Linear layer) and ``mlp`` (hidden layers, activation, dropout)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveInt
from torch import nn

from trainlab.models.registry import flat_features, register

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "gelu": nn.GELU,
    "leaky_relu": nn.LeakyReLU,
}


class LogRegParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MLPParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    hidden: list[PositiveInt] = Field([512, 256, 128], description="Hidden layer widths.")
    activation: Literal[tuple(ACTIVATIONS)] = Field("relu", description="Activation after every hidden layer.")
    dropout: float = Field(0.0, ge=0.0, lt=1.0, description="Dropout probability after every hidden layer.")
    batch_norm: bool = Field(False, description="BatchNorm1d before each activation.")


@register("logreg", "logistic regression: flatten, one Linear layer (softmax is in the loss)", LogRegParams)
def build_logreg(params: LogRegParams, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(flat_features(input_shape), num_classes))


@register("mlp", "multi-layer perceptron: hidden Linear layers, activation, dropout after each hidden", MLPParams)
def build_mlp(params: MLPParams, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    layers: list[nn.Module] = [nn.Flatten()]
    width = flat_features(input_shape)
    for h in params.hidden:
        layers.append(nn.Linear(width, h))
        if params.batch_norm:
            layers.append(nn.BatchNorm1d(h))
        layers.append(ACTIVATIONS[params.activation]())
        if params.dropout > 0:
            layers.append(nn.Dropout(params.dropout))
        width = h
    layers.append(nn.Linear(width, num_classes))
    return nn.Sequential(*layers)
