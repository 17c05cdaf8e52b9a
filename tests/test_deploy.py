"""Deployment: int8 dynamic / static quantization (torchao PT2E) and ONNX, saved, reloaded and measured.

Small inputs and widths throughout; the int8 graphs are run eagerly (reference Q/DQ) except in the one test that
checks the torch.compile path. Tests needing an optional dependency skip with the reason when it is absent.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import pytest
import torch
from helpers import tiny_study
from torch import nn

from trainlab.api import deploy_command
from trainlab.config import DeployConfig, ModelConfig
from trainlab.deploy import METHODS, OrtModule, deploy_study, export_onnx, onnx_available
from trainlab.deploy import int8 as q
from trainlab.errors import ConfigError
from trainlab.models import build_model, registry
from trainlab.report.deployment import DeploymentRow, deployment_rows, deployments_csv, plot_deployment
from trainlab.store import Store
from trainlab.study import load_study

NO_AO = q.available()
NO_ONNX = onnx_available()
needs_ao = pytest.mark.skipif(NO_AO is not None, reason=NO_AO or "")
needs_onnx = pytest.mark.skipif(NO_ONNX is not None, reason=NO_ONNX or "")

# name -> (model keys, input shape (C, H, W)): the smallest each family accepts, narrow where it has a width key.
MODELS: dict[str, tuple[dict[str, Any], tuple[int, ...]]] = {
    "mlp": ({"hidden": [32, 16]}, (1, 8, 8)),
    "simple_cnn": ({"channels": [4, 8], "batch_norm": True}, (1, 12, 12)),
    "simplenet": ({}, (1, 28, 28)),  # needs at least 25x25
    "alexnet": ({"resize": None}, (3, 63, 63)),  # 63x63 is its smallest input; its head is narrowed below
    "resnet18": ({}, (3, 16, 16)),
}
# ONNX: onnxruntime's float32 kernels against PyTorch's. The deploy step fails a variant above
# tolerance x (1 + max |logit|); the same rule is checked here.
ONNX_TOLERANCE = 1e-4


def _model(name: str, seed: int = 0) -> tuple[nn.Module, tuple[int, ...]]:
    if name not in registry():
        pytest.skip(f"model '{name}' is not registered (yet)")
    kwargs, shape = MODELS[name]
    torch.manual_seed(seed)
    model = build_model(ModelConfig(name=name, **kwargs), shape, 10).eval()
    if name == "alexnet":
        # AlexNet has no width key: its 4096-wide head (58M of its 61M parameters) would make each test take
        # tens of seconds. Same layer types and graph, 64 wide.
        model.classifier[1] = nn.Linear(model.classifier[1].in_features, 64)
        model.classifier[4] = nn.Linear(64, 64)
        model.classifier[6] = nn.Linear(64, 10)
        model.eval()
    # Random batch-norm statistics, so that folding them into the convolutions is really exercised.
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
    return model, shape


def _batches(shape: tuple[int, ...], n: int, batch: int = 8, seed: int = 1) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn((batch, *shape), generator=g) for _ in range(n)]


def _close_to_float(out: torch.Tensor, ref: torch.Tensor, rel: float) -> None:
    # int8 error relative to the logits' scale (random weights give logits of any size).
    scale = float(ref.abs().max())
    diff = float((out - ref).abs().max())
    assert diff <= rel * scale + 1e-3, f"max |int8 - float| = {diff:.4g} with max |float| = {scale:.4g}"


# ------------------------------------------------------------------------------------------------------
# Every model family: static and dynamic int8, saved and reloaded (weights_only); ONNX within tolerance


@needs_ao
@pytest.mark.parametrize("method", ["static", "dynamic"])
@pytest.mark.parametrize("name", list(MODELS))
def test_int8_quantize_save_reload(name: str, method: str, tmp_path: Path) -> None:
    model, shape = _model(name)
    calib = _batches(shape, 2)
    x = _batches(shape, 1, seed=7)[0]
    qm = q.quantize(model, method, x, calib if method == "static" else ())
    assert qm.quantized_layers, f"{name} {method}: nothing quantized"
    with torch.no_grad():
        ref = model(x)
        out = qm.module(x)
    _close_to_float(out, ref, rel=0.15)

    path = tmp_path / f"{name}.{method}.pt"
    q.save_quantized(qm, path)
    state = torch.load(path, weights_only=True)  # plain tensors: loads without allowing any class
    int8 = [k for k, v in state["state_dict"].items() if v.dtype == torch.int8]
    assert len(int8) == len([n for n in qm.quantized_layers if "folded" not in n])
    if method == "static" or name in ("mlp", "simple_cnn"):  # reloading is the same code for both methods
        fresh, _ = _model(name, seed=123)  # other weights: the file must supply every number
        back = q.load_quantized(path, fresh, x)
        with torch.no_grad():
            assert torch.equal(back.module(x), out)
    if method == "dynamic":
        # Dynamic quantization takes Linear layers only: every conv stays float and is reported.
        assert all("(Linear)" in n for n in qm.quantized_layers)
        convs = [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
        assert len([n for n in qm.float_layers if "(Conv2d)" in n]) == len(convs)
    else:
        assert not [n for n in qm.float_layers if "(Conv2d)" in n or "(Linear)" in n]


@needs_onnx
@pytest.mark.parametrize("name", list(MODELS))
def test_onnx_matches_float(name: str, tmp_path: Path) -> None:
    model, shape = _model(name)
    path = tmp_path / f"{name}.onnx"
    export_onnx(model, _batches(shape, 1)[0], path)
    ort = OrtModule(path)
    for batch in (1, 5):  # the batch dimension is dynamic
        x = _batches(shape, 1, batch=batch, seed=batch)[0]
        with torch.no_grad():
            ref = model(x)
        out = ort(x)
        assert out.shape == ref.shape
        assert float((out - ref).abs().max()) <= ONNX_TOLERANCE * (1 + float(ref.abs().max()))


# ------------------------------------------------------------------------------------------------------
# Specific behaviour


@needs_ao
def test_int8_file_is_smaller_than_float(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = build_model(ModelConfig(name="mlp", hidden=[256]), (1, 16, 16), 10).eval()
    float_path = tmp_path / "float.pt"
    torch.save(model.state_dict(), float_path)
    shape = (1, 16, 16)
    qm = q.quantize(model, "static", _batches(shape, 1)[0], _batches(shape, 2))
    size = q.save_quantized(qm, tmp_path / "int8.pt")
    assert float_path.stat().st_size / size > 3.5  # int8 weights: 4x, less the scales, biases and the file's own
    from trainlab.measure.complexity import size_in_memory_mb

    assert size_in_memory_mb(qm.module) < size_in_memory_mb(model) / 3.5


@needs_ao
def test_compiled_int8_runs_the_quantized_graph() -> None:
    reason = q.compiler_available()
    if reason:
        pytest.skip(reason)
    model, shape = _model("simple_cnn")
    x = _batches(shape, 1, batch=4, seed=3)[0]
    qm = q.quantize(model, "static", x, _batches(shape, 2))
    compiled = q.CompiledInt8(qm.module)
    with torch.inference_mode():
        eager = qm.module(x)
        out = compiled(x)
        again = compiled(x)  # second call at that shape: the compiled code, no config patching
    # oneDNN's int8 kernels round differently from the float simulation of the reference graph: one step of
    # the output's quantization at most, in practice.
    _close_to_float(out, eager, rel=0.05)
    assert torch.equal(out, again)


class BranchyNet(nn.Module):
    """A model torch.export cannot capture: Python control flow on a tensor's value."""

    def __init__(self, input_shape: tuple[int, ...], num_classes: int) -> None:
        super().__init__()
        n = 1
        for d in input_shape:
            n *= d
        self.fc = nn.Linear(n, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1)
        if x.sum() > 0:  # data-dependent: export fails
            x = -x
        return self.fc(x)


