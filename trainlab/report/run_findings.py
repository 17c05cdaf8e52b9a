"""The rules that read one run: divergence or failure, overfitting, a good fit, underfitting, data-bound training,
low device utilisation. Each is a function of the run (:class:`~trainlab.report.study.RunView`, its epochs
typed :class:`~trainlab.records.EpochRow`) returning its finding or None; the registry wires them."""

from __future__ import annotations

import statistics
from typing import Any

from trainlab.measure.format import pct2
from trainlab.records import EpochRow
from trainlab.report import anchors
from trainlab.report.finding import (
    DATA_BOUND_SHARE,
    EXPLODING_LOSS_FACTOR,
    LAUNCH_BOUND_SHARE,
    LOW_MFU,
    MIN_EPOCHS_FOR_TREND,
    NOT_CONVERGED_FALL,
    NOT_CONVERGED_WINDOW,
    OVERFIT_EPOCHS_AFTER,
    OVERFIT_LOSS_RISE,
    UNDERFIT_LOSS_DROP,
    UNDERFIT_TRAIN_ACC,
    UNDERFIT_TRAIN_OVER_TEST,
    Finding,
    metric_label,
    rounded,
)
from trainlab.report.study import RunView, StudyView, dotted_get, is_number

# Each rule reads one run and returns its finding or None; the registry (trainlab.report.registry) says which
# run statuses a rule reads, which findings supersede it and how several variants' findings merge, and the
# runner (trainlab.report.findings) fills in the run's variant and id and ends the sentence with its advice.


def _tested(run: RunView) -> list[EpochRow]:
    """The epochs evaluated on the test set, in order."""
    return [e for e in run.epochs if is_number(e.test_loss)]


def held_out(run: RunView) -> str:
    """The split a run's fit is judged on, and where it would be stopped: ``val`` when its epochs were
    evaluated on a validation split, else ``test`` (then the stopping epoch is a choice made on test)."""
    return "val" if any(is_number(e.val_loss) for e in run.epochs) else "test"


SPLIT_NAMES = {"val": "validation", "test": "test"}


def _loss(e: EpochRow, split: str) -> float:
    value = getattr(e, f"{split}_loss")
    return float(value) if is_number(value) else 0.0


def diverged(run: RunView) -> Finding | None:
    """A run whose loss became non-finite or exploded (the loop stopped it)."""
    figs: dict[str, Any] = {"epochs_completed": len(_tested(run))}
    if run.epochs:
        figs.update(last_train_loss=run.epochs[-1].train_loss)  # None when it was NaN/inf (JSON has no NaN)
    lr = dotted_get(run.config, "train.lr")
    advice = ""
    if lr is not None:
        figs.update(lr=lr)
        advice = f"Learning rate {lr:g}: a smaller one usually stabilises training."
    reason = run.error or "the loss became NaN or exploded"
    return Finding("diverged", "problem", f"{run.variant} diverged: {reason}.", figs, run.anchor, advice=advice)


def failed(run: RunView) -> Finding | None:
    """A run an error ended (its reason is the stored error)."""
    return Finding("failed", "problem", f"{run.variant} failed: {run.error or 'no reason recorded'}.", {}, run.anchor)


def skipped(run: RunView) -> Finding | None:
    """A run that cannot happen here (e.g. no CUDA)."""
    return Finding("skipped", "info", f"{run.variant} was skipped: {run.error or 'no reason recorded'}.", {},
                   run.anchor)  # fmt: skip


def exploding(run: RunView) -> Finding | None:
    """A training loss that is not finite, or grew more than EXPLODING_LOSS_FACTOR-fold, though the run went on."""
    epochs, variant = run.epochs, run.variant
    if len(epochs) < 2:
        return None
    bad = next((e.epoch for e in epochs if not is_number(e.train_loss)), None)
    first, last = epochs[0].train_loss, epochs[-1].train_loss
    if bad is not None:
        return Finding("diverged", "problem", f"{variant}: the training loss is not finite from epoch {bad} on.",
                       {"epoch": bad}, anchors.CURVES)  # fmt: skip
    if is_number(first) and is_number(last) and first > 0 and last > EXPLODING_LOSS_FACTOR * first:
        return Finding(
            "diverged",
            "problem",
            f"{variant}: the training loss grew from {first:.3g} (epoch 1) to {last:.3g} (epoch "
            f"{epochs[-1].epoch}), more than {EXPLODING_LOSS_FACTOR:g}× — training is exploding.",
            {"first_train_loss": rounded(first), "last_train_loss": rounded(last)},
            anchors.CURVES,
        )
    return None


