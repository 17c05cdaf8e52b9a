"""``resnet18``: torchvision's ResNet-18 names and blocks, with the CIFAR stem by default.

- ``stem = "cifar"`` (default): ``conv1`` is 3x3 stride 1 and there is no max-pool, the usual choice for 32x32
  images (the ImageNet stem would shrink them to 8x8 before the first block). 11,173,962 parameters for
  3x32x32 and 10 classes.
- ``stem = "imagenet"``: ``conv1`` 7x7 stride 2 and a 3x3 stride-2 max-pool, as torchvision's ``resnet18``
  (11,689,512 parameters with 1000 classes), so ``resnet18-*.pth`` loads exactly.
- ``batch_norm = false`` replaces every BatchNorm2d by ``nn.Identity`` under the same name (``bn1``,
  ``downsample.1``), so the other names and shapes are unchanged; the convolutions keep ``bias=False`` as in
  torchvision, so the variants differ by the normalisation only.

Names match torchvision: ``conv1``, ``bn1``, ``layer1.0.conv1``, ``layer1.0.bn2``, ``layer2.0.downsample.0``,
``fc``. The input channels come from the dataset; a one-channel model loads an RGB checkpoint's ``conv1`` by
summing it over the colour channels (see ``trainlab.models.weights``).
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field
from torch import nn

from trainlab.errors import ConfigError
from trainlab.models.registry import register
from trainlab.models.weights import PretrainedOptions, apply_pretrained_and_freeze


class ResNetParams(PretrainedOptions):
    stem: Literal["cifar", "imagenet"] = Field(
        "cifar",
        description="cifar: conv1 3x3 stride 1, no max-pool (small images); imagenet: conv1 7x7 stride 2 + max-pool.",
    )
    batch_norm: bool = Field(True, description="BatchNorm2d after every convolution (false: nn.Identity).")
    zero_init_residual: bool = Field(
        False, description="Start each block's last batch-norm scale at zero, so every block begins as identity."
    )


def _norm(channels: int, batch_norm: bool) -> nn.Module:
    return nn.BatchNorm2d(channels) if batch_norm else nn.Identity()


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a shortcut; ``downsample`` (1x1 conv + norm) when the shape changes."""

    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, batch_norm: bool = True) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = _norm(planes, batch_norm)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = _norm(planes, batch_norm)
        self.downsample: nn.Module | None = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(
                nn.Conv2d(inplanes, planes, 1, stride=stride, bias=False), _norm(planes, batch_norm)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ResNet(nn.Module):
    """torchvision.models.ResNet with BasicBlocks, a selectable stem and optional batch norm."""

    def __init__(
        self,
        layers: tuple[int, int, int, int] = (2, 2, 2, 2),
        num_classes: int = 1000,
        in_channels: int = 3,
        stem: str = "cifar",
        batch_norm: bool = True,
        zero_init_residual: bool = False,
    ) -> None:
        super().__init__()
        if stem == "imagenet":
            self.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
        else:
            self.conv1 = nn.Conv2d(in_channels, 64, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = _norm(64, batch_norm)
        self.relu = nn.ReLU(inplace=True)
        # Identity for the CIFAR stem: no parameters either way, so the state_dict is the same.
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1) if stem == "imagenet" else nn.Identity()
        inplanes = 64
        for i, (planes, blocks) in enumerate(zip((64, 128, 256, 512), layers), start=1):
            stride = 1 if i == 1 else 2
            stage = [BasicBlock(inplanes, planes, stride, batch_norm)]
            stage += [BasicBlock(planes, planes, 1, batch_norm) for _ in range(blocks - 1)]
            setattr(self, f"layer{i}", nn.Sequential(*stage))
            inplanes = planes
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * BasicBlock.expansion, num_classes)

        # torchvision's initialisation: He (fan_out) for convolutions, unit scale and zero shift for batch norm.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if zero_init_residual and batch_norm:
            for m in self.modules():
                if isinstance(m, BasicBlock) and isinstance(m.bn2, nn.BatchNorm2d):
                    nn.init.zeros_(m.bn2.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))  # (B, 64, H, W) cifar; (B, 64, H/4, W/4) imagenet
        x = self.layer1(x)  # (B, 64, ., .)
        x = self.layer2(x)  # (B, 128, /2, /2)
        x = self.layer3(x)  # (B, 256, /4, /4)
        x = self.layer4(x)  # (B, 512, /8, /8)
        x = torch.flatten(self.avgpool(x), 1)  # (B, 512)
        return self.fc(x)  # (B, classes)


@register(
    "resnet18",
    "ResNet-18 with torchvision's names; CIFAR stem (3x3, no max-pool) or ImageNet stem; batch norm on/off",
    ResNetParams,
)
def build_resnet18(params: ResNetParams, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    if len(input_shape) != 3:
        raise ConfigError(
            f"resnet18 needs image input (C, H, W); this dataset gives samples of shape {list(input_shape)}"
        )
    # Any H, W >= 1 works: every stride-2 layer pads so its output is at least 1x1, and avgpool is adaptive.
    model = ResNet(
        (2, 2, 2, 2),
        num_classes=num_classes,
        in_channels=input_shape[0],
        stem=params.stem,
        batch_norm=params.batch_norm,
        zero_init_residual=params.zero_init_residual,
    )
    return apply_pretrained_and_freeze(model, params, head=["fc"], first_conv="conv1")