@needs_ao
def test_unexportable_model_raises_a_reason() -> None:
    with pytest.raises(q.QuantizationError, match=r"torch\.export cannot capture"):
        q.quantize(BranchyNet((1, 4, 4), 3), "static", torch.randn(4, 1, 4, 4), [torch.randn(4, 1, 4, 4)])


@needs_ao
def test_load_rejects_another_architecture(tmp_path: Path) -> None:
    model, shape = _model("simple_cnn")
    x = _batches(shape, 1)[0]
    path = tmp_path / "m.pt"
    q.save_quantized(q.quantize(model, "static", x, [x]), path)
    other = build_model(ModelConfig(name="simple_cnn", channels=[4]), shape, 10)
    with pytest.raises(q.QuantizationError, match="different graph"):
        q.load_quantized(path, other, x)


def test_deploy_config_validates() -> None:
    study = load_study(tiny_study(deploy={"methods": ["static", "onnx"], "calibration_batches": 3}))
    assert study.config.deploy.methods == ["static", "onnx"]
    assert DeployConfig().methods == []
    with pytest.raises(ConfigError, match=r"deploy\.methods"):
        load_study(tiny_study(deploy={"methods": ["int4"]}))
    with pytest.raises(ConfigError, match=r"unknown key 'deploy\.calibration'"):
        load_study(tiny_study(deploy={"calibration": 3}))