def overfitting(run: RunView) -> Finding | None:
    """Held-out loss (validation, else test) lowest before the end and up since (while train loss kept
    falling); the train/held-out accuracy gap after."""
    split = held_out(run)
    name = SPLIT_NAMES[split]
    rows = [e for e in run.epochs if is_number(getattr(e, f"{split}_loss"))]
    if len(rows) < MIN_EPOCHS_FOR_TREND:
        return None
    best_i = min(range(len(rows)), key=lambda i: _loss(rows[i], split))
    best, last = rows[best_i], rows[-1]
    after = rows[best_i + 1 :]
    lowest, final = _loss(best, split), _loss(last, split)
    if len(after) < OVERFIT_EPOCHS_AFTER or lowest <= 0:
        return None
    rise_mean = sum(_loss(e, split) for e in after) / len(after) / lowest - 1
    rise = final / lowest - 1
    if rise_mean < OVERFIT_LOSS_RISE or rise < OVERFIT_LOSS_RISE:
        return None
    tl_best, tl_last = best.train_loss, last.train_loss
    if is_number(tl_best) and is_number(tl_last) and tl_last > tl_best:
        return None  # train loss rose too: instability, not overfitting
    figs: dict[str, Any] = {"best_epoch": best.epoch, f"min_{split}_loss": rounded(lowest), "last_epoch": last.epoch,
                            f"last_{split}_loss": rounded(final), f"{split}_loss_rise": rounded(rise, 3)}  # fmt: skip
    text = (
        f"{run.variant} overfits: its {name} loss is lowest at epoch {best.epoch} ({lowest:.3g}) and "
        f"{rise * 100:.0f}% higher by epoch {last.epoch} ({final:.3g})"
    )
    if is_number(tl_best) and is_number(tl_last):
        text += f", while the train loss kept falling ({tl_best:.3g} → {tl_last:.3g})"
        figs.update(last_train_loss=rounded(tl_last))
    accs = [(e.train_acc, getattr(e, f"{split}_acc")) for e in rows[best_i:]]
    gaps = [tr - ho for tr, ho in accs if is_number(tr) and is_number(ho)]
    if gaps and (gap := sum(gaps) / len(gaps)) > 0:
        figs.update(acc_gap_after_best_pp=rounded(gap * 100, 3))
        text += f"; from epoch {best.epoch} on, train accuracy exceeds {name} accuracy by {gap * 100:.1f} pp on average"
    detail = f"{name} loss lowest at epoch {best.epoch}, {rise * 100:.0f}% higher by epoch {last.epoch}"
    advice = f"Stopping near epoch {best.epoch} or more regularisation would help."
    if split == "test":  # the epoch to stop at was read on test: say how to choose it honestly
        advice += " (That epoch was read on the test split; set data.val_fraction to choose it on validation.)"
    return Finding("overfitting", "warning", text + ".", figs, anchors.CURVES, detail=detail, advice=advice)


def good_fit(run: RunView) -> Finding | None:
    """Neither over- nor underfitting: say so, with where the held-out loss is lowest and the final accuracy
    gap, so a study about regularisation has a verdict for every variant, not only for the problem cases."""
    split = held_out(run)
    name = SPLIT_NAMES[split]
    rows = [e for e in run.epochs if is_number(getattr(e, f"{split}_loss"))]
    if len(rows) < MIN_EPOCHS_FOR_TREND:
        return None
    best = min(rows, key=lambda e: _loss(e, split))
    last = rows[-1]
    lowest, final = _loss(best, split), _loss(last, split)
    figs: dict[str, Any] = {"best_epoch": best.epoch, f"min_{split}_loss": rounded(lowest), "last_epoch": last.epoch,
                            f"last_{split}_loss": rounded(final)}  # fmt: skip
    if best is last:
        where = f"its {name} loss is still lowest at the last epoch ({last.epoch}, {final:.3g})"
    else:
        rise = final / lowest - 1 if lowest > 0 else 0.0
        figs.update({f"{split}_loss_rise": rounded(rise, 3)})
        where = (
            f"its {name} loss is lowest at epoch {best.epoch} ({lowest:.3g}) and only {rise * 100:.0f}% "
            f"above that at epoch {last.epoch}"
        )
    text = f"{run.variant} shows no overfitting within {last.epoch} epochs: {where}"
    held_acc = getattr(last, f"{split}_acc")
    if is_number(last.train_acc) and is_number(held_acc):
        gap = (last.train_acc - held_acc) * 100
        figs.update(final_acc_gap_pp=rounded(gap, 3))
        text += f"; final train − {name} accuracy {gap:+.2f} pp"
    detail = f"lowest {name} loss at the last epoch" if best is last else f"lowest {name} loss at epoch {best.epoch}"
    return Finding("fit", "info", text + ".", figs, anchors.CURVES, detail=detail)


