"""Augmentation does what it says; resident and DataLoader paths give the same, seeded, resumable batches;
normalisation statistics are cached; resize changes what the model sees."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from test_data_helpers import write_idx_set

from trainlab.config import AugmentConfig, DataConfig
from trainlab.data import load_dataset
from trainlab.data.augment import AugmentParams, BatchAugment, WindowStore, build_augment
from trainlab.data.base import Dataset, Split
from trainlab.data.dataloader import EpochDataLoader
from trainlab.data.loaders import ResidentLoader, make_loaders
from trainlab.errors import ConfigError

CPU = torch.device("cpu")


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRAINLAB_DATA", str(tmp_path / "home"))


def images(n: int = 64, c: int = 3, h: int = 9, w: int = 7, seed: int = 0) -> Dataset:
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (n, c, h, w), dtype=torch.uint8, generator=g)
    y = torch.arange(n) % 5
    return Dataset("t", Split(x, y), Split(x[:16], y[:16]), [str(i) for i in range(5)], mean=[0.5] * c, std=[0.25] * c)


def naive_crop(img: torch.Tensor, pad: int, dy: int, dx: int) -> torch.Tensor:
    """Reference: zero-pad every side, then slice the H x W window at (dy, dx)."""
    _, h, w = img.shape
    return F.pad(img, (pad, pad, pad, pad))[:, dy : dy + h, dx : dx + w]


# ------------------------------------------------------------------------------------------------------
# What each augmentation does


def test_flip_equals_mirror_of_original() -> None:
    x = torch.rand(200, 3, 5, 6)
    aug = BatchAugment(AugmentConfig(hflip=True), (3, 5, 6))
    p = aug.draw(len(x), torch.Generator().manual_seed(1))
    out = aug.apply(x, p)
    flipped = p.flip
    assert 60 < int(flipped.sum()) < 140  # about half
    assert torch.equal(out[flipped], x[flipped].flip(-1))  # a flipped image is the mirror of the original
    assert torch.equal(out[~flipped], x[~flipped])


def test_crops_stay_inside_the_padded_image() -> None:
    pad, h, w = 3, 8, 6
    x = torch.randint(1, 256, (300, 2, h, w), dtype=torch.uint8)  # no zero pixels: zeros mark padding
    aug = BatchAugment(AugmentConfig(crop_padding=pad), (2, h, w))
    p = aug.draw(len(x), torch.Generator().manual_seed(2))
    out = aug.apply(x, p)
    assert out.shape == x.shape and out.dtype == torch.uint8
    assert int(p.dy.min()) == 0 and int(p.dy.max()) == 2 * pad and int(p.dx.max()) == 2 * pad  # full range used
    for i in range(len(x)):
        dy, dx = int(p.dy[i]), int(p.dx[i])
        assert torch.equal(out[i], naive_crop(x[i], pad, dy, dx))
        # The window lies inside the padded image: what is not padding is a block of the original.
        sy, sx = dy - pad, dx - pad
        inside = (out[i] != 0).all(0)
        assert int(inside.sum()) == (h - abs(sy)) * (w - abs(sx))


def test_crop_then_flip_combined() -> None:
    pad = 2
    x = torch.randint(0, 256, (100, 3, 6, 5), dtype=torch.uint8)
    aug = BatchAugment(AugmentConfig(crop_padding=pad, hflip=True), (3, 6, 5))
    p = aug.draw(len(x), torch.Generator().manual_seed(3))
    out = aug.apply(x, p)
    for i in range(len(x)):
        ref = naive_crop(x[i], pad, int(p.dy[i]), int(p.dx[i]))
        assert torch.equal(out[i], ref.flip(-1) if p.flip[i] else ref)
        # The per-sample form (DataLoader path) agrees.
        assert torch.equal(aug.crop_flip_sample(x[i], int(p.dy[i]), int(p.dx[i]), bool(p.flip[i])), out[i])


def test_brightness_and_contrast_factors() -> None:
    x = torch.full((50, 3, 4, 4), 0.4)
    x[:, :, 0, 0] = 0.5  # some structure so contrast has something to scale
    b = BatchAugment(AugmentConfig(brightness=0.2), (3, 4, 4))
    p = b.draw(50, torch.Generator().manual_seed(4))
    out = b.apply(x.clone(), p)
    ratio = out[:, 0, 1, 1] / 0.4
    assert torch.allclose(ratio, p.brightness, atol=1e-6)
    assert float(p.brightness.min()) >= 0.8 and float(p.brightness.max()) <= 1.2
    c = BatchAugment(AugmentConfig(contrast=0.5), (3, 4, 4))
    p = c.draw(50, torch.Generator().manual_seed(5))
    out = c.apply(x.clone(), p)
    grey = lambda t: (t * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1).mean((1, 2))  # noqa: E731
    assert torch.allclose(grey(out), grey(x), atol=1e-5)  # contrast keeps the mean grey level
    spread = (out[:, 0, 0, 0] - out[:, 0, 1, 1]) / (x[:, 0, 0, 0] - x[:, 0, 1, 1])
    assert torch.allclose(spread, p.contrast, atol=1e-4)
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0


def test_augment_callable_interface_is_seeded() -> None:
    x = torch.rand(16, 3, 8, 8)
    aug = build_augment(AugmentConfig(crop_padding=2, hflip=True, brightness=0.1), images(h=8, w=8))
    a = aug(x, torch.Generator().manual_seed(7))
    b = aug(x, torch.Generator().manual_seed(7))
    c = aug(x, torch.Generator().manual_seed(8))
    assert a.shape == x.shape and torch.equal(a, b) and not torch.equal(a, c)


def test_augment_rejects_tables() -> None:
    ds = Dataset("t", Split(torch.rand(4, 3), torch.zeros(4)), Split(torch.rand(2, 3), torch.zeros(2)), ["a"])
    with pytest.raises(ConfigError, match="augmentations apply to images"):
        build_augment(AugmentConfig(hflip=True), ds)


# ------------------------------------------------------------------------------------------------------
# Loaders


def batches(loader, epoch: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    loader.set_epoch(epoch)
    return list(loader)


AUGS = [
    {},
    {"hflip": True},
    {"crop_padding": 2, "hflip": True},
    {"crop_padding": 1, "brightness": 0.3, "contrast": 0.3},
]


@pytest.mark.parametrize("aug", AUGS)
def test_resident_is_deterministic_per_seed_and_epoch(aug: dict) -> None:
    ds = images()
    cfg = DataConfig(batch_size=10, augment=aug)
    a, _ = make_loaders(cfg, ds, CPU, seed=3)
    b, _ = make_loaders(cfg, ds, CPU, seed=3)
    c, _ = make_loaders(cfg, ds, CPU, seed=4)
    e2 = batches(a, 2)
    assert len(a) == 7 and [len(y) for _, y in e2] == [10] * 6 + [4]
    assert all(torch.equal(p[0], q[0]) and torch.equal(p[1], q[1]) for p, q in zip(e2, batches(b, 2)))
    assert not torch.equal(torch.cat([x for x, _ in e2]), torch.cat([x for x, _ in batches(a, 3)]))
    assert not torch.equal(torch.cat([x for x, _ in e2]), torch.cat([x for x, _ in batches(c, 2)]))
    x0, y0 = e2[0]
    assert x0.dtype == torch.float32 and x0.shape == (10, 3, 9, 7) and y0.dtype == torch.int64
    # A resumed run builds a fresh loader and replays the epoch exactly.
    fresh, _ = make_loaders(cfg, ds, CPU, seed=3)
    assert all(torch.equal(p[0], q[0]) for p, q in zip(e2, batches(fresh, 2)))


def test_resident_batches_are_the_augmented_normalised_samples() -> None:
    ds = images(n=30)
    cfg = DataConfig(batch_size=8, augment={"crop_padding": 2, "hflip": True})
    train, _ = make_loaders(cfg, ds, CPU, seed=1)
    from trainlab.data.loaders import epoch_order, epoch_params

    order = epoch_order(30, 1, 5)
    p = epoch_params(build_augment(cfg.augment, ds), 30, 1, 5)
    got = torch.cat([x for x, _ in batches(train, 5)])
    for k in range(30):
        ref = naive_crop(ds.train.x[order[k]], 2, int(p.dy[k]), int(p.dx[k]))
        ref = (ref.flip(-1) if p.flip[k] else ref).float() / 255.0
        assert torch.allclose(got[k], (ref - 0.5) / 0.25, atol=1e-5)


@pytest.mark.parametrize("aug", AUGS)
def test_dataloader_gives_the_same_batches_as_resident(aug: dict) -> None:
    ds = images(n=50)
    res, _ = make_loaders(DataConfig(batch_size=8, augment=aug), ds, CPU, seed=9)
    dl, test = make_loaders(DataConfig(batch_size=8, augment=aug, loader="dataloader"), ds, CPU, seed=9)
    assert isinstance(dl, EpochDataLoader) and isinstance(test, ResidentLoader) and len(dl) == len(res) == 7
    for epoch in (1, 2):
        for (xa, ya), (xb, yb) in zip(batches(res, epoch), batches(dl, epoch)):
            assert torch.equal(ya, yb)
            assert torch.allclose(xa, xb, atol=1e-6)


def test_dataloader_with_persistent_worker_follows_epochs() -> None:
    ds = images(n=40)
    aug = {"crop_padding": 2, "hflip": True}
    res, _ = make_loaders(DataConfig(batch_size=16, augment=aug), ds, CPU, seed=2)
    cfg = DataConfig(
        batch_size=16, augment=aug, loader="dataloader", num_workers=1, persistent_workers=True, prefetch_factor=2
    )
    dl, _ = make_loaders(cfg, ds, CPU, seed=2)
    for epoch in (1, 2):
        got, want = batches(dl, epoch), batches(res, epoch)
        assert len(got) == 3
        assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(got, want))


def test_window_store_fallback_for_large_splits(monkeypatch: pytest.MonkeyPatch) -> None:
    import trainlab.data.loaders as loaders

    ds = images(n=33)
    cfg = DataConfig(batch_size=8, augment={"crop_padding": 3, "hflip": True})
    normal, _ = make_loaders(cfg, ds, CPU, seed=0)
    monkeypatch.setattr(loaders, "WINDOW_STORE_MAX_BYTES", 0)  # forces per-batch padding
    small, _ = make_loaders(cfg, ds, CPU, seed=0)
    assert small._windows is False
    assert all(torch.equal(a[0], b[0]) for a, b in zip(batches(normal, 1), batches(small, 1)))


def test_window_store_offsets_match_naive() -> None:
    x = torch.randint(0, 256, (5, 2, 4, 3), dtype=torch.uint8)
    store = WindowStore(x, 1, True)
    ids = torch.tensor([4, 0, 2])
    p = AugmentParams(dy=torch.tensor([0, 2, 1]), dx=torch.tensor([2, 0, 1]), flip=torch.tensor([True, False, True]))
    out = store.gather(ids, p)
    for k, i in enumerate(ids.tolist()):
        ref = naive_crop(x[i], 1, int(p.dy[k]), int(p.dx[k]))
        assert torch.equal(out[k], ref.flip(-1) if p.flip[k] else ref)


def test_test_loader_never_augmented_and_in_order() -> None:
    ds = images(n=20)
    _, test = make_loaders(DataConfig(test_batch_size=6, augment={"hflip": True, "crop_padding": 2}), ds, CPU, 0)
    xs = torch.cat([x for x, _ in test])
    assert torch.allclose(xs, (ds.test.x.float() / 255 - 0.5) / 0.25, atol=1e-6)
    assert torch.equal(test.convert(test.x[:3]), xs[:3])


def test_tables_are_not_modified_by_normalisation() -> None:
    x = torch.randn(10, 4)
    before = x.clone()
    ds = Dataset(
        "t", Split(x, torch.zeros(10, dtype=torch.long)), Split(x[:4], torch.zeros(4, dtype=torch.long)), ["a"]
    )
    ds.mean, ds.std = [1.0] * 4, [2.0] * 4
    train, test = make_loaders(DataConfig(batch_size=4), ds, CPU, 0)
    got = torch.cat([b for b, _ in batches(train, 1)] + [b for b, _ in test])
    assert torch.equal(x, before)  # normalising batches never writes into the stored split
    assert got.shape == (14, 4) and torch.allclose(torch.cat([b for b, _ in test]), (x[:4] - 1) / 2)


# ------------------------------------------------------------------------------------------------------
# Resize, normalisation statistics, config


def test_resize_changes_input_shape_for_train_and_test(tmp_path: Path) -> None:
    ds = load_dataset(DataConfig(name="digits", resize=16))
    assert ds.input_shape == (1, 16, 16) and ds.train.x.shape[2:] == (8, 8)  # stored small, resized on the device
    for kind in ("resident", "dataloader"):
        train, test = make_loaders(DataConfig(name="digits", loader=kind, resize=16), ds, CPU, 0)
        train.set_epoch(1)
        assert next(iter(train))[0].shape[1:] == (1, 16, 16)
        assert next(iter(test))[0].shape[1:] == (1, 16, 16)
        assert test.convert(test.x[:2]).shape == (2, 1, 16, 16)


def test_resize_of_tables_is_an_error(tmp_path: Path) -> None:
    csv = tmp_path / "t.csv"
    csv.write_text("a,b\n1,x\n2,y\n3,x\n4,y\n")
    with pytest.raises(ConfigError, match=r"data\.resize applies to images"):
        load_dataset(DataConfig(name="csv", root=str(csv), target="b", resize=4, test_fraction=0.5))


def test_size_fields_accept_one_number() -> None:
    assert DataConfig(resize=32).resize == [32, 32]
    assert DataConfig(resize=[24, 32]).resize == [24, 32]
    with pytest.raises(ValueError, match=r"give one size or \[H, W\]"):
        DataConfig(resize=[1, 2, 3])


def test_normalisation_stats_cached_beside_the_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import trainlab.data.normalize as norm

    write_idx_set(tmp_path / "m", n_train=30)
    calls = []
    real = norm.channel_stats
    monkeypatch.setattr(norm, "channel_stats", lambda x, chunk=None: calls.append(1) or real(x, chunk))
    a = load_dataset(DataConfig(name="mnist", root=str(tmp_path / "m"), normalize=True, download=False))
    cached = list((tmp_path / "m" / ".trainlab-cache").glob("stats-*.json"))
    assert len(calls) == 1 and len(cached) == 1
    assert json.loads(cached[0].read_text())["mean"] == a.mean
    b = load_dataset(DataConfig(name="mnist", root=str(tmp_path / "m"), normalize=True, download=False))
    assert len(calls) == 1 and b.mean == a.mean and b.std == a.std  # second run read the cache
    want_mean = float(a.train.x.double().mean() / 255)
    assert a.mean[0] == pytest.approx(want_mean, rel=1e-9)
    c = load_dataset(DataConfig(name="mnist", root=str(tmp_path / "m"), normalize=True, limit_train=10, download=False))
    assert len(calls) == 2 and c.mean != a.mean  # a different training split is a different key


def test_normalisation_cache_falls_back_when_folder_is_read_only(tmp_path: Path) -> None:
    root = tmp_path / "ro"
    write_idx_set(root, n_train=20)
    root.chmod(0o555)
    try:
        load_dataset(DataConfig(name="mnist", root=str(root), normalize=True, download=False))
        assert not (root / ".trainlab-cache").exists()
        assert list((tmp_path / "home" / "cache").glob("*/stats-*.json"))
    finally:
        root.chmod(0o755)


def test_channel_stats_chunks_agree() -> None:
    from trainlab.data.normalize import channel_stats

    x = torch.randint(0, 256, (37, 3, 5, 5), dtype=torch.uint8)
    m1, s1 = channel_stats(x, chunk=4)
    m2, s2 = channel_stats(x)
    ref = x.double().div(255).transpose(0, 1).reshape(3, -1)
    assert m1 == pytest.approx(ref.mean(1).tolist(), rel=1e-12) and m1 == pytest.approx(m2, rel=1e-12)
    assert s1 == pytest.approx(ref.std(1, unbiased=False).tolist(), rel=1e-9) and s1 == pytest.approx(s2, rel=1e-9)


# ------------------------------------------------------------------------------------------------------
# In the training loop


def test_run_with_dataloader_and_augmentation() -> None:
    from trainlab.engine.loop import execute_run
    from trainlab.study import load_study

    study = load_study(
        {
            "data": {
                "name": "synthetic",
                "shape": [3, 8, 8],
                "num_classes": 3,
                "train_size": 48,
                "test_size": 16,
                "batch_size": 16,
                "normalize": True,
                "loader": "dataloader",
                "resize": 10,
                "augment": {"crop_padding": 2, "hflip": True, "brightness": 0.1},
            },
            "model": {"name": "logreg"},
            "train": {"epochs": 2, "device": "cpu", "threads": 1},
            "measure": {"latency_repeats": 2, "latency_warmup": 1, "throughput_batch": 4, "infer_limit": 4},
        }
    )
    outcome = execute_run(study.runs[0])
    assert outcome.status == "done", outcome.error
    assert outcome.results["data_time_s"] > 0 and outcome.results["normalize_mean"] is not None
    assert len(outcome.results["normalize_mean"]) == 3
