"""The model zoo: reference parameter counts, torchvision names, input checks, parameter schemas, user models.

Reference counts (each also derived by hand below where it is short):
- MNIST SimpleCNN (conv 1->32, 32->64, 3x3 pad 1, two 2x2 pools, linear 3136->10): 50,186.
- ResNet-18, CIFAR stem, 10 classes: 11,173,962; ImageNet stem, 1000 classes: 11,689,512 (torchvision).
- AlexNet, torchvision layout, 1000 classes: 61,100,840.
- MLP 784-512-256-128-10: 567,434; MLP 3072-512-10: 1,578,506.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import torch
from pydantic import BaseModel
from torch import nn

from trainlab.config import ModelConfig
from trainlab.errors import ConfigError
from trainlab.measure.complexity import count_params
from trainlab.models import build_model, registry, validate_model_kwargs


def build(name: str, input_shape: tuple[int, ...], num_classes: int = 10, **kwargs) -> nn.Module:
    torch.manual_seed(0)
    return build_model(ModelConfig(name=name, **kwargs), input_shape, num_classes)


def n_params(model: nn.Module) -> int:
    return count_params(model)[0]


# ------------------------------------------------------------------------------------------------------
# Registry and parameter schemas


def test_registry_has_the_zoo() -> None:
    expected = {"logreg", "mlp", "simple_cnn", "simplenet", "simplenet_dropout", "alexnet", "resnet18"}
    assert expected <= set(registry())


@pytest.mark.parametrize("name", sorted(registry()))
def test_every_param_model_forbids_extra_keys_and_describes_each_field(name: str) -> None:
    params: type[BaseModel] = registry()[name].params
    assert params.model_config.get("extra") == "forbid"
    for field_name, info in params.model_fields.items():
        assert info.description, f"{name}.{field_name} has no description"
    with pytest.raises(ValueError, match=r"unknown key 'model.no_such_key'"):
        validate_model_kwargs(name, {"no_such_key": 1})


def test_unknown_model_name_suggests_the_closest() -> None:
    with pytest.raises(ValueError, match=r"did you mean 'resnet18'"):
        validate_model_kwargs("resnet19", {})


# ------------------------------------------------------------------------------------------------------
# Reference parameter counts


def test_mnist_simple_cnn_has_50186_params() -> None:
    model = build("simple_cnn", (1, 28, 28), channels=[32, 64], kernel_size=3)
    # conv 1*32*9+32, conv 32*64*9+64, linear 3136*10+10
    assert n_params(model) == (1 * 32 * 9 + 32) + (32 * 64 * 9 + 64) + (64 * 7 * 7 * 10 + 10) == 50_186


def test_mlp_reference_counts() -> None:
    assert n_params(build("mlp", (784,), hidden=[512, 256, 128])) == 567_434
    # 3072 = 3x32x32 flattened: 3072*512+512 + 512*10+10
    assert n_params(build("mlp", (3, 32, 32), hidden=[512])) == 3072 * 512 + 512 + 512 * 10 + 10 == 1_578_506


def test_resnet18_cifar_has_11173962_params() -> None:
    model = build("resnet18", (3, 32, 32), 10)
    assert n_params(model) == 11_173_962
    assert isinstance(model.maxpool, nn.Identity)
    assert model.conv1.kernel_size == (3, 3) and model.conv1.stride == (1, 1)


def test_resnet18_imagenet_stem_matches_torchvision_count() -> None:
    model = build("resnet18", (3, 224, 224), 1000, stem="imagenet")
    assert n_params(model) == 11_689_512
    assert model.conv1.kernel_size == (7, 7) and model.conv1.stride == (2, 2)
    assert isinstance(model.maxpool, nn.MaxPool2d)


def test_alexnet_torchvision_layout_has_61100840_params() -> None:
    model = build("alexnet", (3, 224, 224), 1000)  # no forward pass: counting needs none
    assert n_params(model) == 61_100_840


# ------------------------------------------------------------------------------------------------------
# Names compatible with torchvision

ALEXNET_KEYS = [
    f"{part}.{i}.{kind}"
    for part, idx in (("features", (0, 3, 6, 8, 10)), ("classifier", (1, 4, 6)))
    for i in idx
    for kind in ("weight", "bias")
]


def test_alexnet_state_dict_names_are_torchvision_names() -> None:
    model = build("alexnet", (1, 28, 28), 15)
    assert list(model.state_dict()) == ALEXNET_KEYS
    assert isinstance(model.avgpool, nn.AdaptiveAvgPool2d) and model.avgpool.output_size == (6, 6)
    assert model.classifier[6].out_features == 15 and model.classifier[1].in_features == 9216


def _resnet18_torchvision_keys() -> list[str]:
    bn = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
    keys = ["conv1.weight", *(f"bn1.{k}" for k in bn)]
    for layer in range(1, 5):
        for block in range(2):
            p = f"layer{layer}.{block}"
            keys += [f"{p}.conv1.weight", *(f"{p}.bn1.{k}" for k in bn), f"{p}.conv2.weight"]
            keys += [f"{p}.bn2.{k}" for k in bn]
            if layer > 1 and block == 0:
                keys += [f"{p}.downsample.0.weight", *(f"{p}.downsample.1.{k}" for k in bn)]
    return [*keys, "fc.weight", "fc.bias"]


def test_resnet18_state_dict_names_are_torchvision_names() -> None:
    model = build("resnet18", (3, 32, 32))
    assert list(model.state_dict()) == _resnet18_torchvision_keys()
    assert len(model.state_dict()) == 122


def test_resnet18_without_batch_norm_keeps_names_and_drops_only_norm_parameters() -> None:
    model = build("resnet18", (3, 32, 32), batch_norm=False)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    assert isinstance(model.bn1, nn.Identity) and isinstance(model.layer2[0].downsample[1], nn.Identity)
    keys = list(model.state_dict())
    assert keys == [
        k
        for k in _resnet18_torchvision_keys()
        if ".bn" not in k and not k.startswith("bn1") and "downsample.1" not in k
    ]
    # Batch norm holds 2 parameters per channel: stem 64, layer1 4x64, layer2 4x128 + 128 (shortcut), ...
    bn_params = 2 * (64 + 4 * 64 + 5 * 128 + 5 * 256 + 5 * 512)
    assert n_params(model) == 11_173_962 - bn_params
    out = model(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 10) and torch.isfinite(out).all()


def test_resnet18_forward_shapes_and_any_channel_count() -> None:
    assert build("resnet18", (3, 32, 32))(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    gray = build("resnet18", (1, 28, 28), 7, stem="imagenet")
    assert gray.conv1.in_channels == 1
    assert gray(torch.randn(2, 1, 28, 28)).shape == (2, 7)


def test_resnet18_zero_init_residual() -> None:
    model = build("resnet18", (3, 32, 32), zero_init_residual=True)
    assert all(int(torch.count_nonzero(b.bn2.weight.detach())) == 0 for b in (model.layer1[0], model.layer4[1]))


# ------------------------------------------------------------------------------------------------------
# simplenet


def test_simplenet_has_500_features_at_64x64() -> None:
    model = build("simplenet", (1, 64, 64), 10)
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(500, 100), (100, 10)]
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert [(m.in_channels, m.out_channels, m.kernel_size) for m in convs] == [(1, 10, (5, 5)), (10, 20, (5, 5))]
    pools = [m for m in model.modules() if isinstance(m, nn.MaxPool2d)]
    assert [(p.kernel_size, p.stride) for p in pools] == [(3, 3), (3, 3)]
    # 1*10*25+10 + 10*20*25+20 + 500*100+100 + 100*10+10
    assert n_params(model) == 260 + 5020 + 50100 + 1010
    assert model(torch.randn(2, 1, 64, 64)).shape == (2, 10)
    assert not any(isinstance(m, nn.Dropout | nn.BatchNorm2d) for m in model.modules())


def test_simplenet_takes_channels_and_size_from_the_dataset() -> None:
    model = build("simplenet", (3, 28, 28), 4)  # 28 -> 24 -> 8 -> 4 -> 1: 20 features
    assert model.features[0].in_channels == 3 and model.classifier[1].in_features == 20
    assert model(torch.randn(2, 3, 28, 28)).shape == (2, 4)


def test_simplenet_dropout_adds_dropout_before_the_classifier_and_optional_batch_norm() -> None:
    plain = build("simplenet_dropout", (1, 64, 64), dropout=0.3)
    kinds = [type(m).__name__ for m in plain.classifier]
    assert kinds == ["Flatten", "Dropout", "Linear", "ReLU", "Linear"] and plain.classifier[1].p == 0.3
    assert not any(isinstance(m, nn.BatchNorm2d) for m in plain.modules())
    bn = build("simplenet_dropout", (1, 64, 64), batch_norm=True)
    assert [type(m).__name__ for m in bn.features][:3] == ["Conv2d", "BatchNorm2d", "ReLU"]
    assert n_params(bn) == n_params(plain) + 2 * (10 + 20)
    assert bn(torch.randn(2, 1, 64, 64)).shape == (2, 10)


@pytest.mark.parametrize(
    ("name", "shape", "kwargs", "message"),
    [
        ("simplenet", (1, 24, 24), {}, "at least 25x25"),
        ("simplenet", (784,), {}, "needs image input"),
        ("simplenet_dropout", (1, 8, 8), {}, "at least 25x25"),
        ("alexnet", (64,), {}, "needs image input"),
        ("alexnet", (2, 32, 32), {}, "1-channel .* or 3-channel"),
        ("alexnet", (3, 32, 32), {"resize": None}, "at least 63x63"),
        ("resnet18", (784,), {}, "needs image input"),
        ("simple_cnn", (784,), {}, "needs image input"),
    ],
)
def test_a_model_that_cannot_take_the_dataset_says_why(name, shape, kwargs, message) -> None:
    with pytest.raises(ConfigError, match=message):
        build(name, shape, **kwargs)


# ------------------------------------------------------------------------------------------------------
# AlexNet input adaptation


def test_alexnet_adapts_grey_and_small_inputs_inside_forward() -> None:
    model = build("alexnet", (1, 28, 28), 15)
    adapted = model.adapt(torch.rand(2, 1, 28, 28))  # the parameter-free first module
    assert adapted.shape == (2, 3, 224, 224)
    assert torch.equal(adapted[:, 0], adapted[:, 2])  # grey repeated to three channels
    # A smaller resize keeps the forward test cheap; 63x63 is the smallest size the features accept.
    small = build("alexnet", (1, 28, 28), 15, resize=63, dropout=0.0)
    assert small(torch.rand(2, 1, 28, 28)).shape == (2, 15)
    native = build("alexnet", (3, 80, 80), 4, resize=None)
    assert native.adapt(torch.rand(1, 3, 80, 80)).shape == (1, 3, 80, 80)


# ------------------------------------------------------------------------------------------------------
# A user's own model


@pytest.fixture
def user_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    pkg = tmp_path / "zoo_user_pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "nets.py").write_text(
        textwrap.dedent(
            """
            import torch
            from torch import nn


            class TinyNet(nn.Module):
                def __init__(self, input_shape, num_classes, width=8, scale=1.0):
                    super().__init__()
                    features = 1
                    for d in input_shape:
                        features *= d
                    self.body = nn.Sequential(nn.Flatten(), nn.Linear(features, width), nn.ReLU())
                    self.head = nn.Linear(width, num_classes)
                    self.scale = scale

                def forward(self, x):
                    return self.head(self.body(x)) * self.scale


            NotAModule = 3
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    return "zoo_user_pkg.nets"


def test_user_model_by_import_path_gets_dataset_shape_and_keywords(user_package: str) -> None:
    cfg = ModelConfig(name=f"{user_package}:TinyNet", width=5, scale=2.0)
    model = build_model(cfg, (1, 4, 4), 3)
    assert n_params(model) == (16 * 5 + 5) + (5 * 3 + 3)
    assert model.scale == 2.0
    assert model(torch.randn(2, 1, 4, 4)).shape == (2, 3)


def test_user_model_errors_name_the_problem(user_package: str) -> None:
    with pytest.raises(ValueError, match=r"unknown key 'model.widht'.*did you mean 'width'"):
        ModelConfig(name=f"{user_package}:TinyNet", widht=5)
    with pytest.raises(ConfigError, match=r"not an nn.Module class"):
        ModelConfig(name=f"{user_package}:NotAModule")
    with pytest.raises(ConfigError, match=r"cannot import module"):
        ModelConfig(name="zoo_no_such_pkg.nets:TinyNet")
    with pytest.raises(ConfigError, match=r"package.module:ClassName"):
        validate_model_kwargs(":TinyNet", {})