def train_mode_regularisation(run: RunView) -> list[str]:
    """What makes this run's training-mode figures (train loss and accuracy, measured with it active) worse than
    its model's: dropout, augmentation of the training images. Read from the stored config."""
    out = []
    p = dotted_get(run.config, "model.dropout")
    if is_number(p) and p > 0:
        out.append(f"dropout {p:g}")
    augment = dotted_get(run.config, "data.augment")
    if isinstance(augment, dict) and any(v not in (None, False, 0, 0.0, []) for v in augment.values()):
        out.append("augmentation")
    return out


def underfitting(run: RunView) -> Finding | None:
    """Low final train accuracy, or a train loss that barely fell.

    Every sign here is a training-mode figure. Under dropout or augmentation those figures are what the
    regularisation makes them, so reading them as underfitting (and advising less regularisation) would be
    circular: such a run gets no underfitting finding; its test figures speak for it in the tables."""
    if train_mode_regularisation(run):
        return None
    acc = run.value("train_acc")
    losses = [e.train_loss for e in run.epochs if is_number(e.train_loss)]
    figs: dict[str, Any] = {}
    reasons, details = [], []
    if acc is not None and acc < UNDERFIT_TRAIN_ACC:
        figs.update(train_acc=rounded(acc))
        reasons.append(f"its final train accuracy is {acc * 100:.1f}% (below {UNDERFIT_TRAIN_ACC * 100:.0f}%)")
        details.append(f"train acc {acc * 100:.1f}%")
    if len(losses) >= 2 and losses[0] > 0:
        drop = (losses[0] - losses[-1]) / losses[0]
        if drop < UNDERFIT_LOSS_DROP:
            figs.update(
                first_train_loss=rounded(losses[0]), last_train_loss=rounded(losses[-1]), loss_drop=rounded(drop, 3)
            )
            reasons.append(
                f"its train loss fell only {drop * 100:.0f}% ({losses[0]:.3g} → {losses[-1]:.3g}) over "
                f"{len(losses)} epochs"
            )
            details.append(f"train loss fell {drop * 100:.0f}%")
    last = run.epochs[-1] if run.epochs else None
    tr, te = (last.train_loss, last.test_loss) if last else (None, None)
    if is_number(tr) and is_number(te) and te > 0 and tr > UNDERFIT_TRAIN_OVER_TEST * te:
        # Training-mode loss well above the eval-mode test loss: regularisation (dropout, noise) holds the model
        # back more than unseen data does — the classic sign of too much of it.
        figs.update(final_train_loss=rounded(tr), final_test_loss=rounded(te), train_over_test=rounded(tr / te, 3))
        reasons.append(f"its final train loss ({tr:.3g}, training mode) is {tr / te:.1f}x its test loss ({te:.3g})")
        details.append(f"train loss {tr / te:.1f}x test loss")
    if not reasons:
        return None
    text = f"{run.variant} underfits: " + " and ".join(reasons) + "."
    return Finding("underfitting", "warning", text, figs, anchors.CURVES, detail=", ".join(details),
                   advice=UNDERFIT_ADVICE)  # fmt: skip


UNDERFIT_ADVICE = "More capacity, more epochs, less regularisation or a better learning rate would help."
DATA_BOUND_ADVICE = "A resident dataset or more DataLoader workers would shorten its epochs."
NOT_CONVERGED_ADVICE = "Training longer would lower it further."