# ------------------------------------------------------------------------------------------------------
# End to end: a study with [deploy], the store, rows, plot, command


FAST = {
    "latency_repeats": 5,
    "latency_warmup": 1,
    "throughput_batch": 8,
    "throughput_time_s": 0.02,
    "calibration_batches": 2,
    "compile": False,
    "threads": 1,
}


@needs_ao
@needs_onnx
def test_study_with_deploy_section(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from trainlab.api import run

    study = tiny_study(model={"name": "simple_cnn", "channels": [4, 8]}, deploy={"methods": list(METHODS), **FAST})
    out = tmp_path / "out"
    result = run(study, out=out, isolate=False, write_report=False)
    assert result.exit_code == 0
    store = Store(out / "trainlab.db")
    recs = {d.method: d for d in store.deployments()}
    assert set(recs) == {"float", *METHODS}
    assert all(r.status == "done" for r in recs.values()), {m: r.error for m, r in recs.items()}
    for method in ("dynamic", "static"):
        assert Path(recs[method].figures.artefact).is_file()
    assert recs["onnx"].figures.matches_float is True

    rows = deployment_rows(store)
    assert [r.method for r in rows] == ["float", *METHODS]
    base = rows[0]
    assert base.size_ratio == 1.0 and base.d_acc_points == 0.0
    static = next(r for r in rows if r.method == "static")
    assert static.size_ratio == pytest.approx(base.saved_kb / static.saved_kb)
    for key in ("latency_p50_ms", "latency_p90_ms", "latency_p99_ms", "throughput_ips", "size_mb", "test_acc"):
        assert getattr(static, key) is not None and getattr(static, key) >= 0
    # Eager reference int8 is slower than float by design: the note must say so when it is.
    if static.latency_speedup < 0.95:
        assert "slower than float" in static.note
    assert "simulated in float" in static.note
    dynamic = next(r for r in rows if r.method == "dynamic")
    assert "float: features.0 (Conv2d)" in dynamic.note

    png = plot_deployment(rows, tmp_path / "deploy.png")
    assert png is not None and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # The deployment table also lands in a CSV beside results.csv, one row per run x method, unrounded.
    from trainlab.report import build_report

    paths = build_report(out, formats=["csv"])
    table = list(csv.DictReader(paths.deployments_csv.open()))
    assert paths.deployments_csv == out / "deployments.csv" and len(table) == len(rows)
    assert [r["method"] for r in table] == ["float", *METHODS] and all(r["status"] == "done" for r in table)
    assert float(table[2]["size_ratio"]) == pytest.approx(static.size_ratio)

    # A re-run of the finished study skips training and the deployments already done.
    before = [(d.method, d.created_at) for d in store.deployments()]
    run(study, out=out, isolate=False, write_report=False)
    assert [(d.method, d.created_at) for d in store.deployments()] == before

    # The command re-measures the methods asked for and prints the table.
    capsys.readouterr()
    assert deploy_command(out, ["static"]) == 0
    text = capsys.readouterr().out
    assert "static" in text and "x smaller" in text
    assert (out / "deploy" / "deployment.md").is_file()
    # The float row was measured again, the dynamic one not: their timings are not compared, sizes still are.
    rows = {r.method: r for r in deployment_rows(store)}
    assert rows["static"].latency_speedup is not None
    assert rows["dynamic"].latency_speedup is None and rows["dynamic"].size_ratio is not None
    assert "earlier deployment" in rows["dynamic"].note


@needs_ao
def test_a_model_that_cannot_be_quantized_gets_its_reason_in_the_row(tmp_path: Path) -> None:
    from trainlab.api import run

    study = tiny_study(model={"name": "test_deploy:BranchyNet"}, deploy={"methods": ["static"], **FAST})
    out = tmp_path / "out"
    run(study, out=out, isolate=False, write_report=False)
    rows = {r.method: r for r in deployment_rows(Store(out / "trainlab.db"))}
    assert rows["float"].status == "done"
    assert rows["static"].status == "failed"
    assert "torch.export cannot capture" in rows["static"].note
    assert deploy_command(out, ["static"]) == 1


def test_missing_checkpoint_and_missing_store(tmp_path: Path) -> None:
    from trainlab.api import run
    from trainlab.errors import TrainlabError

    with pytest.raises(TrainlabError, match=r"no trainlab\.db"):
        deploy_study(tmp_path / "nowhere")
    out = tmp_path / "out"
    study = tiny_study(train={"checkpoint": False})
    run(study, out=out, isolate=False, write_report=False)
    written = deploy_study(out, DeployConfig(**FAST), ["static"])
    by_method = {w["method"]: w for w in written}
    assert by_method["float"]["status"] == "failed"
    assert "no trained model saved" in by_method["float"]["error"]
    assert by_method["static"]["status"] == "skipped"


def test_deployment_rows_are_typed_and_the_csv_keeps_its_columns(tmp_path: Path) -> None:
    """Rows from hand-written records (no model needed): ratios against float, a figure the record lacks
    reads as None, and deployments.csv keeps its columns, in order, with formula-like text escaped."""
    store = Store(tmp_path / "trainlab.db")
    store.add_deployment("r1", "float", {"saved_kb": 8.0, "latency_p50_ms": 1.0, "test_acc": 0.9, "session": "s"})
    store.add_deployment("r1", "dynamic", {"saved_kb": 2.0, "test_acc": 0.8, "session": "s"})  # no timings
    store.add_deployment("r1", "onnx", {}, "skipped", "=not a formula")
    rows = deployment_rows(store)
    assert all(isinstance(r, DeploymentRow) for r in rows) and [r.method for r in rows] == ["float", "dynamic", "onnx"]
    base, dyn, onnx = rows
    assert base.variant == "r1" and base.model is None  # the store holds no run r1: named by its id
    assert dyn.size_ratio == 4.0 and dyn.d_acc_points == pytest.approx(-10.0) and dyn.same_session
    assert dyn.latency_p50_ms is None and dyn.latency_speedup is None
    assert onnx.saved_kb is None and onnx.size_ratio is None and onnx.note == "=not a formula"

    table = list(csv.reader(io.StringIO(deployments_csv(store) or "")))
    assert table[0] == ["run_id", "variant", "model", "method", "status", "error", "saved_kb", "size_ratio",
                        "size_mb", "latency_p50_ms", "latency_p90_ms", "latency_p99_ms", "latency_speedup",
                        "throughput_ips", "throughput_speedup", "test_acc", "d_acc_points", "agreement",
                        "max_abs_diff", "note"]  # fmt: skip
    assert [r[3] for r in table[1:]] == ["float", "dynamic", "onnx"]
    assert table[2][7] == "4.0" and table[2][9] == "" and table[3][5] == "'=not a formula"


def test_report_shows_the_deployment_section(tmp_path):
    """A study with [deploy] gets a deployment table and plot in report.html and report.md."""
    from trainlab.api import run

    study = {
        "study": {"name": "dep_report"},
        "data": {"name": "synthetic", "shape": [1, 12, 12], "num_classes": 3, "train_size": 64, "test_size": 32,
                 "batch_size": 16},
        "model": {"name": "simple_cnn", "channels": [4, 8]},
        "train": {"epochs": 1, "threads": 1},
        "measure": {"latency_repeats": 5, "throughput_time_s": 0.02},
        "deploy": {"methods": ["dynamic", "onnx"], "latency_repeats": 5, "throughput_time_s": 0.02,
                   "throughput_batch": 16, "compile": False},
    }  # fmt: skip
    result = run(study, out=tmp_path, isolate=False)
    html = (tmp_path / "report.html").read_text()
    md = (tmp_path / "report.md").read_text()
    assert result.exit_code == 0
    assert 'id="deployment"' in html and "dynamic" in html and "onnx" in html
    assert "## Deployment" in md and "plots/deployment.png" in md
    assert (tmp_path / "plots" / "deployment.png").is_file()
