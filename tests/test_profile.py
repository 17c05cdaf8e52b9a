"""The profiler and ``trainlab profile``: reference figures, hand-computed MACs, the CLI and its errors.

Hand computation: a convolution costs (output elements) x (in_channels / groups x kH x kW) MACs, a Linear
layer in x out per sample; bias, activations, pooling and normalisation cost nothing (docs/measurements.md).
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
import torch
from torch import nn

from trainlab.cli import main
from trainlab.config import ModelConfig
from trainlab.errors import ConfigError
from trainlab.measure.complexity import ROOT_ROW, count_forward, profile_model
from trainlab.models import build_model
from trainlab.profiling import parse_input_shape, profile_model_name, profile_study

FIGURE_KEYS = {
    "params",
    "trainable_params",
    "frozen_params",
    "macs",
    "flops",
    "train_flops_per_sample",
    "size_mb",
    "saved_kb",
    "conv_layers",
    "linear_layers",
    "last_linear_in_features",
    "nonzero_grads",
    "input_shape",
}


def build(name: str, input_shape: tuple[int, ...], num_classes: int = 10, **kwargs) -> nn.Module:
    torch.manual_seed(0)
    return build_model(ModelConfig(name=name, **kwargs), input_shape, num_classes)


def conv_macs(c_in: int, c_out: int, k: int, h_out: int, w_out: int) -> int:
    return c_out * h_out * w_out * c_in * k * k


# ------------------------------------------------------------------------------------------------------
# Reference figures


def test_mnist_simple_cnn_reference_figures_and_per_layer_hand_count() -> None:
    model = build("simple_cnn", (1, 28, 28), channels=[32, 64], kernel_size=3)
    p = profile_model(model, (1, 28, 28), 10, optimizer="sgd")
    assert p.params == 50_186 and p.macs == 3_869_824 and p.flops == 2 * 3_869_824
    macs = {r.name: r.macs for r in p.layers}
    assert macs["features.0"] == conv_macs(1, 32, 3, 28, 28) == 225_792
    assert macs["features.3"] == conv_macs(32, 64, 3, 14, 14) == 3_612_672
    assert macs["classifier.1"] == 64 * 7 * 7 * 10 == 31_360
    assert sum(macs.values()) == p.macs  # ReLU, pooling, flatten: 0
    shapes = {r.name: r.output_shape for r in p.layers}
    assert shapes["features.2"] == [1, 32, 14, 14] and shapes["classifier.0"] == [1, 3136]
    assert (p.conv_layers, p.linear_layers, p.last_linear_in_features) == (2, 1, 3136)
    assert p.trainable_params == 50_186 and p.frozen_params == 0
    # fp32: 4 bytes per parameter, no buffers
    assert p.size_mb == pytest.approx(50_186 * 4 / 2**20)
    assert 50_186 * 4 / 1024 < p.saved_kb < 50_186 * 4 / 1024 + 16  # plus the zip container's headers
    assert 0 < p.nonzero_grads <= p.trainable_params


def test_mlp_macs_and_training_flops_by_hand() -> None:
    model = build("mlp", (784,), hidden=[512, 256, 128])
    p = profile_model(model, (784,), 10, optimizer=None)
    fwd = 784 * 512 + 512 * 256 + 256 * 128 + 128 * 10
    assert p.params == 567_434 and p.macs == fwd == 566_528
    # Training: forward + weight gradients (2 x fwd) + input gradients of every layer but the first.
    assert p.train_flops_per_sample == 2 * (3 * fwd - 784 * 512)
    assert p.nonzero_grads is None
    # With an optimizer the same figure comes from the real training step instead of the meta copy.
    assert profile_model(model, (784,), 10, optimizer="sgd").train_flops_per_sample == p.train_flops_per_sample
    p3072 = profile_model(build("mlp", (3, 32, 32), hidden=[512]), (3, 32, 32), 10, train_figures=False)
    assert p3072.params == 1_578_506 and p3072.macs == 3072 * 512 + 512 * 10


def test_resnet18_cifar_reference_figures() -> None:
    p = profile_model(build("resnet18", (3, 32, 32)), (3, 32, 32), 10, train_figures=False)
    assert p.params == 11_173_962 and p.conv_layers == 20 and p.last_linear_in_features == 512
    # stem 3->64 at 32x32; layer1: 4 convs 64->64 at 32x32; layer2..4: first conv strided, a 1x1 shortcut.
    hand = conv_macs(3, 64, 3, 32, 32) + 4 * conv_macs(64, 64, 3, 32, 32)
    for c_in, c, s in ((64, 128, 16), (128, 256, 8), (256, 512, 4)):
        hand += conv_macs(c_in, c, 3, s, s) + 3 * conv_macs(c, c, 3, s, s) + conv_macs(c_in, c, 1, s, s)
    hand += 512 * 10
    assert p.macs == hand == 555_422_720
    assert p.size_mb > p.params * 4 / 2**20  # batch-norm running statistics are buffers


def test_alexnet_macs_at_224_on_the_meta_device() -> None:
    # 61M parameters, ~0.71 GMACs: counted on a meta copy (no arithmetic), so this stays fast.
    model = build("alexnet", (3, 224, 224), 1000)
    macs, per_module, shapes = count_forward(model, (3, 224, 224))
    assert per_module["features.0"] == conv_macs(3, 64, 11, 55, 55) == 70_276_800
    assert per_module["features.3"] == conv_macs(64, 192, 5, 27, 27)
    assert shapes["features.12"] == [1, 256, 6, 6] and shapes["adapt"] == [1, 3, 224, 224]
    convs = 70_276_800 + conv_macs(64, 192, 5, 27, 27) + conv_macs(192, 384, 3, 13, 13)
    convs += conv_macs(384, 256, 3, 13, 13) + conv_macs(256, 256, 3, 13, 13)
    assert macs == convs + 9216 * 4096 + 4096 * 4096 + 4096 * 1000 == 714_188_480


def test_strided_grouped_conv_by_hand() -> None:
    model = nn.Sequential(nn.Conv2d(8, 16, 3, stride=2, padding=1, groups=4), nn.Flatten(), nn.Linear(16 * 5 * 5, 3))
    p = profile_model(model, (8, 10, 10), 3)
    assert p.macs == 16 * 5 * 5 * (8 // 4) * 3 * 3 + 400 * 3


# ------------------------------------------------------------------------------------------------------
# Behaviour of the profiler


def test_profiling_leaves_the_model_and_the_rng_untouched() -> None:
    model = build("simplenet_dropout", (1, 32, 32), batch_norm=True)
    model.eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng, threads = torch.get_rng_state(), torch.get_num_threads()
    p1 = profile_model(model, (1, 32, 32), 10, optimizer="adam")
    assert torch.equal(torch.get_rng_state(), rng) and torch.get_num_threads() == threads
    assert not model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # BN stats included
    assert all(p.grad is None for p in model.parameters())
    p2 = profile_model(model, (1, 32, 32), 10, optimizer="adam")
    assert p1.to_dict() == p2.to_dict()  # seeded: the same figures every time


def test_nonzero_grads_counts_every_gradient_of_a_linear_model() -> None:
    p = profile_model(build("logreg", (16,), 4), (16,), 4, optimizer="sgd")
    assert p.nonzero_grads == p.params == 16 * 4 + 4  # random inputs: no gradient entry is exactly zero


def test_unknown_optimizer_is_a_config_error_with_a_suggestion() -> None:
    with pytest.raises(ConfigError, match=r"unknown optimizer 'adma' \(did you mean 'adam'\?\)"):
        profile_model(build("logreg", (4,), 2), (4,), 2, optimizer="adma")


class MatmulInForward(nn.Module):
    """A parameter used directly in forward (no child module) and data-dependent control flow."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.randn(10, 4))
        self.head = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if float(x.abs().sum()) < 0:  # needs real values: counted on a real copy, not on meta
            x = -x
        return self.head(x @ self.w)


