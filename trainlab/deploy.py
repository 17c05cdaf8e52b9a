"""Deployment study: each trained float model against its int8 and ONNX variants (``trainlab deploy OUT``).

For every finished run of a study whose trained weights were saved (``<out>/checkpoints/<run_id>.model.pt``):
1. rebuild the float model from the run's config, load its weights, load the run's dataset;
2. measure the float model (the baseline, measured here, in the same process and conditions as the variants);
3. for each method asked for, produce the variant, save it under ``<out>/deploy/``, reload it from that file
   and measure the reloaded one:
   - ``dynamic``: int8 Linear weights, activation range per call (:mod:`trainlab.quantize`);
   - ``static``: int8 weights and activations, ranges calibrated on ``calibration_batches`` training batches;
   - ``onnx``: ``torch.onnx.export`` (dynamo exporter) and onnxruntime's CPU execution provider.
4. record one row per (run, method) in the store's ``deployments`` table; a variant that cannot be made gets
   its reason in its row and the others go on.

Figures of every variant (see docs/deploy.md and docs/measurements.md):
- ``saved_kb``: bytes of the file the variant is saved as / 2^10 (float: the saved state_dict; int8: the saved
  int8 tensors, see trainlab.quantize; onnx: the .onnx file);
- ``size_mb``: bytes of the tensors the variant holds in memory / 2^20 (float/int8: parameters and buffers;
  onnx: the graph's initializers);
- ``latency_p50_ms/p90/p99``: batch-1 forward after warm-up, ``latency_repeats`` calls;
- ``throughput_ips``: images/s at batch ``throughput_batch``;
- ``test_acc``: accuracy on the test split (batches of ``throughput_batch``, the remainder one by one, so a
  compiled int8 model is compiled for two shapes only); ``agreement``: fraction of test samples whose predicted
  class equals the float model's; ``max_abs_diff``: largest |logit - float logit| over the test samples.
Ratios against the float row: ``size_ratio`` (float saved / variant saved: "x smaller"), ``latency_speedup``
(float p50 / variant p50: above 1 is faster), ``throughput_speedup``; ``d_acc_points``: accuracy difference in
percentage points. A variant slower than float says so in its ``note``.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import math
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from trainlab.config import DataConfig, DeployConfig, ModelConfig
from trainlab.errors import TrainlabError
from trainlab.store import Store

METHODS = ("dynamic", "static", "onnx")
BASELINE = "float"
CPU = torch.device("cpu")

Progress = Callable[[str], None]


# ------------------------------------------------------------------------------------------------------
# Inputs of one run


class DeployInputs:
    """The trained float model of a run and the data it is measured on (all on the CPU)."""

    def __init__(self, record: dict[str, Any], out_dir: Path, cfg: DeployConfig, dataset: Any = None) -> None:
        from trainlab.data import load_dataset
        from trainlab.data.loaders import make_loaders
        from trainlab.models import build_model

        config = record["config"]
        self.run_id: str = record["run_id"]
        self.data_cfg = DataConfig.model_validate(config["data"])
        self.model_cfg = ModelConfig.model_validate(config["model"])
        self.checkpoint = out_dir / "checkpoints" / f"{self.run_id}.model.pt"
        if not self.checkpoint.is_file():
            raise TrainlabError(
                f"no trained model saved for run {self.run_id} ({self.checkpoint} is missing; runs save it when"
                " train.checkpoint = true)"
            )
        ds = dataset if dataset is not None else load_dataset(self.data_cfg)
        self.task = ds.task
        self.input_shape = tuple(ds.input_shape)
        self.num_classes = ds.num_classes
        seed = int(config.get("train", {}).get("seed", 0))
        train_loader, test_loader = make_loaders(self.data_cfg, ds, CPU, seed)

        # Test samples as the model takes them (normalised, resized): (N, ...) float32 and (N,) targets.
        xs, ys, n = [], [], 0
        for xb, yb in test_loader:
            xs.append(xb.cpu())
            ys.append(yb.cpu())
            n += len(xb)
            if cfg.eval_limit is not None and n >= cfg.eval_limit:
                break
        self.test_x = torch.cat(xs)[: cfg.eval_limit]
        self.test_y = torch.cat(ys)[: cfg.eval_limit]

        # Calibration: the first training batches of epoch 1's order (the run's loader, seeded as in training).
        if hasattr(train_loader, "set_epoch"):
            train_loader.set_epoch(1)
        self.calibration: list[torch.Tensor] = []
        for xb, _ in train_loader:
            self.calibration.append(xb.cpu())
            if len(self.calibration) >= cfg.calibration_batches:
                break
        self.example = (
            self.test_x[:2] if len(self.test_x) >= 2 else self.test_x.repeat(2, *[1] * (self.test_x.dim() - 1))
        )

        self.build = lambda: build_model(self.model_cfg, self.input_shape, self.num_classes)
        self.model = self.build()
        state = torch.load(self.checkpoint, map_location="cpu", weights_only=True)
        self.model.load_state_dict(state)
        self.model.eval()


# ------------------------------------------------------------------------------------------------------
# Measuring any variant


def _forward_all(model: nn.Module, x: torch.Tensor, batch: int) -> torch.Tensor:
    """Logits of every sample of ``x``: full batches of ``batch``, then the remainder one sample at a time."""
    outs = []
    full = len(x) - len(x) % batch
    with torch.inference_mode():
        for start in range(0, full, batch):
            outs.append(model(x[start : start + batch]).float())
        for i in range(full, len(x)):
            outs.append(model(x[i : i + 1]).float())
    return torch.cat(outs)


def measure(
    model: nn.Module, inputs: DeployInputs, cfg: DeployConfig, reference: torch.Tensor | None = None
) -> tuple[dict[str, Any], torch.Tensor]:
    """Accuracy, latency and throughput of ``model`` (any callable nn.Module); also its test logits.

    ``reference``: the float model's test logits, for ``agreement`` and ``max_abs_diff``.
    """
    from trainlab.measure.latency import latency_percentiles, throughput

    batch = min(cfg.throughput_batch, max(len(inputs.test_x), 1))
    figures: dict[str, Any] = {}
    # First call at each shape the model will see: compiles a compiled model; timed and reported, never sampled.
    t0 = time.perf_counter()
    with torch.inference_mode():
        model(inputs.test_x[:1])
        model(inputs.test_x[:batch])
    figures["first_calls_s"] = time.perf_counter() - t0

    logits = _forward_all(model, inputs.test_x, batch)
    y = inputs.test_y
    if inputs.task == "classification":
        figures["test_acc"] = float((logits.argmax(1) == y).float().mean())
        figures["test_loss"] = float(nn.functional.cross_entropy(logits, y))
    else:
        figures["test_mse"] = float(nn.functional.mse_loss(logits.reshape(y.shape), y.float()))
    if reference is not None:
        figures["max_abs_diff"] = float((logits - reference).abs().max())
        if inputs.task == "classification":
            figures["agreement"] = float((logits.argmax(1) == reference.argmax(1)).float().mean())
    figures["test_samples"] = len(y)

    figures.update(latency_percentiles(model, inputs.test_x, CPU, cfg.latency_warmup, cfg.latency_repeats))
    tiled = inputs.test_x[: cfg.throughput_batch]
    figures.update(throughput(model, tiled, CPU, cfg.throughput_batch, min_time_s=cfg.throughput_time_s))
    figures["threads"] = torch.get_num_threads()
    return figures, logits


# ------------------------------------------------------------------------------------------------------
# The variants


def _int8_variant(method: str, inputs: DeployInputs, cfg: DeployConfig, path: Path) -> tuple[nn.Module, dict[str, Any]]:
    """Quantize, save, reload from the file, and (``cfg.compile``) compile the reloaded model."""
    from trainlab import quantize as q
    from trainlab.measure.complexity import size_in_memory_mb

    t0 = time.perf_counter()
    qm = q.quantize(inputs.model, method, inputs.example, inputs.calibration if method == "static" else ())
    figures: dict[str, Any] = {"prepare_s": time.perf_counter() - t0}
    nbytes = q.save_quantized(qm, path)
    loaded = q.load_quantized(path, inputs.build(), inputs.example)
    figures.update(
        saved_kb=nbytes / 1024.0,
        size_mb=size_in_memory_mb(loaded.module),
        artefact=str(path),
        reloaded=True,
        quantized_layers=qm.quantized_layers,
        float_layers=qm.float_layers,
        backend=f"torchao {q.torchao_version()} PT2E, X86InductorQuantizer",
        calibration_batches=len(inputs.calibration) if method == "static" else 0,
    )
    notes = []
    if not qm.quantized_layers:
        notes.append(f"{method} quantization found no layer it can quantize: the model stays float")
    model: nn.Module = q.Int8Module(loaded.module)
    compiled = False
    if cfg.compile:
        reason = q.compiler_available()
        if reason is None:
            candidate = q.CompiledInt8(loaded.module)
            try:
                t0 = time.perf_counter()
                with torch.inference_mode():
                    candidate(inputs.test_x[:1])  # compiles for batch 1 (the other shape: in measure's first calls)
                figures["compile_s"] = time.perf_counter() - t0
                model, compiled = candidate, True
            except Exception as exc:
                notes.append(f"torch.compile failed ({q._first_line(exc)}): measured the eager reference graph")
        else:
            notes.append(reason + ": measured the eager reference graph")
    figures["compiled"] = compiled
    figures["runtime"] = (
        "torch.compile (inductor, oneDNN int8 kernels)" if compiled else "eager reference graph (Q/DQ in float)"
    )
    if not compiled:
        notes.append("int8 numerics simulated in float: expect it slower than float, not faster")
    figures["notes"] = notes
    return model, figures


class OrtModule(nn.Module):
    """An onnxruntime session as an nn.Module: torch tensor in, torch tensor out (the copies are timed too)."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()  # same thread budget as the torch variants
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.session.run(None, {self.input_name: x.detach().cpu().contiguous().numpy()})[0]
        return torch.from_numpy(out)


