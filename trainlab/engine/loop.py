"""The training loop: one run, read top to bottom.

``execute_run`` sets the run up (device, seed, data, the model — profiled as that very instance —, optimizer,
schedule, loss), continues from a checkpoint when there is one, then trains epoch by epoch: the training phase of
each epoch is timed by an :class:`EpochClock` (data vs compute) around :func:`~trainlab.engine.step.train_step`,
evaluation (of the test split, and of the validation split when there is one) runs outside the clock, a
checkpoint is written, and the epoch's row is emitted. After training, the run's figures are measured
(``trainlab.engine.figures``). The run never writes to the store: it emits typed events
(``trainlab.engine.events``) and the driver's sinks record them.

Conventions: ``train_loss``/``train_acc`` are the running means over the epoch's batches in training mode
(dropout active), as most training logs report them; ``test_loss``/``test_acc`` are computed after the epoch in
``eval()`` mode, as are ``val_loss``/``val_acc`` on the validation split (``data.val_fraction``, or the source's
own). The validation figures choose (best epoch, epochs to target, best variant); the test figures are scored.
"""

from __future__ import annotations

import json
import math
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from trainlab.config import RunConfig
from trainlab.data import Dataset, load_dataset
from trainlab.data.loaders import ResidentLoader, eval_loader, make_loaders
from trainlab.data.sealed import seal_test
from trainlab.engine.checkpoint import Resume, find_resume, restore, run_identity, save_checkpoint, write_checkpoint
from trainlab.engine.device import DeviceUnavailable, resolve_device, seed_everything
from trainlab.engine.events import (
    DISK_FULL,
    BatchProgress,
    Emit,
    EpochEnded,
    EpochRow,
    RunOutcome,
    RunStarted,
)
from trainlab.engine.figures import final_figures, gpu_step_profile
from trainlab.engine.optim import build_optimizer, build_scheduler
from trainlab.engine.precision import Precision, precision_scope
from trainlab.engine.step import LossFn, evaluate, make_loss
from trainlab.engine.stepper import EagerStep, make_stepper
from trainlab.errors import DiskFull, TrainlabError
from trainlab.measure.clock import EpochClock
from trainlab.measure.complexity import Profile, profile_model
from trainlab.measure.hardware import environment
from trainlab.measure.load import LoadMeter
from trainlab.measure.memory import MemoryMeter
from trainlab.measure.profile_cache import ProfileCache
from trainlab.models import build_for, set_study_folder
from trainlab.store import is_disk_full
from trainlab.study import RunSpec
from trainlab.tune.prune import PruneRule, stops_at

# A loss above this many times the first epoch's (and above 1e3) counts as exploding: the run is diverged.
EXPLODE_FACTOR = 1e4
# On CPU, a running loss is free to read: report it every this many batches (on CUDA reading it would sync).
PROGRESS_EVERY = 20


class Diverged(Exception):
    """The loss became NaN/inf or exploded; the run stops and is recorded as diverged."""


def _ignore(_event: Any) -> None:
    pass


def _profile(cfg: RunConfig, model: nn.Module, ds: Dataset, profiles: ProfileCache | None) -> Profile:
    """The model's profile, counted on this instance (or, for its architecture-only figures, on an earlier
    instance of the same model config in this process: :class:`ProfileCache`)."""
    optimizer = cfg.train.optimizer
    if profiles is None:
        return profile_model(model, ds.input_shape, ds.num_classes, optimizer=optimizer)
    key = json.dumps(cfg.model.model_dump(mode="json"), sort_keys=True)
    return profiles.profile(key, model, ds.input_shape, ds.num_classes, optimizer=optimizer)