def test_own_parameters_and_ops_of_a_container_get_their_own_row() -> None:
    p = profile_model(MatmulInForward(), (10,), 3)
    rows = {r.name: (r.params, r.macs) for r in p.layers}
    assert rows == {ROOT_ROW: (40, 40), "head": (15, 12)}
    assert p.macs == 52 and p.params == 55


# ------------------------------------------------------------------------------------------------------
# Library entry points


def test_input_shape_parsing() -> None:
    assert parse_input_shape("1x28x28") == (1, 28, 28)
    assert parse_input_shape("784") == (784,)
    assert parse_input_shape("3X32x32") == (3, 32, 32)
    for bad in ("1x28", "abc", "", "1x0x28", "3x-1x2", "1x2x3x4"):
        with pytest.raises(ConfigError, match="--input"):
            parse_input_shape(bad)


def test_profile_model_name_errors() -> None:
    with pytest.raises(ConfigError, match=r"unknown model 'resnet19' \(did you mean 'resnet18'\?\)"):
        profile_model_name("resnet19", (3, 32, 32))
    with pytest.raises(ConfigError, match=r"unknown key 'model.dropuot'.*did you mean 'dropout'"):
        profile_model_name("mlp", (784,), 10, {"dropuot": 0.5})
    with pytest.raises(ConfigError, match="needs image input"):
        profile_model_name("simple_cnn", (784,))


