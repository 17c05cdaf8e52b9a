"""TensorBoard: one log folder per run under ``<out>/tensorboard``, scalars per epoch, hparams per run.

Folder ``<out>/tensorboard/<variant>_seed<seed>_<run id>``; scalars per epoch (the epoch is the step) named as
every tracker names figures (``track.base.tracker_name``): ``train/loss``, ``test/loss``, ``train/acc_pct``,
``test/acc_pct`` (accuracy in percent, as the report), ``test/mae``, ``test/r2``, ``time/epoch_time_s``, ... When
the run ends, its hparams (the keys the study sweeps, and the run's seed) with its final figures of every split
and its costs (``hparams/<name>``) go into the *same* folder, so
TensorBoard's HParams tab shows one row per run and no extra empty runs.

When a run starts (live, on resume, or replayed by ``trainlab export``) its folder is written afresh from the
epochs it already has, so the event files always hold each epoch once, as the store does, however often the
study is exported. A write that fails (a full disk) disables the tracker for the rest of the study.
"""

from __future__ import annotations

import re
import shutil
from typing import Any

from trainlab.engine.events import EpochEnded, Event, RunEnded, RunStarted
from trainlab.errors import ConfigError
from trainlab.layout import StudyDir
from trainlab.records import RunIdentity
from trainlab.track.base import Guarded, config_of, dotted, guarded, named_figures

# The per-epoch figures drawn as scalars, under the trackers' one naming (track.base.tracker_name).
EPOCH_SCALARS = ("train_loss", "test_loss", "train_acc", "test_acc", "test_mae", "test_r2", "val_loss", "val_acc",
                 "val_mae", "val_r2", "epoch_time_s", "data_time_s", "compute_time_s", "data_gpu_time_s",
                 "lr")  # fmt: skip
# The HParams table's metrics: the final figures of every split, the best, the costs. Each is also written as
# one scalar (how TensorBoard's HParams plugin finds it), under hparams/ so those single points sit apart.
HPARAM_METRICS = ("train_acc", "train_loss", "test_acc", "best_test_acc", "test_loss", "test_r2", "test_mae",
                  "val_acc", "best_val_acc", "val_loss", "val_r2", "val_mae", "best_epoch", "test_acc_at_best",
                  "test_r2_at_best", "train_time_s", "epoch_time_mean_s", "time_to_target_s", "latency_p50_ms",
                  "params", "macs", "peak_mem_mb", "peak_mem_net_mb")  # fmt: skip


def _writer_class() -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter  # deferred: needs the tensorboard extra
    except ImportError:
        raise ConfigError(
            "tracking with TensorBoard needs an optional extra: pip install 'trainlab[tensorboard]'"
        ) from None
    return SummaryWriter


class TensorBoardTracker(Guarded):
    """Writes TensorBoard event files for a study (live, as a sink, or replayed from the store)."""

    name = "tensorboard"

    def __init__(self, layout: StudyDir) -> None:
        self.writer_cls = _writer_class()
        self.updated: set[str] = set()  # a run's event files are rewritten whole each time it is sent
        self.root = layout.root / "tensorboard"
        self.where = str(self.root)
        self.writers: dict[str, Any] = {}
        self.swept: list[str] = []

    @guarded
    def study_started(self, study_config: dict[str, Any], swept_keys: list[str]) -> None:
        self.swept = list(swept_keys)

    @guarded
    def study_finished(self, report_files: list[Any]) -> None:
        for writer in self.writers.values():
            writer.close()
        self.writers.clear()

    def folder(self, spec: RunIdentity) -> str:
        safe = re.sub(r"[^A-Za-z0-9_.=-]+", "_", spec.variant)
        return str(self.root / f"{safe}_seed{spec.seed}_{spec.run_id}")

    @guarded
    def event(self, spec: RunIdentity, event: Event) -> None:
        if isinstance(event, RunStarted):
            old = self.writers.pop(spec.run_id, None)
            if old is not None:
                old.close()
            shutil.rmtree(self.folder(spec), ignore_errors=True)
            writer = self.writers[spec.run_id] = self.writer_cls(log_dir=self.folder(spec))
            self.updated.add(spec.run_id)
            for row in event.history:
                self._epoch(writer, row.to_record())
        elif isinstance(event, EpochEnded):
            writer = self.writers.get(spec.run_id)
            if writer is not None:
                self._epoch(writer, event.row.to_record())
        elif isinstance(event, RunEnded):
            writer = self.writers.pop(spec.run_id, None)
            if writer is None:
                return
            if event.outcome.status == "done":
                res = event.outcome.results
                figures = named_figures({k: res[k] for k in HPARAM_METRICS if k in res})
                metrics = {f"hparams/{name}": v for name, v in figures.items()}
                writer.add_hparams(self._hparams(spec), metrics, run_name=".")  # ".": this run's own folder
            writer.close()

    def _epoch(self, writer: Any, row: dict[str, Any]) -> None:
        step = int(row["epoch"])
        for tag, value in named_figures({k: row[k] for k in EPOCH_SCALARS if k in row}).items():
            writer.add_scalar(tag, value, step)
        writer.flush()

    def _hparams(self, spec: RunIdentity) -> dict[str, Any]:
        """The swept keys' values (numbers, strings or booleans, as TensorBoard takes them) and the seed."""
        config = dotted(config_of(spec))
        out: dict[str, Any] = {}
        for key in self.swept:
            value = config.get(key, spec.overrides.get(key))
            out[key] = value if isinstance(value, int | float | str | bool) else str(value)
        out["seed"] = spec.seed
        return out
