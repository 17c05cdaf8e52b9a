"""The clocks measure what docs/measurements.md says: checked against models and loaders of known cost."""

from __future__ import annotations

import pytest
import torch
from helpers import SleepyNet, hold, tiny_study

import trainlab.engine.loop as train_mod
from trainlab.engine.loop import execute_run
from trainlab.measure.clock import EpochClock
from trainlab.measure.latency import _percentile, batch1_pass, latency_percentiles
from trainlab.study import load_study

CPU = torch.device("cpu")
TOL = 0.05  # the bound: within 5% of the known time


class SleepyLoader:
    """Wraps a loader; every batch takes ``sleep_s`` seconds to arrive."""

    def __init__(self, inner, sleep_s: float) -> None:
        self.inner, self.sleep_s = inner, sleep_s
        self.held = 0.0  # seconds really spent producing batches

    def set_epoch(self, epoch: int) -> None:
        self.inner.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.inner)

    def __iter__(self):
        for batch in self.inner:
            self.held += hold(self.sleep_s)
            yield batch


def test_epoch_clock_splits_data_and_compute():
    clock = EpochClock(CPU)
    loader = SleepyLoader(range(10), 0.010)
    compute_held = 0.0
    clock.start()
    for _ in clock.batches(loader):
        clock.compute_start()
        compute_held += hold(0.005)
        clock.compute_end()
    t = clock.stop()
    assert t.steps == 10
    assert t.data_time_s == pytest.approx(loader.held, rel=TOL)
    assert t.compute_time_s == pytest.approx(compute_held, rel=TOL)
    assert t.epoch_time_s >= t.data_time_s + t.compute_time_s
    assert t.epoch_time_s == pytest.approx(t.data_time_s + t.compute_time_s, rel=TOL)


def _reset_sleepy() -> None:
    SleepyNet.held = {True: [], False: []}


def test_inference_figures_match_a_model_of_known_cost():
    _reset_sleepy()
    model = SleepyNet((4,), 2, sleep_ms=20.0)
    images = torch.randn(8, 4)
    model(images[:1])  # first-call set-up of the Linear layer is not what this test is about
    _reset_sleepy()
    inf = batch1_pass(model, images, CPU)
    held = SleepyNet.held[False]
    assert inf["infer_images"] == 8 and len(held) == 8
    assert inf["infer_total_s"] == pytest.approx(sum(held), rel=TOL)
    assert inf["infer_ms_per_image"] == pytest.approx(1000 * sum(held) / 8, rel=TOL)
    assert inf["infer_ms_per_image"] >= 20.0

    _reset_sleepy()
    lat = latency_percentiles(model, images, CPU, warmup=2, repeats=20)
    sampled = sorted(1000 * h for h in SleepyNet.held[False][2:])  # warm-up calls are excluded
    assert lat["latency_repeats"] == 20 and lat["latency_warmup"] == 2
    for q in (50, 90, 99):
        assert lat[f"latency_p{q}_ms"] == pytest.approx(_percentile(sampled, q), rel=TOL)
    assert lat["latency_p50_ms"] >= 20.0
    assert model.training  # measurement restores the mode it found


def test_percentile_interpolates():
    assert _percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert _percentile([5.0], 99) == 5.0
    assert _percentile(list(map(float, range(101))), 90) == 90.0


def test_training_loop_compute_time_of_a_sleeping_model():
    _reset_sleepy()
    study = load_study(
        tiny_study(
            model={"name": "helpers:SleepyNet", "sleep_ms": 25.0},
            train={"epochs": 1},
            data={"train_size": 64, "batch_size": 16},
            measure={"profile": False},
        )
    )
    out = execute_run(study.runs[0])
    assert out.status == "done", out.error
    trained = SleepyNet.held[True]
    assert len(trained) == 4  # 64 samples / batch 16
    # compute = forward (the known hold) + loss, backward and step of one Linear layer: a little more
    assert sum(trained) <= out.results["compute_time_s"] <= 1.5 * sum(trained)
    assert out.results["data_time_s"] < 0.05 * out.results["compute_time_s"]  # resident data: no waiting
    assert out.results["infer_ms_per_image"] >= 25.0
    assert out.results["latency_p50_ms"] >= 25.0  # exact check in the test above


def test_training_loop_data_time_of_a_sleeping_loader(monkeypatch):
    real = train_mod.make_loaders
    loaders = []

    def slow_loaders(*args, **kwargs):
        train, test = real(*args, **kwargs)
        loaders.append(SleepyLoader(train, 0.020))
        return loaders[-1], test

    monkeypatch.setattr(train_mod, "make_loaders", slow_loaders)
    study = load_study(tiny_study(train={"epochs": 2}, data={"train_size": 64, "batch_size": 16}))
    out = execute_run(study.runs[0])
    assert out.status == "done", out.error
    assert out.results["data_time_s"] == pytest.approx(loaders[0].held, rel=TOL)
    assert loaders[0].held >= 8 * 0.020  # 2 epochs x 4 batches
    # The epoch is exactly data + compute, and data holds all of the loader's time: none leaks into compute.
    epoch_sum = out.results["data_time_s"] + out.results["compute_time_s"]
    assert out.results["train_time_s"] == pytest.approx(epoch_sum, rel=TOL)
    assert out.results["compute_time_s"] <= out.results["train_time_s"] - (1 - TOL) * loaders[0].held