def onnx_available() -> str | None:
    """None when ONNX export and onnxruntime can run here, else what is missing."""
    missing = []
    for module in ("onnx", "onnxruntime", "onnxscript"):
        try:
            __import__(module)
        except ImportError:
            missing.append(module)
    if missing:
        return f"ONNX needs {', '.join(missing)} (pip install 'trainlab[deploy]' with torch pinned)"
    return None


def export_onnx(model: nn.Module, example: torch.Tensor, path: Path) -> None:
    """``torch.onnx.export`` (dynamo exporter) with a dynamic batch dimension, to one self-contained file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if len(example) < 2:
        example = example.repeat((2,) + (1,) * (example.dim() - 1))
    quiet = [logging.getLogger(n) for n in ("torch.onnx", "torch.onnx._internal.exporter._registration")]
    levels = [lg.level for lg in quiet]
    for lg in quiet:
        lg.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(UserWarning), _no_warnings():
            torch.onnx.export(
                model.eval(),
                (example,),
                str(path),
                dynamo=True,
                dynamic_shapes=({0: torch.export.Dim("batch", min=1)},),
                input_names=["input"],
                output_names=["logits"],
                external_data=False,
                verbose=False,
            )
    finally:
        for lg, level in zip(quiet, levels):
            lg.setLevel(level)


@contextlib.contextmanager
def _no_warnings() -> Any:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def onnx_initializer_mb(path: Path) -> float:
    """Bytes of the ONNX graph's initializers (its weights) / 2^20."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    return sum(numpy_helper.to_array(t).nbytes for t in graph.initializer) / 2**20