def worse_than_mean(run: RunView) -> Finding | None:
    """Regression: a test R² below 0 means predicting the mean target would have done better."""
    r2 = run.value("test_r2")
    if r2 is None or r2 >= 0:
        return None
    text = (
        f"{run.variant} is worse than predicting the mean: its test R² is {r2:.3g} (a constant prediction of the "
        "mean target scores 0)."
    )
    return Finding("worse_than_mean", "warning", text, {"test_r2": rounded(r2)}, anchors.COMPARISON,
                   detail=f"R² {r2:.3g}")  # fmt: skip


def not_converged(run: RunView) -> Finding | None:
    """The held-out loss (validation, else test; or, with it not rising, the train loss) still falls over the
    last part of training by more than NOT_CONVERGED_FALL of its level: training longer would lower it further."""
    held = held_out(run)
    rows = [e for e in run.epochs if is_number(getattr(e, f"{held}_loss")) and is_number(e.train_loss)]
    if len(rows) < MIN_EPOCHS_FOR_TREND:
        return None
    k = max(MIN_EPOCHS_FOR_TREND, round(len(rows) * NOT_CONVERGED_WINDOW))
    window = rows[-k:]
    falls = []  # (slope, fall, at_low) of the held-out loss, then of the train loss
    for which in (held, "train"):
        vals = [_loss(e, which) for e in window]
        level = sum(vals) / len(vals)
        if level <= 0:
            return None
        # Still falling at the end, not a drop early in the window followed by a plateau: the last epoch is
        # (within half the threshold) the window's lowest.
        at_low = vals[-1] <= min(vals) * (1 + NOT_CONVERGED_FALL / 2)
        slope = statistics.linear_regression(range(len(vals)), vals).slope  # least squares, loss per epoch
        falls.append((slope, -slope * (len(vals) - 1) / level, at_low))
    slope, fall, at_low = falls[0]
    if not at_low or fall < NOT_CONVERGED_FALL / 4:
        return None  # the held-out loss has levelled off or turned: more epochs would not help it
    which = held
    if fall < NOT_CONVERGED_FALL:
        # The held-out loss still creeps down and the train loss falls clearly: training longer still helps.
        slope, fall, at_low = falls[1]
        if fall < NOT_CONVERGED_FALL or not at_low:
            return None
        which = "train"
    first, last = window[0].epoch, window[-1].epoch
    text = (
        f"{run.variant} has not converged: its {SPLIT_NAMES.get(which, which)} loss is still falling over epochs"
        f" {first}–{last} "
        f"({slope:.3g} per epoch, {fall * 100:.0f}% over those epochs by a straight-line fit)."
    )
    figs = {"loss": f"{which}_loss", "slope_per_epoch": rounded(slope), "fall": rounded(fall, 3),
            "from_epoch": first, "to_epoch": last}  # fmt: skip
    detail = f"{SPLIT_NAMES.get(which, which)} loss {slope:.2g}/epoch over epochs {first}–{last}"
    return Finding("not_converged", "warning", text, figs, anchors.CURVES, detail=detail, advice=NOT_CONVERGED_ADVICE)


def data_bound(run: RunView) -> Finding | None:
    share = run.value("data_share")
    data, total = run.value("data_time_s"), run.value("train_time_s")
    if share is None or share <= DATA_BOUND_SHARE or data is None or total is None:
        return None
    text = (
        f"{run.variant} is data-bound: it waits for batches {share * 100:.0f}% of its training time "
        f"({data:.3g} s of {total:.3g} s; threshold {DATA_BOUND_SHARE * 100:.0f}%)."
    )
    figs = {"data_share": rounded(share, 3), "data_time_s": rounded(data), "train_time_s": rounded(total)}
    return Finding("data_bound", "warning", text, figs, anchors.TIME_SPLIT, detail=f"waits {share * 100:.0f}%",
                   advice=DATA_BOUND_ADVICE)  # fmt: skip


