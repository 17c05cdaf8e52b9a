"""The median rule for stopping hopeless trials (``[tune] prune = "median"``), as small pure functions.

A trial's curve is its validation figure at the end of each epoch (``curve[e]`` after epoch ``e + 1``). Before a
trial runs, the median of its variant's earlier trials' curves is taken epoch by epoch (:func:`median_bar`);
the trial stops after the first epoch, short of its last, whose figure is worse than that epoch's median
(:func:`stops_at`) — Optuna's ``MedianPruner`` rule, with the earlier trials being those of the variant's
earlier rounds (the trials of one round run side by side and do not see each other), so the bar is fixed
when the trial is planned and a resumed study plans the same bar. A stopped trial counts against the budget
and is never the chosen one: its figure is that of a shorter run.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

# Earlier trials that must have reached an epoch before its median is a bar: one trial is no median.
MIN_TRIALS = 2


@dataclass(frozen=True)
class PruneRule:
    """What a trial is stopped by: ``key``, the per-epoch figure it is judged on (``val_acc``: an
    :class:`~trainlab.records.EpochRow` field), read as the best so far when ``running`` (for a
    ``best_val_*`` metric); ``higher``: whether larger is better; ``bar``: per epoch (index 0 = epoch 1), the
    median the figure must not fall below (above, when lower is better), None where there is none yet."""

    key: str
    running: bool
    higher: bool
    bar: tuple[float | None, ...] = ()
    warmup: int = 0  # epochs a trial always runs ([tune] prune_warmup)

    def curve(self, values: Sequence[float | None]) -> list[float | None]:
        """The trial's curve from its per-epoch values of ``key`` (the best so far when ``running``)."""
        if not self.running:
            return list(values)
        out: list[float | None] = []
        best: float | None = None
        for v in values:
            if v is not None and math.isfinite(v) and (best is None or (v > best if self.higher else v < best)):
                best = v
            out.append(best)
        return out


def median_bar(curves: Sequence[Sequence[float | None]], epochs: int | None = None) -> tuple[float | None, ...]:
    """Per epoch (``epochs`` of them; default: as many as the longest curve), the median of the earlier trials'
    figures at that epoch, over the trials that reached it with a finite figure; None with fewer than
    :data:`MIN_TRIALS` of them. A trial that runs longer than every earlier one has no bar past their end."""
    bar: list[float | None] = []
    for e in range(max((len(c) for c in curves), default=0) if epochs is None else epochs):
        seen = [c[e] for c in curves if len(c) > e and c[e] is not None and math.isfinite(c[e])]  # type: ignore[arg-type]
        bar.append(statistics.median(seen) if len(seen) >= MIN_TRIALS else None)  # type: ignore[type-var]
    return tuple(bar)


def stops_at(rule: PruneRule, curve: Sequence[float | None], epochs: int) -> bool:
    """Whether a trial whose curve so far is ``curve`` stops now: its latest figure is worse than the bar at that
    epoch, and that epoch is past the warm-up and not its last (a trial that ran every epoch is complete)."""
    e = len(curve) - 1
    if e < 0 or e + 1 <= rule.warmup or e + 1 >= epochs or e >= len(rule.bar):
        return False
    bar, value = rule.bar[e], curve[e]
    if bar is None:
        return False
    if value is None or not math.isfinite(value):  # no figure at all: as bad as a figure can be
        return True
    return value < bar if rule.higher else value > bar


__all__ = ["MIN_TRIALS", "PruneRule", "median_bar", "stops_at"]