def _onnx_variant(inputs: DeployInputs, cfg: DeployConfig, path: Path) -> tuple[nn.Module, dict[str, Any]]:
    import onnxruntime as ort

    t0 = time.perf_counter()
    try:
        export_onnx(inputs.model, inputs.example, path)
    except Exception as exc:
        raise TrainlabError(f"ONNX export failed: {_first_line(exc)}") from exc
    figures: dict[str, Any] = {
        "prepare_s": time.perf_counter() - t0,
        "saved_kb": path.stat().st_size / 1024.0,
        "size_mb": onnx_initializer_mb(path),
        "artefact": str(path),
        "reloaded": True,
        "backend": f"onnxruntime {ort.__version__} CPUExecutionProvider",
        "runtime": "onnxruntime (torch -> numpy -> torch copies included in the timings)",
        "quantized_layers": [],
        "float_layers": [],
        "tolerance": cfg.onnx_tolerance,
        "notes": [],
    }
    return OrtModule(path), figures


# ------------------------------------------------------------------------------------------------------
# One run, a whole study


def deploy_run(
    record: dict[str, Any],
    out_dir: Path,
    cfg: DeployConfig,
    methods: list[str],
    store: Store,
    dataset: Any = None,
    progress: Progress | None = None,
) -> list[dict[str, Any]]:
    """Measure the float model of one run and each of its ``methods`` variants; store and return the records.

    Every record of this call carries the same ``session`` stamp: timings are compared with the float row of
    the same session only (a variant measured earlier, under other load, is not timed against a new baseline).
    """
    say = progress or (lambda _m: None)
    run_id = record["run_id"]
    written: list[dict[str, Any]] = []
    session = f"{time.time_ns():x}"

    def put(method: str, figures: dict[str, Any], status: str, error: str | None = None) -> None:
        figures = {**figures, "session": session}
        store.add_deployment(run_id, method, figures, status, error)
        written.append({"run_id": run_id, "method": method, "status": status, "figures": figures, "error": error})

    say(f"{record.get('variant', run_id)}: float baseline")
    try:
        inputs = DeployInputs(record, out_dir, cfg, dataset)
        from trainlab.measure.complexity import size_in_memory_mb

        base, reference = measure(inputs.model, inputs, cfg)
        base.update(
            saved_kb=inputs.checkpoint.stat().st_size / 1024.0,
            size_mb=size_in_memory_mb(inputs.model),
            artefact=str(inputs.checkpoint),
            runtime="eager PyTorch (float32)",
            backend=f"torch {torch.__version__}",
            notes=[],
        )
    except Exception as exc:
        error = str(exc) if isinstance(exc, TrainlabError) else _first_line(exc)
        put(BASELINE, {"detail": traceback.format_exc(limit=5)}, "failed", error)
        for method in methods:
            put(method, {}, "skipped", f"the float model could not be measured: {error}")
        return written
    put(BASELINE, base, "done")

    deploy_dir = out_dir / "deploy"
    deploy_dir.mkdir(parents=True, exist_ok=True)
    for method in methods:
        say(f"{record.get('variant', run_id)}: {method}")
        if method in ("dynamic", "static"):
            from trainlab.quantize import available

            why = available()
        else:
            why = onnx_available()
        if why is not None:
            put(method, {}, "skipped", why)
            continue
        try:
            if method == "onnx":
                model, figures = _onnx_variant(inputs, cfg, deploy_dir / f"{run_id}.onnx")
            else:
                model, figures = _int8_variant(method, inputs, cfg, deploy_dir / f"{run_id}.{method}.pt")
            measured, _ = measure(model, inputs, cfg, reference)
            figures.update(measured)
        except Exception as exc:
            error = str(exc) if isinstance(exc, TrainlabError) else _first_line(exc)
            put(method, {"detail": traceback.format_exc(limit=5)}, "failed", f"{method}: {error}")
            continue
        status, error = "done", None
        if method == "onnx":
            diff, scale = figures["max_abs_diff"], float(reference.abs().max())
            figures["matches_float"] = diff <= cfg.onnx_tolerance * (1.0 + scale)
            if not figures["matches_float"]:
                status = "failed"
                error = (
                    f"onnx: onnxruntime's logits differ from the float model's by {diff:.3g}, more than the"
                    f" tolerance {cfg.onnx_tolerance:g} x (1 + max |logit| {scale:.3g})"
                )
        put(method, figures, status, error)
    return written


