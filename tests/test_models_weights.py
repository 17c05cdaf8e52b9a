"""Pretrained weights by torchvision's names, the new head, frozen layers and their reported counts.

The checkpoints are made here: a model built with 1000 classes (torchvision's head), perturbed so that loaded
values cannot be mistaken for a fresh initialisation, saved as a plain state_dict like torchvision's files.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from trainlab.config import ModelConfig
from trainlab.errors import ConfigError
from trainlab.measure.complexity import count_params, profile_model
from trainlab.models import build_model
from trainlab.models.weights import REPORT_ATTR, freeze, load_pretrained, read_state_dict


def build(name: str, input_shape: tuple[int, ...], num_classes: int, seed: int = 0, **kwargs) -> nn.Module:
    torch.manual_seed(seed)
    return build_model(ModelConfig(name=name, **kwargs), input_shape, num_classes)


def perturbed_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The model's state_dict with every float tensor shifted by a distinct amount."""
    state = {}
    for i, (k, v) in enumerate(model.state_dict().items()):
        state[k] = v + 0.01 * (i + 1) if v.is_floating_point() else v.clone()
    return state


# ------------------------------------------------------------------------------------------------------
# AlexNet: one 1000-class checkpoint for the module (61M parameters: built and saved once)

# Parameters by hand: conv (in*out*k*k + out), linear (in*out + out).
ALEXNET_FEATURES = (
    (3 * 64 * 11 * 11 + 64)
    + (64 * 192 * 5 * 5 + 192)
    + (192 * 384 * 9 + 384)
    + (384 * 256 * 9 + 256)
    + (256 * 256 * 9 + 256)
)
ALEXNET_FC1 = 256 * 6 * 6 * 4096 + 4096
ALEXNET_FC2 = 4096 * 4096 + 4096


@pytest.fixture(scope="module")
def alexnet_ckpt(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, torch.Tensor]]:
    state = perturbed_state(build("alexnet", (3, 224, 224), 1000))
    path = tmp_path_factory.mktemp("ckpt") / "alexnet-owt-test.pth"
    torch.save(state, path)
    return path, state


def test_alexnet_loads_a_torchvision_named_checkpoint_with_a_new_head(alexnet_ckpt) -> None:
    path, state = alexnet_ckpt
    model = build("alexnet", (1, 28, 28), 15, pretrained=str(path))
    own = model.state_dict()
    for key in ("features.0.weight", "features.10.bias", "classifier.1.weight", "classifier.4.bias"):
        assert torch.equal(own[key], state[key]), key
    assert own["classifier.6.weight"].shape == (15, 4096)
    report = getattr(model, REPORT_ATTR)
    assert report.replaced == ["classifier.6.weight", "classifier.6.bias"]
    assert report.loaded == 14 and not report.problems()


def test_frozen_alexnet_with_a_new_head_reports_trainable_and_frozen_counts(alexnet_ckpt) -> None:
    path, _ = alexnet_ckpt
    model = build("alexnet", (1, 28, 28), 15, pretrained=str(path), freeze=["features", "classifier.1", "classifier.4"])
    head = 4096 * 15 + 15
    frozen = ALEXNET_FEATURES + ALEXNET_FC1 + ALEXNET_FC2
    assert ALEXNET_FEATURES == 2_469_696 and frozen == 57_003_840 and head == 61_455
    assert count_params(model) == (frozen + head, head)
    assert [n for n, p in model.named_parameters() if p.requires_grad] == ["classifier.6.weight", "classifier.6.bias"]
    # The profiler reports the same split; optimizer=None keeps it on the meta device (no 224x224 arithmetic).
    prof = profile_model(model, (1, 28, 28), 15, optimizer=None)
    assert (prof.params, prof.trainable_params, prof.frozen_params) == (frozen + head, head, frozen)
    # Frozen layers get no weight gradient and nothing before the head needs an input gradient: training
    # costs the forward plus the head's weight-gradient product (4096*15 MACs = 2*4096*15 FLOPs per sample).
    assert prof.train_flops_per_sample == prof.flops + 2 * 4096 * 15
    rows = {r.name: r for r in prof.layers}
    assert rows["features.0"].trainable_params == 0 and rows["classifier.6"].trainable_params == head


def test_alexnet_head_of_the_same_class_count_is_loaded(alexnet_ckpt) -> None:
    path, state = alexnet_ckpt
    model = build("alexnet", (3, 224, 224), 1000, pretrained=str(path))
    assert torch.equal(model.state_dict()["classifier.6.weight"], state["classifier.6.weight"])
    assert getattr(model, REPORT_ATTR).replaced == []


# ------------------------------------------------------------------------------------------------------
# ResNet-18


@pytest.fixture(scope="module")
def resnet_ckpt(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, torch.Tensor]]:
    state = perturbed_state(build("resnet18", (3, 224, 224), 1000, stem="imagenet"))
    path = tmp_path_factory.mktemp("ckpt") / "resnet18-test.pth"
    torch.save(state, path)
    return path, state