def execute_run(
    spec: RunSpec,
    *,
    emit: Emit | None = None,
    checkpoint_path: Path | None = None,
    weights_path: Path | None = None,
    study_path: Path | None = None,
    dataset: Dataset | None = None,
    profiles: ProfileCache | None = None,
) -> RunOutcome:
    """Train and measure one run. Never raises for a run-level failure: the outcome says what happened.

    ``emit`` receives the run's events (RunStarted, BatchProgress, EpochEnded); ``checkpoint_path``: where the
    run checkpoints each epoch and resumes from; ``weights_path``: where the trained ``state_dict`` is saved;
    ``dataset``: an already loaded dataset for ``spec.config.data`` (else it is loaded here). ``profiles``: the
    profiles of models this process has counted already (else the model is counted here).
    """
    try:
        return _execute(spec, emit or _ignore, checkpoint_path, weights_path, study_path, dataset, profiles)
    except DeviceUnavailable as exc:
        return RunOutcome("skipped", error=str(exc))
    except Diverged as exc:
        return RunOutcome("diverged", error=str(exc))
    except torch.OutOfMemoryError as exc:
        return RunOutcome("failed", error=f"out of memory: {str(exc).splitlines()[0]}")
    except DiskFull as exc:  # the driver's store could not take an event: as below
        return RunOutcome("failed", error=str(exc), detail=DISK_FULL)
    except TrainlabError as exc:
        return RunOutcome("failed", error=str(exc))
    except Exception as exc:  # a crash in a model or the loop: recorded, the study goes on
        if is_disk_full(exc):  # not the run's fault: the driver stops the study (RunOutcome.disk_full)
            return RunOutcome("failed", error=f"disk full: {exc}", detail=DISK_FULL)
        return RunOutcome("failed", error=f"{type(exc).__name__}: {exc}", detail=traceback.format_exc())