def _data_key(data: dict[str, Any]) -> str:
    # The runner keys its preflight datasets by the data section's JSON dump (sorted keys).
    return json.dumps(DataConfig.model_validate(data).model_dump(mode="json"), sort_keys=True)


def deploy_study(
    out_dir: str | Path,
    cfg: DeployConfig | None = None,
    methods: list[str] | None = None,
    *,
    datasets: dict[str, Any] | None = None,
    progress: Progress | None = None,
    skip_deployed: bool = False,
) -> list[dict[str, Any]]:
    """Deploy every finished run of the study in ``out_dir``; return the deployment records written.

    ``cfg``: the deploy settings (default: the study's ``[deploy]`` section from the store); ``methods``
    (default: ``cfg.methods``, else all of :data:`METHODS`). ``datasets``: already loaded datasets by data key.
    ``skip_deployed``: leave alone a run whose float row and every asked method are already stored as done
    (a re-run study does not redo them; ``trainlab deploy`` always measures afresh).
    """
    out_dir = Path(out_dir)
    db = out_dir / "trainlab.db"
    if not db.is_file():
        raise TrainlabError(f"{out_dir} holds no trainlab.db: give the output folder of a study (e.g. runs/quickstart)")
    store = Store(db)
    if cfg is None:
        cfg = DeployConfig.model_validate((store.meta("study") or {}).get("deploy") or {})
    chosen = list(dict.fromkeys(methods or cfg.methods or METHODS))
    unknown = [m for m in chosen if m not in METHODS]
    if unknown:
        raise TrainlabError(f"unknown deployment method(s) {', '.join(unknown)}; allowed: {', '.join(METHODS)}")
    cache = dict(datasets or {})
    written: list[dict[str, Any]] = []
    done = {(d["run_id"], d["method"]) for d in store.deployments() if d["status"] == "done"}
    threads = torch.get_num_threads()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    try:
        for record in store.runs():
            if record["status"] != "done":
                continue
            if skip_deployed and all((record["run_id"], m) in done for m in (BASELINE, *chosen)):
                continue
            key = _data_key(record["config"]["data"])
            dataset = cache.get(key)
            if dataset is None:
                from trainlab.data import load_dataset

                try:
                    dataset = cache[key] = load_dataset(DataConfig.model_validate(record["config"]["data"]))
                except Exception:
                    dataset = None  # DeployInputs loads it again and records the error in the run's rows
            written += deploy_run(record, out_dir, cfg, chosen, store, dataset, progress)
    finally:
        torch.set_num_threads(threads)
    return written


