"""Making each variant of a run's float model: saved to its file, reloaded from it, ready to be measured.

Each maker returns ``(model, figures)``: the reloaded model (what :func:`trainlab.deploy.measure.measure`
times) and the figures known before measuring — the saved file's size (``saved_kb``, bytes / 2^10), the
tensors held in memory (``size_mb``, bytes / 2^20), the file (``artefact``), the runtime and back end, the
layers made int8 or left in float, and ``notes`` (plain words the table's note repeats).
- ``float``: the run's saved ``state_dict``, eager PyTorch;
- ``dynamic``/``static``: int8 by torchao PT2E (:mod:`trainlab.deploy.int8`), reloaded from its file and, with
  ``cfg.compile``, run through ``torch.compile`` so that int8 kernels do the work;
- ``onnx``: exported by ``torch.onnx.export`` and run by onnxruntime's CPU execution provider.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from trainlab.config import DeployConfig
from trainlab.deploy import int8 as q
from trainlab.deploy.inputs import DeployInputs
from trainlab.deploy.onnx import OrtModule, export_onnx, onnx_available, onnx_initializer_mb, onnxruntime_version
from trainlab.deploy.reasons import first_line
from trainlab.errors import TrainlabError
from trainlab.measure.complexity import size_in_memory_mb

Variant = tuple[nn.Module, dict[str, Any]]


def unavailable(method: str) -> str | None:
    """None when ``method``'s optional dependencies are installed, else the reason (and install hint)."""
    return q.available() if method in q.QUANT_METHODS else onnx_available()


def float_variant(inputs: DeployInputs) -> Variant:
    """The trained float model as the run saved it: the baseline every variant is compared with."""
    figures: dict[str, Any] = {
        "saved_kb": inputs.checkpoint.stat().st_size / 1024.0,
        "size_mb": size_in_memory_mb(inputs.model),
        "artefact": str(inputs.checkpoint),
        "runtime": "eager PyTorch (float32)",
        "backend": f"torch {torch.__version__}",
        "notes": [],
    }
    return inputs.model, figures


def int8_variant(method: str, inputs: DeployInputs, cfg: DeployConfig, path: Path) -> Variant:
    """Quantize, save, reload from the file, and (``cfg.compile``) compile the reloaded model."""
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
                notes.append(f"torch.compile failed ({first_line(exc)}): measured the eager reference graph")
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


def onnx_variant(inputs: DeployInputs, cfg: DeployConfig, path: Path) -> Variant:
    """Export to ``path`` and open it in an onnxruntime session."""
    t0 = time.perf_counter()
    try:
        export_onnx(inputs.model, inputs.example, path)
    except Exception as exc:
        raise TrainlabError(f"ONNX export failed: {first_line(exc)}") from exc
    figures: dict[str, Any] = {
        "prepare_s": time.perf_counter() - t0,
        "saved_kb": path.stat().st_size / 1024.0,
        "size_mb": onnx_initializer_mb(path),
        "artefact": str(path),
        "reloaded": True,
        "backend": f"onnxruntime {onnxruntime_version()} CPUExecutionProvider",
        "runtime": "onnxruntime (torch -> numpy -> torch copies included in the timings)",
        "quantized_layers": [],
        "float_layers": [],
        "tolerance": cfg.onnx_tolerance,
        "notes": [],
    }
    return OrtModule(path), figures


def onnx_mismatch(figures: dict[str, Any], reference: torch.Tensor, cfg: DeployConfig) -> str | None:
    """Set ``figures["matches_float"]``; the failure's reason when onnxruntime's logits are beyond tolerance.

    Allowed: ``max_abs_diff <= onnx_tolerance x (1 + max |float logit|)`` (absolute for small logits, relative
    for large ones).
    """
    diff, scale = figures["max_abs_diff"], float(reference.abs().max())
    figures["matches_float"] = diff <= cfg.onnx_tolerance * (1.0 + scale)
    if figures["matches_float"]:
        return None
    return (
        f"onnx: onnxruntime's logits differ from the float model's by {diff:.3g}, more than the"
        f" tolerance {cfg.onnx_tolerance:g} x (1 + max |logit| {scale:.3g})"
    )
