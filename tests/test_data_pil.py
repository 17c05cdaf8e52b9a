"""``data.pipeline = "pil"``: torchvision-style per-sample PIL transforms give the tensor pipeline's samples, the
batches do not depend on the workers, and the wrong loader or tabular data are clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from trainlab.config import AugmentConfig, DataConfig
from trainlab.data.augment import BatchAugment
from trainlab.data.base import Dataset, Split
from trainlab.data.dataloader import EpochDataLoader, EpochSampler, SampleDataset, make_dataloader
from trainlab.data.loaders import make_loaders
from trainlab.data.pil import PilSampleDataset
from trainlab.errors import ConfigError
from trainlab.study import load_study

CPU = torch.device("cpu")
SHAPES = [(3, 32, 32), (1, 28, 28)]  # RGB (CIFAR) and grayscale (MNIST)
AUGS = [
    {},
    {"crop_padding": 4, "hflip": True},
    {"crop_padding": 3, "hflip": True, "brightness": 0.4, "contrast": 0.4},
    {"contrast": 0.5},
]


def split_of(shape: tuple[int, int, int], n: int = 24, seed: int = 0) -> Split:
    """Random uint8 images ``(n, *shape)``, labels 0..4."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (n, *shape), dtype=torch.uint8, generator=g)
    x[: n // 3] //= 4  # a few dark images, so that brightness and contrast jitter do not all saturate
    return Split(x, torch.arange(n) % 5)


def stats(c: int) -> tuple[list[float], list[float]]:
    return [0.3, 0.5, 0.7][:c], [0.2, 0.25, 0.3][:c]


def unnormalise(x: torch.Tensor, mean: list[float], std: list[float]) -> torch.Tensor:
    """Back to [0, 1] pixel units."""
    return x * torch.tensor(std).view(-1, 1, 1) + torch.tensor(mean).view(-1, 1, 1)


@pytest.mark.parametrize("shape", SHAPES, ids=["rgb", "gray"])
@pytest.mark.parametrize("aug", AUGS, ids=["none", "crop-flip", "all", "contrast"])
def test_pil_items_equal_tensor_items(shape: tuple[int, int, int], aug: dict) -> None:
    split = split_of(shape)
    mean, std = stats(shape[0])
    augment = BatchAugment(AugmentConfig(**aug), shape) if aug else None
    keys = list(EpochSampler(len(split), seed=5, shuffle=True, augment=augment))
    tensor_ds = SampleDataset(split, mean, std, augment)
    pil_ds = PilSampleDataset(split, mean, std, augment)
    jitter = "brightness" in aug or "contrast" in aug
    for key in keys:
        (xa, ya), (xb, yb) = tensor_ds[key], pil_ds[key]
        assert xb.dtype == torch.float32 and xb.shape == shape and torch.equal(ya, yb)
        a, b = unnormalise(xa, mean, std), unnormalise(xb, mean, std)
        if jitter:  # the same float32 definition in numpy: equal up to rounding (far inside 1/255)
            assert (a - b).abs().max() <= 1e-5
        else:  # crops and flips move whole pixels: exactly the same 8-bit values
            assert torch.equal((a * 255).round(), (b * 255).round())
            assert torch.allclose(xa, xb, atol=1e-5)


def test_pil_crop_pads_with_zeros_and_identity_offset_keeps_the_image() -> None:
    split = Split(torch.randint(1, 256, (2, 3, 8, 6), dtype=torch.uint8), torch.zeros(2, dtype=torch.long))
    aug = BatchAugment(AugmentConfig(crop_padding=2, hflip=True), (3, 8, 6))
    ds = PilSampleDataset(split, None, None, aug)
    assert torch.equal(ds[(0, 2, 2, False, None, None)][0], split.x[0].float() / 255)  # dy = dx = p: identity
    x = ds[(1, 0, 4, True, None, None)][0]  # shifted up 2 and left... then mirrored
    ref = torch.zeros(3, 8, 6)
    ref[:, 2:, :4] = split.x[1, :, :6, 2:].float() / 255  # output (i, j) = input (i + dy - p, j + dx - p)
    assert torch.equal(x, ref.flip(-1))


def test_float_images_are_stored_as_8_bit_once() -> None:
    split = split_of((3, 8, 8), n=4)
    as_float = Split(split.x.float() / 255, split.y)
    a, b = PilSampleDataset(split, None, None), PilSampleDataset(as_float, None, None)
    assert b.images.dtype.name == "uint8" and b.images.shape == (4, 8, 8, 3) and b.images.flags.c_contiguous
    assert all(torch.equal(a[i][0], b[i][0]) for i in range(4))
    with pytest.raises(ConfigError, match=r"data\.pipeline.*\[0, 1\]"):
        PilSampleDataset(Split(as_float.x * 2, split.y), None, None)


def test_resize_as_the_tensor_pipeline() -> None:
    split = split_of((3, 8, 8), n=4)
    a = SampleDataset(split, [0.5] * 3, [0.25] * 3, resize=(12, 12))
    b = PilSampleDataset(split, [0.5] * 3, [0.25] * 3, resize=(12, 12))
    assert b[0][0].shape == (3, 12, 12) and torch.allclose(a[0][0], b[0][0], atol=1e-5)


def batches(loader: EpochDataLoader, epoch: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    loader.set_epoch(epoch)
    return list(loader)


def test_workers_do_not_change_the_batches() -> None:
    split = split_of((3, 32, 32), n=40)
    mean, std = stats(3)
    aug_cfg = {"crop_padding": 4, "hflip": True, "brightness": 0.2}
    aug = BatchAugment(AugmentConfig(**aug_cfg), (3, 32, 32))

    def loader(pipeline: str, workers: int) -> EpochDataLoader:
        cfg = DataConfig(batch_size=16, loader="dataloader", pipeline=pipeline, num_workers=workers, augment=aug_cfg)
        return make_dataloader(cfg, split, train=True, seed=3, mean=mean, std=std, augment=aug)

    serial, parallel, tensor = loader("pil", 0), loader("pil", 2), loader("tensor", 0)
    assert isinstance(serial.loader.dataset, PilSampleDataset) and isinstance(tensor.loader.dataset, SampleDataset)
    for epoch in (1, 2):
        got, want, ref = batches(parallel, epoch), batches(serial, epoch), batches(tensor, epoch)
        assert [len(y) for _, y in got] == [16, 16, 8]
        assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(got, want))
        assert all(torch.equal(a[1], b[1]) and torch.allclose(a[0], b[0], atol=1e-5) for a, b in zip(got, ref))
    assert not torch.equal(batches(serial, 1)[0][0], batches(serial, 2)[0][0])  # a new epoch, new draws


def test_test_split_is_served_in_order_without_augmentation() -> None:
    split = split_of((1, 28, 28), n=10)
    cfg = DataConfig(test_batch_size=4, loader="dataloader", pipeline="pil", augment={"hflip": True})
    aug = BatchAugment(cfg.augment, (1, 28, 28))
    test = make_dataloader(cfg, split, train=False, seed=0, mean=None, std=None, augment=aug)
    assert torch.equal(torch.cat([x for x, _ in batches(test, 1)]), split.x.float() / 255)


def test_make_loaders_picks_the_pil_dataset() -> None:
    split = split_of((3, 32, 32), n=12)
    ds = Dataset("t", split, split, [str(i) for i in range(5)], mean=[0.5] * 3, std=[0.25] * 3)
    train, _ = make_loaders(DataConfig(batch_size=4, loader="dataloader", pipeline="pil"), ds, CPU, seed=0)
    assert isinstance(train, EpochDataLoader) and isinstance(train.loader.dataset, PilSampleDataset)
    assert next(iter(train))[0].shape == (4, 3, 32, 32)


def test_pil_with_the_resident_loader_is_a_config_error(tmp_path: Path) -> None:
    study = tmp_path / "study.toml"
    study.write_text('[study]\nname = "x"\n\n[data]\npipeline = "pil"\n')
    for source in (study, {"data": {"pipeline": "pil", "loader": "resident"}}):
        with pytest.raises(ConfigError) as exc:
            load_study(source)
        msg = str(exc.value)
        assert "data.pipeline = 'pil'" in msg and "needs data.loader = 'dataloader'" in msg
        assert "'tensor'" in msg  # what is allowed instead
    with pytest.raises(ConfigError, match=r"data\.pipeline.*'tensor' or 'pil'"):
        load_study({"data": {"loader": "dataloader", "pipeline": "torchvision"}})
    cfg = load_study({"data": {"loader": "dataloader", "pipeline": "pil"}}).runs[0].config.data
    assert cfg.pipeline == "pil"
    # The default is not serialised for run ids, so every existing run id stays as it was.
    assert "pipeline" not in DataConfig(loader="dataloader").model_dump(exclude_defaults=True)


def test_pil_with_tabular_data_is_a_clear_error() -> None:
    x = torch.randn(8, 5)
    ds = Dataset("t", Split(x, torch.zeros(8, dtype=torch.long)), Split(x[:4], torch.zeros(4, dtype=torch.long)), ["a"])
    with pytest.raises(ConfigError, match=r"data\.pipeline = 'pil' decodes each sample as an image.*\(5,\)"):
        make_loaders(DataConfig(loader="dataloader", pipeline="pil"), ds, CPU, seed=0)