# ------------------------------------------------------------------------------------------------------
# Rows, table and plot (also used by the report)


def _ratio(num: Any, den: Any) -> float | None:
    if isinstance(num, int | float) and isinstance(den, int | float) and den > 0 and math.isfinite(num):
        return num / den
    return None


def deployment_rows(store: Store) -> list[dict[str, Any]]:
    """One row per run x method (the float baseline first), with ratios and differences against float.

    Keys: run_id, variant, model, method, status, error, saved_kb, size_mb, latency_p50_ms, latency_p90_ms,
    latency_p99_ms, throughput_ips, test_acc, agreement, max_abs_diff, size_ratio, latency_speedup,
    throughput_speedup, d_acc_points, runtime, quantized_layers, float_layers, note.
    """
    runs = {r["run_id"]: r for r in store.runs(plan_only=False)}
    by_run: dict[str, dict[str, dict[str, Any]]] = {}
    for rec in store.deployments():
        by_run.setdefault(rec["run_id"], {})[rec["method"]] = rec
    plan = [r for r in (store.meta("plan", []) or []) if r in by_run]
    order = plan + [r for r in by_run if r not in plan]  # runs of older plans last
    rows: list[dict[str, Any]] = []
    for run_id in order:
        recs = by_run[run_id]
        run = runs.get(run_id, {})
        base = recs.get(BASELINE, {}).get("figures", {})
        base_ok = recs.get(BASELINE, {}).get("status") == "done"
        for method in (BASELINE, *METHODS, *sorted(set(recs) - {BASELINE, *METHODS})):
            if method not in recs:
                continue
            rec = recs[method]
            f = rec["figures"]
            done = rec["status"] == "done" or (method == "onnx" and "latency_p50_ms" in f)
            row: dict[str, Any] = {
                "run_id": run_id,
                "variant": run.get("variant", run_id),
                "model": (run.get("config") or {}).get("model", {}).get("name"),
                "method": method,
                "status": rec["status"],
                "error": rec["error"],
            }
            for key in (
                "saved_kb",
                "size_mb",
                "latency_p50_ms",
                "latency_p90_ms",
                "latency_p99_ms",
                "throughput_ips",
                "test_acc",
                "agreement",
                "max_abs_diff",
                "runtime",
                "quantized_layers",
                "float_layers",
                "compiled",
            ):
                row[key] = f.get(key) if done else None
            ok = done and base_ok
            # Timings compare within one deployment session (same process, same load); sizes and accuracy always.
            timed = ok and f.get("session") == base.get("session")
            row["size_ratio"] = _ratio(base.get("saved_kb"), f.get("saved_kb")) if ok else None
            row["latency_speedup"] = _ratio(base.get("latency_p50_ms"), f.get("latency_p50_ms")) if timed else None
            row["throughput_speedup"] = _ratio(f.get("throughput_ips"), base.get("throughput_ips")) if timed else None
            row["same_session"] = timed
            acc, base_acc = f.get("test_acc"), base.get("test_acc")
            row["d_acc_points"] = 100.0 * (acc - base_acc) if ok and acc is not None and base_acc is not None else None
            row["note"] = _note(row, f, method)
            rows.append(row)
    return rows