def test_resnet18_loads_a_torchvision_named_checkpoint_with_a_new_head(resnet_ckpt) -> None:
    path, state = resnet_ckpt
    model = build("resnet18", (3, 64, 64), 15, stem="imagenet", pretrained=str(path))
    own = model.state_dict()
    for key in (
        "conv1.weight",
        "bn1.running_mean",
        "layer1.0.conv1.weight",
        "layer3.0.downsample.0.weight",
        "layer4.1.bn2.bias",
    ):
        assert torch.equal(own[key], state[key]), key
    report = getattr(model, REPORT_ATTR)
    assert report.replaced == ["fc.weight", "fc.bias"] and model.fc.out_features == 15
    assert report.loaded == 122 - 2


def test_resnet18_grey_model_sums_rgb_stem_exactly(resnet_ckpt) -> None:
    path, _ = resnet_ckpt
    rgb = build("resnet18", (3, 32, 32), 1000, stem="imagenet", pretrained=str(path)).eval()
    grey = build("resnet18", (1, 32, 32), 1000, stem="imagenet", pretrained=str(path)).eval()
    assert getattr(grey, REPORT_ATTR).adapted == ["conv1.weight"]
    x = torch.randn(2, 1, 32, 32)
    with torch.no_grad():
        # Summing the stem over colour channels is the RGB network applied to the grey image repeated 3 times.
        torch.testing.assert_close(grey(x), rgb(x.repeat(1, 3, 1, 1)), rtol=1e-4, atol=1e-4)


def test_mismatched_checkpoint_is_an_error_naming_keys_unless_not_strict(resnet_ckpt) -> None:
    path, state = resnet_ckpt
    # The CIFAR stem's conv1 is 3x3, the checkpoint's 7x7.
    with pytest.raises(ConfigError, match=r"conv1.weight: file \[64, 3, 7, 7\] vs model \[64, 3, 3, 3\]"):
        build("resnet18", (3, 32, 32), 10, pretrained=str(path))
    model = build("resnet18", (3, 32, 32), 10, pretrained=str(path), pretrained_strict=False)
    report = getattr(model, REPORT_ATTR)
    assert len(report.mismatched) == 1 and report.loaded == 122 - 3
    assert torch.equal(model.state_dict()["layer1.0.conv1.weight"], state["layer1.0.conv1.weight"])
    # Without batch norm, the checkpoint's norm tensors have nowhere to go.
    with pytest.raises(ConfigError, match=r"not in the model \(100\): bn1.weight"):
        build("resnet18", (3, 32, 32), 10, stem="imagenet", batch_norm=False, pretrained=str(path))


def test_missing_and_unexpected_keys_are_named(tmp_path: Path) -> None:
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    state = {"0.weight": torch.ones(4, 3), "0.bias": torch.ones(4), "9.weight": torch.ones(1)}
    torch.save(state, tmp_path / "w.pth")
    with pytest.raises(ConfigError, match=r"missing from the file \(2\): 2.weight, 2.bias.*not in the model \(1\)"):
        load_pretrained(model, tmp_path / "w.pth")
    report = load_pretrained(model, tmp_path / "w.pth", strict=False)
    assert report.missing == ["2.weight", "2.bias"] and report.unexpected == ["9.weight"]
    assert torch.equal(model[0].weight, torch.ones(4, 3))


def test_checkpoint_formats_nested_and_data_parallel(tmp_path: Path) -> None:
    state = {"weight": torch.ones(2, 2), "bias": torch.zeros(2)}
    torch.save({"model": state, "epoch": 3}, tmp_path / "nested.pt")
    torch.save({f"module.{k}": v for k, v in state.items()}, tmp_path / "dp.pt")
    assert set(read_state_dict(tmp_path / "nested.pt")) == {"weight", "bias"}
    assert set(read_state_dict(tmp_path / "dp.pt")) == {"weight", "bias"}


class NotWeights:
    """An arbitrary object: weights_only loading must refuse to unpickle it."""


def test_unreadable_or_unsafe_files_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"file not found"):
        read_state_dict(tmp_path / "nope.pth")
    torch.save({"obj": NotWeights()}, tmp_path / "unsafe.pth")
    with pytest.raises(ConfigError, match=r"weights-only"):
        read_state_dict(tmp_path / "unsafe.pth")
    torch.save([1, 2, 3], tmp_path / "list.pth")
    with pytest.raises(ConfigError, match=r"does not hold a state_dict"):
        read_state_dict(tmp_path / "list.pth")


# ------------------------------------------------------------------------------------------------------
# Freezing


def test_freeze_matches_whole_module_names_only() -> None:
    model = nn.Sequential(*[nn.Linear(2, 2) for _ in range(12)])
    assert freeze(model, ["1"]) == 6
    assert [n for n, p in model.named_parameters() if not p.requires_grad] == ["1.weight", "1.bias"]


def test_freeze_errors() -> None:
    model = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2))
    with pytest.raises(ConfigError, match=r"'2' matches no parameter.*top-level modules with parameters: 0, 1"):
        freeze(model, ["2"])
    with pytest.raises(ConfigError, match=r"nothing would train"):
        freeze(model, ["0", "1"])


def test_freeze_through_the_config_on_resnet18() -> None:
    model = build("resnet18", (3, 32, 32), 10, freeze=["conv1", "bn1", "layer1", "layer2", "layer3", "layer4"])
    assert count_params(model)[1] == 512 * 10 + 10
    with pytest.raises(ConfigError, match=r"did you mean 'layer1"):
        build("resnet18", (3, 32, 32), 10, freeze=["layr1"])
