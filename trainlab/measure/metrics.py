"""The curated per-run figures: label, unit, which direction is better, how to print, and their definition.

Tables show the metrics listed here (in this order, grouped); ``results.csv`` holds these and any other numeric
figure a run records. The definitions are those of docs/measurements.md and are shown in the report; how a
value is printed is ``trainlab.measure.format``'s job.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from trainlab.measure.format import is_number

Better = Literal["higher", "lower"] | None


@dataclass(frozen=True)
class Metric:
    """How one per-run figure is labelled, scaled, compared and printed."""

    key: str
    label: str
    unit: str  # unit of the displayed value ("%" for fractions shown as percentages; "" when dimensionless)
    better: Better  # which direction is better; None: neither (not highlighted)
    kind: Literal["fraction", "time", "count", "size", "loss", "epochs", "rate", "ratio"]
    group: str
    definition: str
    timing: bool = False  # a wall-clock figure: single-seed differences are judged against timing noise
    signed: bool = False  # can cross zero (R²): differences are absolute, a relative change means nothing

    @property
    def header(self) -> str:
        """Column header with the unit, e.g. ``Test acc (%)``."""
        return f"{self.label} ({self.unit})" if self.unit else self.label

    @property
    def scale(self) -> float:
        return 100.0 if self.kind == "fraction" else 1.0

    @property
    def deterministic(self) -> bool:
        """Fixed by the model, not by the seed (params, MACs, sizes): no significance test applies."""
        return self.group == SIZE and self.key not in MEASURED_MEMORY

    @property
    def quantised(self) -> bool:
        """Takes whole values only (counts, epochs): equal values over seeds show no noise, not that there is none,
        so a difference between two groups that each do not vary is not tested."""
        return self.kind in ("count", "epochs")

    @property
    def delta_absolute(self) -> bool:
        """Quantities that can cross zero are compared as absolute differences (R² 0.39 vs -0.05: +0.44)."""
        return self.signed

    @property
    def delta_in_points(self) -> bool:
        """Percentages are compared in percentage points (pp), everything else as a relative change (%)."""
        return self.kind == "fraction"


QUALITY, TIME, INFER, SIZE = "Accuracy and loss", "Training time", "Inference", "Size, cost and memory"
# The memory figures measured while training (they vary from run to run), unlike the model's sizes.
MEASURED_MEMORY = frozenset({"peak_mem_mb", "peak_mem_net_mb", "mem_baseline_mb", "peak_reserved_mb"})
GROUPS = (QUALITY, TIME, INFER, SIZE)

# The peak FLOP/s probe's spread ((fastest - slowest round) / the peak used; trainlab.measure.peak): above
# PEAK_SPREAD_SHOWN tables show the MFU with its range (mfu_low-mfu_high); above PEAK_SPREAD_UNCERTAIN the MFU is
# marked uncertain (mfu_uncertain, mfu_uncertain_note): the machine was busy while its peak was probed.
PEAK_SPREAD_SHOWN = 0.10
PEAK_SPREAD_UNCERTAIN = 0.25

_T = True
METRICS: tuple[Metric, ...] = (
    # --- accuracy and loss ------------------------------------------------------------------------------------
    Metric("test_acc", "Test acc", "%", "higher", "fraction", QUALITY, "Test-split accuracy after the last epoch."),
    Metric("best_test_acc", "Best test acc", "%", "higher", "fraction", QUALITY,
           "Highest test accuracy of any epoch: an epoch chosen on test, so it overstates what a chosen model"
           " scores; with a validation split read test_acc_at_best."),
    Metric("train_acc", "Train acc", "%", "higher", "fraction", QUALITY,
           "Running mean of training accuracy over the last epoch's batches (training mode, dropout on)."),
    Metric("test_loss", "Test loss", "", "lower", "loss", QUALITY, "Mean data loss on the test split, eval mode."),
    Metric("train_loss", "Train loss", "", "lower", "loss", QUALITY,
           "Running mean of the data loss over the last epoch's batches (L2 penalty not included)."),
    Metric("test_mae", "Test MAE", "", "lower", "loss", QUALITY, "Mean absolute error on the test split."),
    Metric("test_r2", "Test R²", "", "higher", "ratio", QUALITY,
           "Coefficient of determination on the test split: 1 - SSE / SS around the mean; below 0 the model is"
           " worse than predicting the mean target.", signed=True),
    Metric("val_acc", "Val acc", "%", "higher", "fraction", QUALITY,
           "Validation-split accuracy after the last epoch (data.val_fraction, or the source's own split)."),
    Metric("best_val_acc", "Best val acc", "%", "higher", "fraction", QUALITY,
           "Highest validation accuracy of any epoch: the accuracy at best_epoch."),
    Metric("val_loss", "Val loss", "", "lower", "loss", QUALITY, "Mean data loss on the validation split, eval mode."),
    Metric("val_mae", "Val MAE", "", "lower", "loss", QUALITY, "Mean absolute error on the validation split."),
    Metric("val_r2", "Val R²", "", "higher", "ratio", QUALITY, "Coefficient of determination on the validation"
           " split.", signed=True),
    Metric("best_epoch", "Best epoch", "", None, "epochs", QUALITY,
           "Epoch (1-based) of the highest validation accuracy (R² for regression), the earliest of ties; without"
           " a validation split read on test (best_epoch_split says which)."),
    Metric("test_acc_at_best", "Test acc at best", "%", "higher", "fraction", QUALITY,
           "Test accuracy of the epoch chosen as best_epoch: the test score of that choice."),
    Metric("test_r2_at_best", "Test R² at best", "", "higher", "ratio", QUALITY,
           "Test R² of the epoch chosen as best_epoch (regression).", signed=True),
    Metric("epochs_to_target", "Epochs to target", "", "lower", "epochs", QUALITY,
           "First epoch (1-based) whose validation accuracy reaches train.target_accuracy; without a validation"
           " split, its train accuracy (target_split says which)."),
    Metric("time_to_target_s", "Time to target", "s", "lower", "time", QUALITY,
           "Training time up to the end of the epoch that reached train.target_accuracy (as epochs_to_target).",
           _T),
    Metric("test_epochs_to_target", "Test epochs to target", "", "lower", "epochs", QUALITY,
           "First epoch whose test accuracy reaches train.target_test_accuracy."),
    Metric("test_time_to_target_s", "Test time to target", "s", "lower", "time", QUALITY,
           "Training time up to the end of the epoch that reached the test-accuracy target.", _T),
    # --- training time ----------------------------------------------------------------------------------------
    Metric("train_time_s", "Train time", "s", "lower", "time", TIME,
           "Wall time of the training phase of all epochs; evaluation and checkpoints excluded.", _T),
    Metric("epoch_time_mean_s", "Epoch time", "s", "lower", "time", TIME,
           "Mean wall time of one epoch's training phase.", _T),
    Metric("eval_time_s", "Eval time", "s", "lower", "time", TIME,
           "Wall time of the per-epoch evaluations of the test (and validation) split, all epochs.", _T),
    Metric("measure_time_s", "Measure time", "s", "lower", "time", TIME,
           "Wall time of the measurements after training: the confusion pass, batch-1 inference, latency and"
           " throughput.", _T),
    Metric("data_time_s", "Data time", "s", "lower", "time", TIME,
           "Total time the loop waited for the next batch from its loader (all epochs).", _T),
    Metric("data_startup_s", "Data start-up", "s", "lower", "time", TIME,
           "Total of each epoch's wait for its first batch (DataLoader worker start-up); part of data_time_s.", _T),
    Metric("data_steady_s", "Steady data time", "s", "lower", "time", TIME,
           "data_time_s - data_startup_s: the wait for batches once the loader is running (all epochs).", _T),
    Metric("data_gpu_time_s", "Data GPU time", "s", "lower", "time", TIME,
           "CUDA: total time the loader's batch preparation took on the GPU timeline (all epochs).", _T),
    Metric("gpu_busy_share", "GPU busy", "%", "higher", "fraction", TIME,
           "CUDA: kernel time / wall time over 20 profiled training steps after training; low = launch-bound.", _T),
    Metric("compute_time_s", "Compute time", "s", "lower", "time", TIME,
           "Total time from a batch in hand to the optimizer step done (all epochs).", _T),
    Metric("data_share", "Data share", "%", "lower", "fraction", TIME,
           "data_time_s / train_time_s: the share of training time spent waiting for data.", _T),
    Metric("train_flops_per_s", "Train FLOP/s", "GFLOP/s", "higher", "rate", TIME,
           "Training FLOPs per sample × samples / train_time_s.", _T),
    Metric("mfu", "MFU", "%", "higher", "fraction", TIME,
           "Achieved training FLOP/s / the peak FLOP/s the same work could reach: probed on this device in the"
           " precision its matmuls and convolutions ran in, weighted by the model's conv/matmul mix; the peak is"
           " the fastest of the probe's rounds, and mfu_low-mfu_high (shown beside it when the rounds differed by"
           f" over {PEAK_SPREAD_SHOWN:.0%}) is the MFU against the fastest and the slowest round.", _T),
    Metric("busy_epochs", "Busy epochs", "", None, "count", TIME,
           "Epochs timed while other work competed for the run's CPUs: other_cores >= 0.25 and cpu_cores +"
           " other_cores >= 85% of the CPUs (docs/measurements.md, busy machine)."),
    Metric("other_cores_max", "Other load", "cores", None, "ratio", TIME,
           "The most cores other work kept busy on the run's CPUs in any epoch (CPU s / wall s)."),
    Metric("cpu_cores_mean", "CPU cores used", "cores", None, "ratio", TIME,
           "Mean over epochs of the cores the run's process tree kept busy (workers included)."),
    Metric("infer_busy", "Busy inference", "", None, "count", INFER,
           "1 when other work competed for the CPUs while the inference figures were timed, else 0."),
    Metric("compile_time_s", "Compile time", "s", "lower", "time", TIME,
           "Wall time of torch.compile's warm-up or the CUDA-graph capture before the first epoch; not part of"
           " train_time_s.", _T),
    # --- inference --------------------------------------------------------------------------------------------
    Metric("infer_ms_per_image", "Infer / image", "ms", "lower", "time", INFER,
           "Batch-1 pass over the test set, forward only, eval + no_grad: total / images.", _T),
    Metric("infer_total_s", "Infer total", "s", "lower", "time", INFER, "Batch-1 pass over the test set, total.", _T),
    Metric("latency_p50_ms", "Latency p50", "ms", "lower", "time", INFER,
           "Median batch-1 forward latency after warm-up over repeated calls.", _T),
    Metric("latency_p90_ms", "Latency p90", "ms", "lower", "time", INFER, "90th percentile batch-1 latency.", _T),
    Metric("latency_p99_ms", "Latency p99", "ms", "lower", "time", INFER, "99th percentile batch-1 latency.", _T),
    Metric("throughput_ips", "Throughput", "img/s", "higher", "rate", INFER,
           "Images per second at a large batch (measure.throughput_batch).", _T),
    # --- size, cost and memory --------------------------------------------------------------------------------
    Metric("params", "Params", "", "lower", "count", SIZE, "Number of parameters (shared ones counted once)."),
    Metric("trainable_params", "Trainable", "", None, "count", SIZE, "Parameters with requires_grad."),
    Metric("frozen_params", "Frozen", "", None, "count", SIZE, "Parameters without requires_grad."),
    Metric("macs", "MACs", "", "lower", "count", SIZE,
           "Multiply-accumulates of one forward pass at batch 1 (convolutions and matrix products)."),
    Metric("flops", "FLOPs", "", "lower", "count", SIZE, "2 × MACs."),
    Metric("train_flops_per_sample", "Train FLOPs/sample", "", "lower", "count", SIZE,
           "Forward + backward FLOPs of one training sample, same counter."),
    Metric("size_mb", "Size", "MiB", "lower", "size", SIZE, "Bytes of parameters and buffers in memory / 2^20."),
    Metric("saved_kb", "Saved", "KiB", "lower", "size", SIZE, "Bytes of the saved state_dict file / 2^10."),
    Metric("peak_mem_mb", "Peak mem", "MiB", "lower", "size", SIZE,
           "Gross: CUDA: max_memory_allocated over training; CPU: the run process's peak resident set (VmHWM), "
           "the interpreter, torch, the data and the model included."),
    Metric("peak_mem_net_mb", "Peak mem net", "MiB", "lower", "size", SIZE,
           "Peak mem - Mem baseline: what training added (activations, gradients, optimizer state, batches)."),
    Metric("mem_baseline_mb", "Mem baseline", "MiB", None, "size", SIZE,
           "The same measure when training starts (model, data and loaders set up): CUDA: memory_allocated; "
           "CPU: the process's resident set."),
    Metric("peak_reserved_mb", "Peak reserved", "MiB", "lower", "size", SIZE,
           "CUDA: max_memory_reserved over training."),
    Metric("nonzero_grads", "Non-zero grads", "", None, "count", SIZE,
           "Gradient entries that are non-zero after one optimizer step."),
    Metric("conv_layers", "Conv layers", "", None, "count", SIZE,
           "Number of convolution modules (nn.Conv1d/2d/3d and transposed)."),
    Metric("linear_layers", "Linear layers", "", None, "count", SIZE,
           "Number of nn.Linear modules."),
    Metric("last_linear_in_features", "Last linear in", "", None, "count", SIZE,
           "Input features of the last nn.Linear layer (the classifier's width)."),
)  # fmt: skip

BY_KEY: dict[str, Metric] = {m.key: m for m in METRICS}

# Per-epoch figures: the fields of a run's epoch rows (trainlab.engine.events.EpochRow), in column order of
# epochs.csv. Times are the training phase only; test figures are taken after the epoch, in eval mode.
EPOCH = "Per epoch"
EPOCH_METRICS: tuple[Metric, ...] = (
    Metric("epoch", "Epoch", "", None, "epochs", EPOCH, "1-based index of the epoch."),
    Metric("train_loss", "Train loss", "", "lower", "loss", EPOCH,
           "Running mean of the data loss over the epoch's batches, training mode (L2 penalty not included)."),
    Metric("train_acc", "Train acc", "%", "higher", "fraction", EPOCH,
           "Running mean of training accuracy over the epoch's batches, training mode (classification only)."),
    Metric("epoch_time_s", "Epoch time", "s", "lower", "time", EPOCH,
           "Wall time of the epoch's training phase: data_time_s + compute_time_s.", _T),
    Metric("data_time_s", "Data time", "s", "lower", "time", EPOCH,
           "Time the loop waited for the next batch from its loader.", _T),
    Metric("compute_time_s", "Compute time", "s", "lower", "time", EPOCH,
           "Time from a batch in hand to its optimizer step done (CUDA: events on the GPU timeline).", _T),
    Metric("steps", "Steps", "", None, "count", EPOCH, "Optimizer steps (batches) in the epoch."),
    Metric("samples", "Samples", "", None, "count", EPOCH, "Training samples seen in the epoch."),
    Metric("lr", "Learning rate", "", None, "ratio", EPOCH, "Learning rate of the first parameter group at the "
           "epoch's end (after a per-batch schedule's last step, before a per-epoch schedule's step)."),
    Metric("test_loss", "Test loss", "", "lower", "loss", EPOCH, "Mean data loss on the test split, eval mode."),
    Metric("test_acc", "Test acc", "%", "higher", "fraction", EPOCH, "Test-split accuracy, eval mode."),
    Metric("test_mae", "Test MAE", "", "lower", "loss", EPOCH,
           "Mean absolute error on the test split, in the target's units (regression only)."),
    Metric("test_r2", "Test R²", "", "higher", "ratio", EPOCH, "Coefficient of determination on the test split.",
           signed=True),
    Metric("val_loss", "Val loss", "", "lower", "loss", EPOCH, "Mean data loss on the validation split, eval mode."),
    Metric("val_acc", "Val acc", "%", "higher", "fraction", EPOCH, "Validation-split accuracy, eval mode."),
    Metric("val_mae", "Val MAE", "", "lower", "loss", EPOCH,
           "Mean absolute error on the validation split, in the target's units (regression only)."),
    Metric("val_r2", "Val R²", "", "higher", "ratio", EPOCH, "Coefficient of determination on the validation split.",
           signed=True),
    Metric("data_gpu_time_s", "Data GPU time", "s", "lower", "time", EPOCH,
           "CUDA: the loader's batch preparation on the GPU timeline (events around each next()).", _T),
    Metric("data_startup_s", "Data start-up", "s", "lower", "time", EPOCH,
           "The wait for the epoch's first batch (DataLoader worker start-up included); part of data_time_s.", _T),
    Metric("cpu_cores", "CPU cores used", "cores", None, "ratio", EPOCH,
           "CPU seconds of the run's process tree (workers included) / wall seconds of the epoch's training phase."),
    Metric("other_cores", "Other load", "cores", None, "ratio", EPOCH,
           "CPU seconds the run's CPUs were busy with other work (other jobs, runs, steal) / wall seconds."),
    Metric("cores", "CPUs", "", None, "count", EPOCH, "CPUs the run may use (its affinity)."),
    Metric("eval_time_s", "Eval time", "s", "lower", "time", EPOCH,
           "Wall time of the epoch's evaluation of the test (and validation) split, after its training phase.", _T),
)  # fmt: skip
EPOCH_KEYS: tuple[str, ...] = tuple(m.key for m in EPOCH_METRICS)


# Timing figures that are totals or means over a run's epochs: with one seed, their noise is the epoch-to-epoch
# variation divided by sqrt(epochs after the first) (independent epochs), not the variation itself.
EPOCH_AGGREGATES = frozenset(
    {"train_time_s", "epoch_time_mean_s", "data_time_s", "data_steady_s", "compute_time_s", "data_share"}
)


def column_order(present: list[str], catalogue: tuple[Metric, ...] = METRICS) -> list[str]:
    """CSV columns: the catalogue's keys that are ``present``, in catalogue order, then any other key in the
    order first seen (a figure the catalogue does not define yet is still written)."""
    known = [m.key for m in catalogue if m.key in present]
    return known + [k for k in present if k not in known]


# Headline columns of the comparison table (in order); those no run reports are dropped.
HEADLINE = (
    "test_acc",
    "test_r2",
    "test_mae",
    "test_loss",
    "val_acc",
    "val_r2",
    "epochs_to_target",
    "test_epochs_to_target",
    "train_time_s",
    "epoch_time_mean_s",
    "data_share",
    "mfu",
    "latency_p50_ms",
    "params",
    "macs",
    "peak_mem_mb",
    "peak_mem_net_mb",
)


def derived(results: dict[str, Any]) -> dict[str, Any]:
    """Figures the report derives from a run's stored ones (not stored themselves)."""
    out: dict[str, Any] = {}
    data, total = results.get("data_time_s"), results.get("train_time_s")
    if is_number(data) and is_number(total) and total > 0:
        out["data_share"] = data / total
    startup = results.get("data_startup_s")
    if is_number(data) and is_number(startup):
        out["data_steady_s"] = max(0.0, data - startup)
    return out