def _note(row: dict[str, Any], figures: dict[str, Any], method: str) -> str:
    """Plain words for what the numbers do not show by themselves (slower, layers left in float, errors)."""
    if row["status"] not in ("done",) and row["error"]:
        return row["error"]
    parts: list[str] = []
    if method == BASELINE:
        parts.append("baseline, eager float32")
    if method != BASELINE and row["status"] == "done" and not row.get("same_session"):
        parts.append("measured in an earlier deployment than the float row: timings not compared (deploy again)")
    speed = row.get("latency_speedup")
    if speed is not None and method != BASELINE:
        if speed < 0.95:
            parts.append(f"batch-1 latency {1 / speed:.2f}x slower than float")
        elif speed > 1.05:
            parts.append(f"batch-1 latency {speed:.2f}x faster")
        else:
            parts.append("batch-1 latency about the same as float")
    tput = row.get("throughput_speedup")
    if tput is not None and method != BASELINE and tput < 0.95:
        parts.append(f"throughput {1 / tput:.2f}x lower")
    elif tput is not None and method != BASELINE and tput > 1.05:
        parts.append(f"throughput {tput:.2f}x higher")
    floats = figures.get("float_layers") or []
    if floats and method in ("dynamic", "static"):
        shown = ", ".join(floats[:3]) + (f" +{len(floats) - 3} more" if len(floats) > 3 else "")
        parts.append(f"float: {shown}")
    parts += [n for n in figures.get("notes") or [] if n]
    return "; ".join(parts)


def _fmt(v: Any, spec: str) -> str:
    return format(v, spec) if isinstance(v, int | float) and not isinstance(v, bool) else "—"


TABLE_COLUMNS = (
    ("variant", "run"),
    ("method", "method"),
    ("saved_kb", "saved kB"),
    ("size_ratio", "x smaller"),
    ("size_mb", "mem MB"),
    ("latency_p50_ms", "p50 ms"),
    ("latency_p90_ms", "p90 ms"),
    ("latency_p99_ms", "p99 ms"),
    ("latency_speedup", "x faster b1"),
    ("throughput_ips", "img/s"),
    ("test_acc", "test acc %"),
    ("d_acc_points", "Δ acc pts"),
    ("note", "note"),
)
LEGEND = (
    "saved kB: the saved file / 2^10; mem MB: tensors held in memory / 2^20; x smaller and x faster b1: float /"
    " variant (above 1 is better); p50/p90/p99: batch-1 latency after warm-up; img/s: throughput at the"
    " throughput batch; Δ acc: percentage points against float; int8 runs through torch.compile unless its note"
    " says otherwise."
)


def table_cells(row: dict[str, Any]) -> list[str]:
    """The row's cells, formatted, in :data:`TABLE_COLUMNS` order."""
    return [
        str(row["variant"]),
        row["method"],
        _fmt(row["saved_kb"], ".1f"),
        _fmt(row["size_ratio"], ".2f"),
        _fmt(row["size_mb"], ".3f"),
        _fmt(row["latency_p50_ms"], ".3f"),
        _fmt(row["latency_p90_ms"], ".3f"),
        _fmt(row["latency_p99_ms"], ".3f"),
        _fmt(row["latency_speedup"], ".2f"),
        _fmt(row["throughput_ips"], ",.0f"),
        _fmt(100 * row["test_acc"] if row["test_acc"] is not None else None, ".2f"),
        _fmt(row["d_acc_points"], "+.2f"),
        row["note"] or "",
    ]


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """The deployment table as GitHub Markdown, its legend below."""
    head = [h for _, h in TABLE_COLUMNS]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(c.replace("|", "/") for c in table_cells(r)) + " |" for r in rows]
    return "\n".join(lines) + "\n\n" + LEGEND


