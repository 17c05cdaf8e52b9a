"""``simple_cnn``: conv blocks (conv, optional batch norm, ReLU, 2x2 max-pool) and a linear head.

With ``channels = [32, 64]`` and ``kernel_size = 3`` on 1x28x28 this is the classic MNIST SimpleCNN:
conv 1->32 and 32->64 (3x3, padding 1), two 2x2 max-pools, linear 3136->10: 50,186 parameters.
"""

from __future__ import annotations

import torch
from pydantic import BaseModel, ConfigDict, Field, PositiveInt
from torch import nn

from trainlab.errors import ConfigError
from trainlab.models.registry import register


class SimpleCNNParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channels: list[PositiveInt] = Field([32, 64], min_length=1, description="Output channels of each conv block.")
    kernel_size: PositiveInt = Field(3, description="Conv kernel size (odd; padding keeps the size).")
    batch_norm: bool = Field(False, description="BatchNorm2d after each conv.")
    dropout: float = Field(0.0, ge=0.0, lt=1.0, description="Dropout before the linear head.")
    hidden: list[PositiveInt] = Field([], description="Hidden Linear widths before the output layer.")
    pool: bool = Field(True, description="2x2 max-pool after each conv block.")


@register("simple_cnn", "conv blocks (conv, [batch norm], ReLU, 2x2 max-pool) and a linear head", SimpleCNNParams)
def build_simple_cnn(params: SimpleCNNParams, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    if len(input_shape) != 3:
        raise ConfigError(
            f"simple_cnn needs image input (C, H, W); this dataset gives samples of shape {list(input_shape)}"
        )
    c, h, w = input_shape
    features: list[nn.Module] = []
    for out in params.channels:
        features.append(nn.Conv2d(c, out, params.kernel_size, padding=params.kernel_size // 2))
        if params.batch_norm:
            features.append(nn.BatchNorm2d(out))
        features.append(nn.ReLU(inplace=True))
        if params.pool:
            if h < 2 or w < 2:
                raise ConfigError(
                    f"simple_cnn: {len(params.channels)} pooled blocks shrink a {input_shape[1]}x{input_shape[2]}"
                    f" input below 1x1; use fewer channels entries or model.pool = false"
                )
            features.append(nn.MaxPool2d(2))
            h, w = h // 2, w // 2
        c = out
    head: list[nn.Module] = [nn.Flatten()]
    if params.dropout > 0:
        head.append(nn.Dropout(params.dropout))
    width = c * h * w
    for hid in params.hidden:
        head += [nn.Linear(width, hid), nn.ReLU(inplace=True)]
        width = hid
    head.append(nn.Linear(width, num_classes))
    return SimpleCNN(nn.Sequential(*features), nn.Sequential(*head))


class SimpleCNN(nn.Module):
    """``features`` then ``classifier``; named so layer tables read naturally."""

    def __init__(self, features: nn.Sequential, classifier: nn.Sequential) -> None:
        super().__init__()
        self.features = features
        self.classifier = classifier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # (B, C, H, W) -> (B, classes)
        return self.classifier(self.features(x))
