"""GPU-grade options on the CPU: precision, channels-last, torch.compile, the CUDA-graph mode's refusals, the
peak chosen by precision and an MFU that is never stated against the wrong peak."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from helpers import tiny_study

from trainlab.api import run
from trainlab.deploy import deploy_study
from trainlab.engine.events import EpochEnded
from trainlab.engine.figures import utilisation
from trainlab.engine.loop import execute_run
from trainlab.engine.precision import plan, precision_scope
from trainlab.engine.runner import SilentReporter
from trainlab.errors import ConfigError
from trainlab.measure import peak as peak_mod
from trainlab.store import Store
from trainlab.study import load_study

CPU = torch.device("cpu")
CNN = {"name": "simple_cnn", "channels": [4, 8]}
QUICK = {"mfu": False, "latency_repeats": 3, "latency_warmup": 1, "throughput_batch": 8, "infer_limit": 8,
         "throughput_time_s": 0.01}  # fmt: skip


def _run(train: dict, model: dict | None = None, measure: dict | None = None):
    spec = load_study(tiny_study(model=model or CNN, train=train, measure=measure or QUICK)).runs[0]
    return execute_run(spec)


def test_what_each_precision_means_on_the_cpu() -> None:
    assert (plan("default", CPU).matmul, plan("default", CPU).conv) == ("fp32", "fp32")
    tf32 = plan("tf32", CPU)
    assert tf32.matmul == "fp32" and "no TF32" in tf32.describe()  # said, not pretended
    bf16 = plan("bf16", CPU)
    assert bf16.autocast_dtype is torch.bfloat16 and not bf16.scaled and bf16.matmul == "bf16"
    fp16 = plan("fp16", CPU)
    assert fp16.scaled and isinstance(fp16.scaler(), torch.amp.GradScaler)
    with precision_scope("bf16", CPU) as p, p.autocast():
        assert torch.nn.Linear(4, 4)(torch.randn(2, 4)).dtype is torch.bfloat16


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_runs_train_and_record_their_numerics(precision: str) -> None:
    out = _run({"precision": precision, "epochs": 2})
    assert out.status == "done", out.error
    r = out.results
    assert r["precision"] == precision and r["matmul_precision"] == r["conv_precision"] == precision
    assert f"{precision} autocast" in r["precision_effective"]
    assert r["train_loss"] < 2.0 and 0.0 <= r["test_acc"] <= 1.0


def test_fp16_checkpoints_its_gradient_scaler(tmp_path: Path) -> None:
    result = run(tiny_study(model=CNN, train={"precision": "fp16"}, measure=QUICK), out=tmp_path, executor="inline")
    assert result.records[0].status == "done"
    ckpt = torch.load(tmp_path / "checkpoints" / f"{result.records[0].run_id}.pt", weights_only=True)
    assert ckpt["scaler"] and ckpt["scaler"]["scale"] > 0


def test_channels_last_trains_like_the_default_layout() -> None:
    base = _run({"deterministic": True})
    nhwc = _run({"deterministic": True, "channels_last": True})
    assert nhwc.status == "done" and nhwc.results["channels_last"] is True
    assert nhwc.results["train_loss"] == pytest.approx(base.results["train_loss"], rel=1e-3)


class StopAfterEpoch(SilentReporter):
    """Ctrl-C after the first epoch."""

    def event(self, spec, event):
        if isinstance(event, EpochEnded):
            raise KeyboardInterrupt


def test_compiled_run_resumes_saves_plain_weights_and_deploys(tmp_path: Path) -> None:
    study = tiny_study(model={"name": "mlp", "hidden": [16]}, train={"compile": "default", "epochs": 2},
                       measure=QUICK)  # fmt: skip
    with pytest.raises(KeyboardInterrupt):
        run(study, out=tmp_path, executor="inline", reporter=StopAfterEpoch(), write_report=False)
    result = run(study, out=tmp_path, executor="inline", write_report=False)
    rec = result.records[0]
    assert rec.status == "done", rec.error
    r = rec.results
    assert r["resumed_from_epoch"] == 1 and r["compile"] == "default" and r["infer_model"] == "compiled"
    assert r["compile_time_s"] > 0
    assert [e["epoch"] for e in Store(tmp_path / "trainlab.db").epochs(rec.run_id)] == [1, 2]
    weights = torch.load(tmp_path / "checkpoints" / f"{rec.run_id}.model.pt", weights_only=True)
    assert weights and not any(k.startswith("_orig_mod.") for k in weights)
    written = deploy_study(tmp_path, methods=["dynamic"])
    assert {d["method"]: d["status"] for d in written} == {"float": "done", "dynamic": "done"}


def test_cuda_graph_mode_is_skipped_without_a_gpu_and_refuses_what_it_cannot_capture() -> None:
    out = _run({"compile": "cuda-graph"})
    if not torch.cuda.is_available():
        assert out.status == "skipped" and "needs the run on a GPU" in out.error
    for train, words in (
        ({"compile": "cuda-graph", "precision": "fp16"}, "gradient scaler"),
        ({"compile": "cuda-graph", "optimizer": "adagrad"}, "adagrad"),
        ({"compile": "cuda-graph", "scheduler": "onecycle"}, "per-batch schedule"),
    ):
        with pytest.raises(ConfigError, match=words):
            load_study(tiny_study(train=train))
    load_study(tiny_study(train={"compile": "cuda-graph", "scheduler": "onecycle", "optimizer": "adamw"}))


def test_the_peak_is_taken_in_the_precision_and_mix_the_model_runs(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("TRAINLAB_CACHE", str(tmp_path))
    key = peak_mod._key
    cache = {key(CPU, "matmul", "bf16"): {"rounds": [2e9]}, key(CPU, "conv", "bf16"): {"rounds": [8e9]},
             key(CPU, "matmul", "fp32"): {"rounds": [1e11]}}  # fmt: skip
    (tmp_path / "peak_flops.json").write_text(json.dumps(cache))
    p = peak_mod.peak_flops(CPU, "bf16", "bf16", conv_share=0.75)
    # 75% of the FLOPs at 8 GFLOP/s and 25% at 2 GFLOP/s: 1 / (0.75/8 + 0.25/2) GFLOP/s
    assert p["peak_flops"] == pytest.approx(1e9 / (0.75 / 8 + 0.25 / 2))
    assert p["peak_precision"] == "matmul bf16, conv bf16" and "bf16" in str(p["peak_flops_key"])
    assert peak_mod.peak_flops(CPU, "fp32", "fp32")["peak_flops"] == 1e11  # a pure-matmul model: the matmul peak
    assert "datasheet_peak_flops" not in p  # no datasheet for a CPU


def test_datasheet_peaks_of_known_gpus(monkeypatch) -> None:
    gpu = torch.device("cuda")
    for name, precision, tflops in (
        ("NVIDIA H100 80GB HBM3", "tf32", 494.5),
        ("NVIDIA H100 PCIe", "bf16", 756.0),
        ("NVIDIA A100-SXM4-80GB", "fp32", 19.5),
        ("NVIDIA A10", "bf16", 125.0),
        ("Some Future GPU", "bf16", None),
    ):
        monkeypatch.setattr(peak_mod, "_device_name", lambda _d, n=name: n)
        assert peak_mod.datasheet_tflops(gpu, precision) == tflops


def test_an_mfu_above_one_is_not_stated() -> None:
    assert utilisation(5e9, 1e10) == {"mfu": 0.5}
    over = utilisation(7.18e13, 5.14e13)
    assert "mfu" not in over and over["mfu_unchecked"] > 1 and "does not describe" in over["mfu_note"]


def test_a_cpu_run_states_its_gpu_figures_as_not_measured() -> None:
    r = _run({})
    assert r.status == "done" and r.results["gpu_busy_share"] is None and r.results["compile"] == "none"
    assert r.results["infer_model"] == "eager" and r.results["compile_time_s"] is None
