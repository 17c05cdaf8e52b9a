"""ONNX: export a float model (``torch.onnx.export``, dynamo exporter) and run it with onnxruntime on the CPU.

onnx, onnxruntime and onnxscript are optional (``pip install 'trainlab[deploy]'``): they are imported inside
the functions that use them, so this module imports without them and :func:`onnx_available` says what is missing.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import torch
from torch import nn

from trainlab.deploy.quiet import quiet

OPTIONAL = ("onnx", "onnxruntime", "onnxscript")


def onnx_available() -> str | None:
    """None when ONNX export and onnxruntime can run here, else what is missing."""
    missing = []
    for module in OPTIONAL:
        try:
            __import__(module)
        except ImportError:
            missing.append(module)
    if missing:
        return f"ONNX needs {', '.join(missing)} (pip install 'trainlab[deploy]' with torch pinned)"
    return None


def onnxruntime_version() -> str:
    """The installed onnxruntime's version (it must be installed)."""
    import onnxruntime  # optional dependency: imported when used

    return str(onnxruntime.__version__)


def export_onnx(model: nn.Module, example: torch.Tensor, path: Path) -> None:
    """``torch.onnx.export`` (dynamo exporter) with a dynamic batch dimension, to one self-contained file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if len(example) < 2:
        example = example.repeat((2,) + (1,) * (example.dim() - 1))
    exporter_logs = ("torch.onnx", "torch.onnx._internal.exporter._registration")
    with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(UserWarning), quiet(*exporter_logs):
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


def onnx_initializer_mb(path: Path) -> float:
    """Bytes of the ONNX graph's initializers (its weights) / 2^20."""
    import onnx  # optional dependency: imported when used
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    return sum(numpy_helper.to_array(t).nbytes for t in graph.initializer) / 2**20


class OrtModule(nn.Module):
    """An onnxruntime session as an nn.Module: torch tensor in, torch tensor out (the copies are timed too)."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        import onnxruntime as ort  # optional dependency: imported when used

        options = ort.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()  # same thread budget as the torch variants
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.session.run(None, {self.input_name: x.detach().cpu().contiguous().numpy()})[0]
        return torch.from_numpy(out)
