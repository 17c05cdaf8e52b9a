"""``[measure]``: what is measured after training, and how — the measure layer's own typed config."""

from __future__ import annotations

from pydantic import (
    Field,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
)

from trainlab.schema import SMOKE, Strict


class MeasureConfig(Strict):
    """``[measure]``: what is measured after training, and how."""

    infer_batch1: bool = Field(True, description="Time a batch-1 forward pass over the test set.")
    infer_limit: PositiveInt | None = Field(
        None, description="Batch-1 pass over at most this many test images.", json_schema_extra={SMOKE: 4}
    )
    latency_warmup: NonNegativeInt = Field(
        10, description="Warm-up forward calls before latency is sampled.", json_schema_extra={SMOKE: 1}
    )
    latency_repeats: PositiveInt = Field(
        100, description="Batch-1 forward calls sampled for p50/p90/p99.", json_schema_extra={SMOKE: 3}
    )
    throughput_batch: PositiveInt = Field(
        256, description="Batch size for throughput (images/s).", json_schema_extra={SMOKE: 4}
    )
    throughput_time_s: PositiveFloat = Field(
        0.5, description="Minimum seconds of repeated calls for throughput.", json_schema_extra={SMOKE: 0.01}
    )
    profile: bool = Field(True, description="Count params/MACs/sizes of the model before training.")
    mfu: bool = Field(
        True, description="Measure the device's peak matmul FLOP/s (once per machine, cached) and report MFU."
    )