@dataclass
class Training:
    """A run set up to train: its data, model (as profiled), optimizer, schedule, loss, numerics and step."""

    device: torch.device
    ds: Dataset
    train_loader: Any
    test_loader: ResidentLoader | None  # None for a tuning trial: its test split is sealed
    model: nn.Module
    profile: Profile | None
    optimizer: torch.optim.Optimizer
    scheduler: Any
    per_batch_schedule: bool
    loss_fn: LossFn
    precision: Precision
    scaler: torch.amp.GradScaler | None
    stepper: EagerStep
    channels_last: bool
    batch_size: int
    val_loader: ResidentLoader | None = None  # the validation split's, when the dataset has one

    def to_device(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """A batch as the step takes it: on the device, images channels-last when the run says so."""
        x = x.to(self.device, non_blocking=True)
        if self.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return x, y.to(self.device, non_blocking=True)

    def examples(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Batches of every shape an epoch's steps see (the full batch, and a smaller last one if any), made of
        evaluation images (test, or validation for a trial): what compilation and capture are prepared with."""
        n, b = len(self.ds.train), self.batch_size
        sizes = [min(b, n)] + ([n % b] if n > b and n % b else [])
        source = self.test_loader or self.val_loader
        assert source is not None  # a trial always has a validation split (seal_test)
        out = []
        for size in sizes:
            idx = torch.arange(size, device=source.x.device) % len(source.x)
            out.append(self.to_device(source.convert(source.x[idx]), source.y[idx]))
        return out


def _execute(
    spec: RunSpec,
    emit: Emit,
    checkpoint_path: Path | None,
    weights_path: Path | None,
    study_path: Path | None,
    dataset: Dataset | None,
    profiles: ProfileCache | None = None,
) -> RunOutcome:
    tc = spec.config.train
    # A user model (model.name = "module:Class") may come from the study's folder: that module alone, by path.
    set_study_folder(study_path.parent if study_path is not None else None)
    device = resolve_device(tc.device)
    if tc.threads:
        torch.set_num_threads(tc.threads)
    seed_everything(tc.seed, tc.deterministic)
    with precision_scope(tc.precision, device) as precision:
        return _train(spec, device, precision, emit, checkpoint_path, weights_path, study_path, dataset, profiles)


def _train(
    spec: RunSpec,
    device: torch.device,
    precision: Precision,
    emit: Emit,
    checkpoint_path: Path | None,
    weights_path: Path | None,
    study_path: Path | None,
    dataset: Dataset | None,
    profiles: ProfileCache | None = None,
) -> RunOutcome:
    cfg = spec.config
    tc = cfg.train
    # Data: both splits in memory; the training loader shuffles with a seed per (run seed, epoch).
    ds = dataset if dataset is not None else load_dataset(cfg.data)
    if spec.trial is not None:  # a tuning trial reads no test data: the split is sealed, reading it raises
        ds = seal_test(ds)
    train_loader, test_loader = make_loaders(cfg.data, ds, device, tc.seed)

    # Model: built with the run's seed; profiled as this very instance, before training.
    torch.manual_seed(tc.seed)
    model = build_for(cfg.model, ds).to(device)
    profile = _profile(cfg, model, ds, profiles) if cfg.measure.profile else None
    if tc.epochs == 0:  # an anatomy study: the profile of the model, no training
        if profile is None:
            raise TrainlabError("train.epochs = 0 profiles the model only; it needs measure.profile = true")
        emit(RunStarted(0, 0, 1, str(device), environment(device, study_path), profile.to_dict()))
        return RunOutcome("done", results={"epochs": 0, "device": str(device), **profile.figures()})
    channels_last = tc.channels_last and len(ds.input_shape) == 3
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = build_optimizer(tc, model)  # from this model's parameters, never another instance's
    scheduler, per_batch_schedule = build_scheduler(tc, optimizer, len(train_loader))
    loss_fn = make_loss(tc.loss, ds.task, ds.num_classes)
    scaler = precision.scaler()
    stepper = make_stepper(
        tc.compile, model, loss_fn, optimizer, tc.l2, precision.autocast, scaler, per_batch_lr=per_batch_schedule
    )
    val_loader = eval_loader(cfg.data, ds, ds.val, device) if ds.val is not None else None
    run = Training(
        device, ds, train_loader, test_loader, model, profile, optimizer, scheduler, per_batch_schedule,
        loss_fn, precision, scaler, stepper, channels_last, cfg.data.batch_size, val_loader,
    )  # fmt: skip

    # Continue after the last completed epoch when a checkpoint exists.
    identity = run_identity(spec.run_id, cfg.model_dump(mode="json"))
    resume: Resume | None
    resume, rejected = find_resume(checkpoint_path, identity)
    history: list[EpochRow] = []
    if resume is not None:
        restore(resume, model, optimizer, scheduler, scaler)
        history = list(resume.history)
    start_epoch = len(history) + 1
    if start_epoch <= tc.epochs and tc.compile != "none":
        stepper.prepare(run.examples())  # compile / capture now, timed apart: not charged to epoch 1

    emit(
        RunStarted(
            epochs=tc.epochs,
            batches=len(train_loader),
            start_epoch=start_epoch,
            device=str(device),
            env=environment(device, study_path),
            profile=profile.to_dict() if profile else None,
            history=list(history),
            notes=[rejected] if rejected else [],
        )
    )
    memory = MemoryMeter(device)
    memory.start()
    clock = EpochClock(device)
    first_loss = history[0].train_loss if history else None
    pruned: int | None = None  # the epoch a pruned trial stopped after ([tune] prune)
    for epoch in range(start_epoch, tc.epochs + 1):
        # Checked before the next epoch, not after the last: a trial killed between its checkpoint and this
        # check stops here when it resumes, as it would have.
        if spec.prune is not None and stops_at(spec.prune, _prune_curve(spec.prune, history), tc.epochs):
            pruned = len(history)
            break
        row = train_epoch(run, clock, epoch, emit)
        first_loss = _check_divergence(row, first_loss, emit)
        evaluate_epoch(run, row)
        history.append(row)
        if checkpoint_path is not None and tc.checkpoint:
            write_checkpoint(checkpoint_path, identity, history, model, optimizer, scheduler, scaler)
        emit(EpochEnded(row))
    mem = memory.stop()

    # After training: figures of the trained model (eval mode, no grad), none inside the training clock.
    results = final_figures(spec, run, history, mem)
    results["resumed_from_epoch"] = resume.epoch if resume is not None else None
    if spec.prune is not None:  # what the next rounds' bars and the report read
        results["prune_curve"], results["pruned_epoch"] = _prune_curve(spec.prune, history), pruned
    if rejected:
        results["checkpoint_rejected"] = rejected
    if spec.trial is not None:
        # A finished trial's record is its figures; its states (~3x the weights) are not kept, or a study of
        # 6 variants x 12 trials would hold 72 checkpoints nobody reads. Its epochs are in the store.
        if checkpoint_path is not None:
            checkpoint_path.unlink(missing_ok=True)
    elif weights_path is not None and tc.checkpoint:
        save_checkpoint(weights_path, model.state_dict())  # the module itself: plain keys, never "_orig_mod."
    results.update(gpu_step_profile(run))  # last: its steps train the model further
    return RunOutcome("done", results=results)


def _prune_curve(rule: PruneRule, history: list[EpochRow]) -> list[float | None]:
    """A trial's curve so far: its per-epoch validation figure that ``rule`` judges."""
    return rule.curve([getattr(row, rule.key) for row in history])


def train_epoch(run: Training, clock: EpochClock, epoch: int, emit: Emit) -> EpochRow:
    """The training phase of one epoch, timed: every batch through the run's step; the row without test
    figures. Loss and correct counts accumulate on the device, so no step waits for the host."""
    model, device = run.model, run.device
    model.train()
    run.train_loader.set_epoch(epoch)
    run.stepper.epoch_start()
    classify = run.ds.task == "classification"
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    seen = 0
    cpu = device.type == "cpu"
    load = LoadMeter()
    load.start()
    clock.start()
    for step, (xb, yb) in enumerate(clock.batches(run.train_loader)):
        clock.compute_start()
        x, y = run.to_device(xb, yb)
        loss, out = run.stepper.step(x, y)
        if run.per_batch_schedule:
            run.scheduler.step()
        loss_sum += loss * len(y)
        if classify:
            correct += (out.argmax(1) == y).sum()
        seen += len(y)
        clock.compute_end()
        if cpu and step % PROGRESS_EVERY == 0:
            emit(BatchProgress(epoch, step + 1, float(loss_sum) / seen))
    times = clock.stop()
    machine = load.stop()
    if run.scheduler is not None and not run.per_batch_schedule:
        run.scheduler.step()
    return EpochRow(
        epoch=epoch,
        train_loss=float(loss_sum) / max(seen, 1),
        train_acc=int(correct) / max(seen, 1) if classify else None,
        epoch_time_s=times.epoch_time_s,
        data_time_s=times.data_time_s,
        compute_time_s=times.compute_time_s,
        steps=times.steps,
        samples=seen,
        lr=float(run.optimizer.param_groups[0]["lr"]),
        data_gpu_time_s=times.data_gpu_time_s,
        data_startup_s=times.data_startup_s,
        cpu_cores=machine.cpu_cores if machine else None,
        other_cores=machine.other_cores if machine else None,
        cores=machine.cores if machine else None,
    )


def evaluate_epoch(run: Training, row: EpochRow) -> None:
    """Fill ``row``'s test figures (and validation figures, with a validation split) from the model after the
    epoch, in eval mode, outside the training clock."""
    ds = run.ds
    t0 = time.perf_counter()
    for loader, split in ((run.test_loader, "test"), (run.val_loader, "val")):
        if loader is None:
            continue
        ev = evaluate(
            run.stepper.run_model, loader, run.loss_fn, ds.task, ds.num_classes, target_scale=ds.target_scale,
            autocast=run.precision.autocast,
        )  # fmt: skip
        for figure in ("loss", "acc", "mae", "r2"):  # test_loss, ..., val_r2: None where the task has none
            setattr(row, f"{split}_{figure}", ev.get(figure))
    row.evaluated = True
    row.eval_time_s = time.perf_counter() - t0  # evaluate() synchronises: its figures are read on the host


def _check_divergence(row: EpochRow, first_loss: float | None, emit: Emit) -> float:
    """Raise :class:`Diverged` (after emitting the epoch's row) when the loss is not finite or exploded;
    return the first epoch's loss, the reference for an explosion."""
    loss = row.train_loss
    if not math.isfinite(loss):
        emit(EpochEnded(row))
        raise Diverged(f"training loss became {loss} in epoch {row.epoch}")
    if first_loss is None:
        return loss
    if loss > max(EXPLODE_FACTOR * first_loss, 1e3):
        emit(EpochEnded(row))
        raise Diverged(f"training loss exploded to {loss:.3g} in epoch {row.epoch} (epoch 1: {first_loss:.3g})")
    return first_loss
