"""``simplenet`` and ``simplenet_dropout``: two 5x5 conv blocks with 3x3 stride-3 max-pools and a two-layer head.

``features``: conv C->10 5x5, ReLU, max-pool 3/3, conv 10->20 5x5, ReLU, max-pool 3/3 (no padding);
``classifier``: flatten, Linear(20*h*w -> 100), ReLU, Linear(100 -> classes). At 64x64 the spatial size goes
64 -> 60 -> 20 -> 16 -> 5, so the classifier sees 20*5*5 = 500 features; at 28x28 (MNIST) 28 -> 24 -> 8 -> 4
-> 1 (20 features). The input needs at least 25x25 pixels.

``simplenet_dropout`` adds dropout between the flattened features and the classifier and, with
``batch_norm = true``, a BatchNorm2d after each convolution (before its ReLU).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from trainlab.errors import ConfigError
from trainlab.models.cnn import SimpleCNN
from trainlab.models.registry import register

CHANNELS = (10, 20)  # output channels of the two conv blocks
KERNEL = 5  # conv kernel, no padding: each conv removes 4 pixels
POOL = 3  # max-pool kernel and stride
HIDDEN = 100  # width of the hidden Linear layer
MIN_SIZE = 25  # smallest H or W: (25 - 4) // 3 = 7 -> 7 - 4 = 3 -> 3 // 3 = 1


class SimpleNetParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SimpleNetDropoutParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dropout: float = Field(0.5, ge=0.0, lt=1.0, description="Dropout probability before the classifier.")
    batch_norm: bool = Field(False, description="BatchNorm2d after each convolution, before its ReLU.")


class SimpleNet(SimpleCNN):
    """``features`` then ``classifier``: (B, C, H, W) -> (B, 20, h, w) -> (B, classes). Same container as
    SimpleCNN; its own class name so layer tables and profiles say which model they show."""


def _spatial(n: int) -> int:
    """Size after both blocks for an input side of ``n`` pixels (< 1: too small)."""
    for _ in CHANNELS:
        n -= KERNEL - 1
        if n < POOL:
            return 0
        n //= POOL
    return n


def _build(name: str, input_shape: tuple[int, ...], num_classes: int, dropout: float, batch_norm: bool) -> nn.Module:
    if len(input_shape) != 3:
        raise ConfigError(
            f"{name} needs image input (C, H, W); this dataset gives samples of shape {list(input_shape)}"
        )
    c, h, w = input_shape
    if _spatial(h) < 1 or _spatial(w) < 1:
        raise ConfigError(
            f"{name}: a {h}x{w} input is too small for two 5x5 convolutions and 3x3 stride-3 pools"
            f" (it needs at least {MIN_SIZE}x{MIN_SIZE}; 64x64 gives the reference 500 features)"
        )
    features: list[nn.Module] = []
    for out in CHANNELS:
        features.append(nn.Conv2d(c, out, KERNEL))
        if batch_norm:
            features.append(nn.BatchNorm2d(out))
        features += [nn.ReLU(inplace=True), nn.MaxPool2d(POOL, stride=POOL)]
        c = out
    flat = c * _spatial(h) * _spatial(w)
    head: list[nn.Module] = [nn.Flatten()]
    if dropout > 0:
        head.append(nn.Dropout(dropout))
    head += [nn.Linear(flat, HIDDEN), nn.ReLU(inplace=True), nn.Linear(HIDDEN, num_classes)]
    return SimpleNet(nn.Sequential(*features), nn.Sequential(*head))


@register(
    "simplenet",
    "conv 5x5 (10, 20) with 3x3/3 max-pools, Linear 100, Linear classes (500 features at 64x64)",
    SimpleNetParams,
)
def build_simplenet(params: SimpleNetParams, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    return _build("simplenet", input_shape, num_classes, dropout=0.0, batch_norm=False)


@register(
    "simplenet_dropout", "simplenet with dropout before the classifier and optional batch norm", SimpleNetDropoutParams
)
def build_simplenet_dropout(
    params: SimpleNetDropoutParams, input_shape: tuple[int, ...], num_classes: int
) -> nn.Module:
    return _build("simplenet_dropout", input_shape, num_classes, dropout=params.dropout, batch_norm=params.batch_norm)