def print_table(rows: list[dict[str, Any]], console: Any = None) -> None:
    """The deployment table on the terminal (rich); each row's note is printed under the table, numbered."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    table = Table(title="Deployment: float vs int8 / ONNX (CPU)")
    table.add_column("#", justify="right")
    for key, header in TABLE_COLUMNS[:-1]:
        numeric = key not in ("variant", "method")
        table.add_column(header, justify="right" if numeric else "left")
    for i, row in enumerate(rows, start=1):
        style = "red" if row["status"] == "failed" else ("yellow" if row["status"] == "skipped" else None)
        table.add_row(str(i), *table_cells(row)[:-1], style=style)
    console.print(table)
    for i, row in enumerate(rows, start=1):
        if row["note"]:
            console.print(f"  [{i}] {row['method']}: {row['note']}", markup=False, highlight=False)
    console.print(LEGEND, markup=False, highlight=False)


def plot_deployment(rows: list[dict[str, Any]], path: str | Path) -> Path | None:
    """Saved size (kB, log) against batch-1 p50 latency (ms), one point per run x method, accuracy annotated.

    Drawn with matplotlib's Agg canvas into ``path`` (PNG); None when no row has both figures.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    points = [r for r in rows if r.get("saved_kb") and r.get("latency_p50_ms")]
    if not points:
        return None
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig = Figure(figsize=(7.5, 4.8), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    markers = {BASELINE: "o", "dynamic": "s", "static": "D", "onnx": "^"}
    colours = {BASELINE: "#1f77b4", "dynamic": "#ff7f0e", "static": "#2ca02c", "onnx": "#9467bd"}
    variants = list(dict.fromkeys(r["variant"] for r in points))
    for method in dict.fromkeys(r["method"] for r in points):
        sel = [r for r in points if r["method"] == method]
        ax.scatter(
            [r["saved_kb"] for r in sel],
            [r["latency_p50_ms"] for r in sel],
            marker=markers.get(method, "x"),
            color=colours.get(method, "#7f7f7f"),
            s=50,
            label=method,
            zorder=3,
        )
        for r in sel:
            acc = f"{100 * r['test_acc']:.2f}%" if r.get("test_acc") is not None else ""
            label = acc if len(variants) == 1 else f"{r['variant']} {acc}"
            ax.annotate(
                label, (r["saved_kb"], r["latency_p50_ms"]), textcoords="offset points", xytext=(6, 4), fontsize=8
            )
    ax.set_xscale("log")
    ax.set_xlabel("saved size (kB, log scale)")
    ax.set_ylabel("batch-1 latency p50 (ms)")
    ax.set_title("Deployment variants: size vs latency (test accuracy annotated)", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    return path


# ------------------------------------------------------------------------------------------------------
# The command


def deploy_command(out_dir: Path, methods: list[str] | None) -> int:
    """``trainlab deploy OUT [--method ...]``: deploy, print the table, write the plot; 1 if a method failed."""
    from rich.console import Console

    console = Console(width=max(Console().width, 160))  # the table has 13 columns
    out_dir = Path(out_dir)
    written = deploy_study(out_dir, methods=methods, progress=lambda m: console.print(f"[dim]deploy[/] {m}"))
    if not written:
        console.print(f"no finished run with a saved model in {out_dir}: nothing to deploy")
        return 1
    rows = deployment_rows(Store(out_dir / "trainlab.db"))
    print_table(rows, console)
    plot = plot_deployment(rows, out_dir / "deploy" / "deployment.png")
    (out_dir / "deploy" / "deployment.md").write_text(markdown_table(rows) + "\n", encoding="utf-8")
    if plot is not None:
        console.print(f"plot: {plot}")
    console.print(f"table: {out_dir / 'deploy' / 'deployment.md'}")
    return 1 if any(r["status"] != "done" for r in written) else 0


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"