# ------------------------------------------------------------------------------------------------------
# The command


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["profile", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_json_for_a_model(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "simple_cnn", "--input", "1x28x28", "--optimizer", "adam", "--json")
    assert code == 0
    data = json.loads(out)
    assert set(data) >= FIGURE_KEYS
    assert (data["params"], data["macs"], data["flops"]) == (50_186, 3_869_824, 7_739_648)
    assert data["input_shape"] == [1, 28, 28] and data["optimizer"] == "adam" and data["model"] == "simple_cnn"
    assert data["layers"][0] == {
        "name": "features.0",
        "type": "Conv2d",
        "output_shape": [1, 32, 28, 28],
        "params": 320,
        "macs": 225_792,
        "trainable_params": 320,
    }


def test_cli_table_and_model_overrides(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "mlp", "--input", "784", "--classes", "10", "--set", "model.hidden=[512]")
    assert code == 0
    assert "0.weight" not in out and "Linear" in out and "total" in out
    assert f"{784 * 512 + 512 + 512 * 10 + 10:,}" in out  # 407,050 params in the footer


def test_cli_errors_exit_2_with_a_message(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "simple_cnn", "--input", "1x28")
    assert code == 2 and "--input '1x28' has 2 dimensions" in err
    code, _, err = run_cli(capsys, "simple_cnn")
    assert code == 2 and "needs --input" in err
    code, _, err = run_cli(capsys, "simpel_cnn", "--input", "1x28x28")
    assert code == 2 and "did you mean 'simple_cnn'" in err
    code, _, err = run_cli(capsys, "mlp", "--input", "784", "--set", "train.lr=0.1")
    assert code == 2 and "model.KEY=VALUE" in err
    code, _, err = run_cli(capsys, "simple_cnn", "--input", "1x28x28", "--classes", "0")
    assert code == 2 and "--classes must be at least 1" in err


STUDY = """
[study]
name = "profile_test"

[data]
name = "synthetic"
shape = [1, 12, 12]
num_classes = 3
train_size = 30
test_size = 9

[model]
name = "simple_cnn"
channels = [4, 8]

[train]
optimizer = "adam"
epochs = 1

[[variant]]
name = "small"

[[variant]]
name = "wide"
"model.channels" = [8, 16]

[[variant]]
name = "slow"
"train.lr" = 0.001
"""


def test_cli_study_profiles_every_variant_on_its_dataset(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    study = tmp_path / "study.toml"
    study.write_text(textwrap.dedent(STUDY))
    code, out, _ = run_cli(capsys, str(study), "--json", "--set", "data.num_classes=4")
    assert code == 0
    data = json.loads(out)
    assert list(data) == ["small", "wide", "slow"]
    small = data["small"]
    assert set(small) >= FIGURE_KEYS
    assert small["input_shape"] == [1, 12, 12] and small["num_classes"] == 4 and small["optimizer"] == "adam"
    # conv 1->4 and 4->8 (3x3), 12x12 -> pools -> 3x3, linear 72->4
    assert small["params"] == (9 * 4 + 4) + (4 * 9 * 8 + 8) + (72 * 4 + 4)
    assert data["wide"]["params"] > small["params"]
    assert {k: v for k, v in data["slow"].items()} == small  # same model, same seed: same figures

    code, out, _ = run_cli(capsys, str(study))
    assert code == 0
    assert "same model and figures as variant 'small'" in out and "variants" in out

    code, _, err = run_cli(capsys, str(study), "--input", "1x28x28")
    assert code == 2 and "--input does not apply to a study" in err


def test_profile_study_rejects_a_model_the_dataset_cannot_feed(tmp_path: Path) -> None:
    study = tmp_path / "s.toml"
    study.write_text(
        textwrap.dedent(STUDY)
        .replace('name = "simple_cnn"', 'name = "simplenet"')
        .replace("channels = [4, 8]\n", "")
        .split("[[variant]]")[0]
    )
    with pytest.raises(ConfigError, match="variant 'base': simplenet: a 12x12 input is too small"):
        profile_study(study)
