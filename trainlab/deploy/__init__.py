"""Deployment: each trained float model against its int8 and ONNX variants (``[deploy]``, ``trainlab deploy OUT``).

For every finished run of a study whose trained weights were saved (:meth:`trainlab.layout.StudyDir.weights`):
1. rebuild the float model from the run's config, load its weights, load the run's dataset
   (:mod:`~trainlab.deploy.inputs`);
2. measure the float model (the baseline, measured here, in the same process and conditions as the variants;
   :mod:`~trainlab.deploy.measure`);
3. for each method asked for, produce the variant, save it under ``<out>/deploy/``, reload it from that file
   and measure the reloaded one (:mod:`~trainlab.deploy.variants`):
   - ``dynamic``: int8 Linear weights, activation range per call (:mod:`trainlab.deploy.int8`);
   - ``static``: int8 weights and activations, ranges calibrated on ``calibration_batches`` training batches;
   - ``onnx``: ``torch.onnx.export`` (dynamo exporter) and onnxruntime's CPU execution provider
     (:mod:`trainlab.deploy.onnx`);
4. record one row per (run, method) in the store's ``deployments`` table (:mod:`~trainlab.deploy.study`); a
   variant that cannot be made gets its reason in its row and the others go on.

Figures of every variant (see docs/deploy.md and docs/measurements.md):
- ``saved_kb``: bytes of the file the variant is saved as / 2^10 (float: the saved state_dict; int8: the saved
  int8 tensors, see :mod:`trainlab.deploy.int8`; onnx: the .onnx file);
- ``size_mb``: bytes of the tensors the variant holds in memory / 2^20 (float/int8: parameters and buffers;
  onnx: the graph's initializers);
- ``latency_p50_ms/p90/p99``: batch-1 forward after warm-up, ``latency_repeats`` calls;
- ``throughput_ips``: images/s at batch ``throughput_batch``;
- ``test_acc``: accuracy on the test split; ``agreement``: fraction of test samples whose predicted class equals
  the float model's; ``max_abs_diff``: largest |logit - float logit| over the test samples.

This package only produces and measures; the table, its ratios against the float row (``size_ratio``,
``latency_speedup``, ...), deployment.md and the plot are the report's, read from the store
(:mod:`trainlab.report.deployment`).
"""

from __future__ import annotations

from trainlab.config import DEPLOY_METHODS
from trainlab.deploy.inputs import DeployInputs
from trainlab.deploy.measure import measure
from trainlab.deploy.onnx import OrtModule, export_onnx, onnx_available, onnx_initializer_mb
from trainlab.deploy.study import BASELINE, Progress, deploy_run, deploy_study

METHODS = DEPLOY_METHODS  # the deployment methods, in table order (defined in trainlab.config)

__all__ = [
    "BASELINE",
    "METHODS",
    "DeployInputs",
    "OrtModule",
    "Progress",
    "deploy_run",
    "deploy_study",
    "export_onnx",
    "measure",
    "onnx_available",
    "onnx_initializer_mb",
]