def low_utilisation(run: RunView) -> Finding | None:
    mfu = run.value("mfu")
    if mfu is None or mfu >= LOW_MFU:
        return None
    figs: dict[str, Any] = {"mfu": rounded(mfu, 3)}
    achieved, peak = run.value("train_flops_per_s"), run.value("peak_flops")
    detail = ""
    if achieved is not None and peak is not None:
        figs.update(train_flops_per_s=rounded(achieved), peak_flops=rounded(peak))
        detail = f" ({achieved / 1e9:.3g} of {peak / 1e9:.3g} GFLOP/s)"
    device = run.record.device or "the device"
    text = (
        f"{run.variant} uses {pct2(mfu)} of {device}'s measured peak FLOP/s{detail}; below "
        f"{LOW_MFU * 100:.0f}% the device mostly waits: the model or batch is too small for it, or overheads dominate."
    )
    spread, low, high = run.value("peak_flops_spread"), run.value("mfu_low"), run.value("mfu_high")
    severity = "warning"
    if run.record.mfu_uncertain and spread is not None and low is not None and high is not None:
        # The peak was probed on a busy machine: the MFU is a range, and the verdict may not hold.
        figs.update(peak_flops_spread=rounded(spread, 3), mfu_low=rounded(low, 3), mfu_high=rounded(high, 3))
        text += (
            f" The peak probe's rounds varied by {spread * 100:.0f}% (the machine was busy while it was probed), so "
            f"this MFU lies between {pct2(low)} and {pct2(high)}."
        )
        severity = "info" if high >= LOW_MFU else severity
    detail = f"MFU {pct2(mfu)}" + (f" ({pct2(low)}–{pct2(high)})" if "mfu_high" in figs else "")
    return Finding("low_utilisation", severity, text, figs, anchors.COMPARISON, detail=detail)


def launch_bound(run: RunView) -> Finding | None:
    share = run.value("gpu_busy_share")
    if share is None or share >= LAUNCH_BOUND_SHARE:
        return None
    wall, kernels = run.value("step_wall_ms"), run.value("step_kernel_ms")
    detail = f" ({kernels:.3g} ms of kernels in a {wall:.3g} ms step)" if wall is not None and kernels else ""
    if run.record.compile_mode == "cuda-graph":
        remedy = "The step is already one CUDA graph: a larger batch gives the GPU more work per launch."
    else:
        remedy = (
            'Capture the whole step in a CUDA graph (train.compile = "cuda-graph") so it is one launch, or train '
            "with a larger batch."
        )
    text = (
        f"{run.variant} is launch-bound: the GPU ran kernels for {share * 100:.0f}% of each training step{detail};"
        " the rest of the time it waited for the host to queue work."
    )
    figs = {"gpu_busy_share": rounded(share, 3)}
    if wall is not None and kernels is not None:
        figs.update(step_wall_ms=rounded(wall), step_kernel_ms=rounded(kernels))
    return Finding("launch_bound", "warning", text, figs, anchors.COMPARISON, detail=f"GPU busy {share * 100:.0f}%",
                   advice=remedy)  # fmt: skip


def mfu_unstated(run: RunView) -> Finding | None:
    note = run.record.mfu_note
    if not note:
        return None
    return Finding("low_utilisation", "info", f"{run.variant}: no MFU is stated: {note}.", {}, anchors.COMPARISON)


NO_WORKERS_CURE = (
    "More DataLoader workers are no cure here: this study measured more workers waiting no less for batches."
)


def data_bound_advice(f: Finding, study: StudyView) -> str | None:
    """Never advise what the study itself measured to be worse: when the study sweeps DataLoader workers and a
    variant with more workers waited no less for its batches than a data-bound one, the measurement replaces
    "more DataLoader workers" (for several variants merged, when it holds for any of them)."""
    names = f.about or ((f.variant,) if f.variant else ())
    refuted = [text for name in names if (text := _more_workers_refuted(study, name))]
    if not refuted:
        return None
    return refuted[0] if len(names) == 1 else NO_WORKERS_CURE


def _more_workers_refuted(study: StudyView, variant: str) -> str | None:
    """The sentence saying what more workers measured, when a variant with more of them waited no less."""
    if "data.num_workers" not in study.swept_keys:
        return None
    me = next((v for v in study.variants if v.name == variant), None)
    if me is None:
        return None
    key = "data_steady_s" if me.mean("data_steady_s") is not None else "data_time_s"
    mine, workers = me.mean(key), me.factors.get("data.num_workers")
    if mine is None or not isinstance(workers, int):
        return None
    more = [(v.factors.get("data.num_workers"), v.mean(key)) for v in study.variants if v is not me]
    worse = [(w, t) for w, t in more if isinstance(w, int) and w > workers and t is not None and t >= mine]
    if not worse:
        return None
    w, t = min(worse)
    label = metric_label(key)
    return (
        f"More DataLoader workers are no cure here: this study measured num_workers={w} waiting {t:.3g} s for "
        f"batches ({label}) against {mine:.3g} s at num_workers={workers}."
    )
