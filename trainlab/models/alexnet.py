"""``alexnet``: torchvision's AlexNet (the "one weird trick" variant), with its exact module and parameter names.

Names match torchvision (``features.0.weight`` ... ``features.10.bias``, ``classifier.1``, ``classifier.4``,
``classifier.6``), so torchvision's ``alexnet-owt-*.pth`` loads with ``model.pretrained``. With 1000 classes
on 3x224x224 it has 61,100,840 parameters and about 0.71 GMACs.

Any image dataset works: the model's first module, ``adapt``, resizes the input to ``resize`` x ``resize``
(bilinear, inside ``forward``, so no data-pipeline change is needed) and repeats a grey channel to three. It
has no parameters, so the state_dict is unchanged.
"""

from __future__ import annotations

import torch
from pydantic import Field, PositiveInt
from torch import nn
from torch.nn import functional as F

from trainlab.errors import ConfigError
from trainlab.models.registry import register
from trainlab.models.weights import PretrainedOptions, apply_pretrained_and_freeze

# (kernel, stride, padding) of each layer of `features` that changes the spatial size, in order.
_FEATURE_GEOMETRY = [(11, 4, 2), (3, 2, 0), (5, 1, 2), (3, 2, 0), (3, 1, 1), (3, 1, 1), (3, 1, 1), (3, 2, 0)]
# The classifier's input: 256 channels after AdaptiveAvgPool2d((6, 6)).
_FLAT_FEATURES = 256 * 6 * 6


class AlexNetParams(PretrainedOptions):
    dropout: float = Field(0.5, ge=0.0, lt=1.0, description="Dropout before each of the two hidden Linear layers.")
    resize: PositiveInt | None = Field(
        224,
        description="Resize the input to resize x resize inside forward (bilinear); null: feed the input as it is"
        " (then it must be at least 63x63).",
    )


class AdaptInput(nn.Module):
    """Resize to ``size`` x ``size`` (bilinear) and repeat a single channel to three. No parameters."""

    def __init__(self, size: int | None, channels: int = 3) -> None:
        super().__init__()
        self.size = size
        self.channels = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # (B, C, H, W) -> (B, 3, size, size); resizing before repeating keeps the interpolation on one channel.
        if self.size is not None and tuple(x.shape[-2:]) != (self.size, self.size):
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False)
        if x.shape[1] == 1 and self.channels != 1:
            x = x.expand(-1, self.channels, -1, -1)  # a view: no copy
        return x

    def extra_repr(self) -> str:
        return f"size={self.size}, channels={self.channels}"


class AlexNet(nn.Module):
    """torchvision.models.AlexNet's layers and names, preceded by the parameter-free ``adapt`` module."""

    def __init__(self, num_classes: int = 1000, dropout: float = 0.5, resize: int | None = 224) -> None:
        super().__init__()
        self.adapt = AdaptInput(resize, channels=3)
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(64, 192, kernel_size=5, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(192, 384, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
        )
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Dropout(p=dropout),
            nn.Linear(_FLAT_FEATURES, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(p=dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.adapt(x)  # (B, 3, 224, 224) by default
        x = self.features(x)  # (B, 256, 6, 6) at 224
        x = self.avgpool(x)  # (B, 256, 6, 6)
        x = torch.flatten(x, 1)  # (B, 9216)
        return self.classifier(x)  # (B, classes)


def feature_size(n: int) -> int:
    """Spatial size after ``features`` for an ``n`` x ``n`` input (0 or less: too small)."""
    for k, s, p in _FEATURE_GEOMETRY:
        n = (n + 2 * p - k) // s + 1
        if n < 1:
            return 0
    return n


def _check_input(input_shape: tuple[int, ...], resize: int | None) -> None:
    if len(input_shape) != 3:
        raise ConfigError(
            f"alexnet needs image input (C, H, W); this dataset gives samples of shape {list(input_shape)}"
        )
    c, h, w = input_shape
    if c not in (1, 3):
        raise ConfigError(f"alexnet takes 1-channel (repeated to 3) or 3-channel images; this dataset has {c} channels")
    side = min(h, w) if resize is None else resize
    if feature_size(side) < 1:
        raise ConfigError(
            f"alexnet: a {side}x{side} input shrinks below 1x1 in its features (it needs at least 63x63);"
            f" keep model.resize (default 224) or set it to 63 or more"
        )


@register(
    "alexnet",
    "torchvision's AlexNet (same parameter names: loads alexnet-owt-*.pth); input resized to 224, grey repeated to RGB",
    AlexNetParams,
)
def build_alexnet(params: AlexNetParams, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    _check_input(input_shape, params.resize)
    model = AlexNet(num_classes=num_classes, dropout=params.dropout, resize=params.resize)
    # The checkpoint's classifier.6 (1000 ImageNet classes) is replaced by the dataset's head.
    return apply_pretrained_and_freeze(model, params, head=["classifier.6"], first_conv=None)
