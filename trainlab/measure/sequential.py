"""Seeds until settled: a group-sequential rule that adds seeds in rounds until a difference is resolved.

A study with ``repeats = "auto"`` looks at the difference between two variants after ``START`` seeds each, then
after every ``STEP`` more, up to ``max_repeats`` (:func:`look_sizes`: 3, 5, 7, 9, 10 for ``max_repeats = 10``).
At each look it forms a two-sided confidence interval of the difference of means ``a - b`` at level
``1 - alpha / K``, with ``K`` the number of looks planned (:func:`interval`):

- paired by seed (same seeds on both sides): ``mean(d) ± t(1 - alpha/(2K), n - 1) · sd(d) / sqrt(n)``, ``d = a - b``;
- otherwise Welch's interval, ``diff ± t(1 - alpha/(2K), df) · sqrt(s_a²/n_a + s_b²/n_b)`` with the
  Welch–Satterthwaite ``df``.

It stops (:func:`decide`) as soon as the interval excludes 0 (``different``), or lies inside ``±margin``
(``equivalent``; only with ``margin > 0``), and at the last look says ``unresolved``. Differences with no spread
at all are no evidence of a difference (a quantised figure on a small split), but zero in every seed is
identical results, equivalent within any margin. Spending ``alpha / K`` at
each of the ``K`` looks is the Bonferroni alpha-spending boundary: whatever the dependence between the looks,
the chance that any look declares a difference that is not there is at most ``alpha`` (the union bound), and
the chance of declaring equivalence when the true difference is ``margin`` or more is at most ``alpha / 2``.
It is conservative (Pocock's constant boundary for 5 looks spends 0.016 per look where this spends 0.01) and
needs no assumption about when the looks happen, so a resumed study that looks again is still covered.
The functions are pure: arrays of one value per seed in, a :class:`Decision` out.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from trainlab.measure.stats import ALPHA

START = 3  # seeds per variant at the first look
STEP = 2  # seeds added per variant at each later look
Outcome = Literal["different", "equivalent", "unresolved", "continue"]


def look_sizes(max_repeats: int, start: int = START, step: int = STEP) -> tuple[int, ...]:
    """Seeds per variant at each look: ``start``, ``start + step``, ... and ``max_repeats`` last."""
    if max_repeats < start:
        raise ValueError(f"max_repeats ({max_repeats}) must be at least the first look's {start} seeds")
    sizes = list(range(start, max_repeats, step))
    return (*sizes, max_repeats)


@dataclass(frozen=True)
class Interval:
    """The difference of means ``a - b`` and its two-sided interval at ``level``."""

    diff: float
    low: float
    high: float
    level: float
    n: int  # pairs, or the smaller side's seeds
    paired: bool


@dataclass(frozen=True)
class Decision:
    """What a look decides: ``outcome``, the interval it read, and where the look stands in the plan."""

    outcome: Outcome
    interval: Interval | None  # None: too few values to form one (fewer than 2 per side)
    look: int  # 1-based index of this look
    looks: int  # K, the looks planned
    margin: float

    @property
    def settled(self) -> bool:
        """The study may stop adding seeds: resolved, or out of looks."""
        return self.outcome != "continue"


def interval(a: Sequence[float], b: Sequence[float], level: float, paired: bool) -> Interval | None:
    """Two-sided interval of ``mean(a) - mean(b)`` at ``level`` (paired: ``a[i]`` and ``b[i]`` share a seed).
    None with fewer than 2 values on a side. Zero spread gives a zero-width interval at the difference."""
    from scipy import stats  # deferred: scipy is heavy, and only the report and the study's looks need it

    xa, xb = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if paired:
        if xa.shape != xb.shape or xa.size < 2:
            return None
        d = xa - xb
        n = d.size
        diff, se, df = float(d.mean()), float(d.std(ddof=1)) / math.sqrt(n), n - 1
    else:
        if xa.size < 2 or xb.size < 2:
            return None
        n = min(xa.size, xb.size)
        va, vb = float(xa.var(ddof=1)) / xa.size, float(xb.var(ddof=1)) / xb.size
        diff, se = float(xa.mean() - xb.mean()), math.sqrt(va + vb)
        df = (va + vb) ** 2 / (va**2 / (xa.size - 1) + vb**2 / (xb.size - 1)) if se > 0 else xa.size + xb.size - 2
    half = float(stats.t.ppf(0.5 + level / 2, df)) * se
    return Interval(diff, diff - half, diff + half, level, n, paired)


def decide(
    a: Sequence[float],
    b: Sequence[float],
    *,
    max_repeats: int,
    margin: float = 0.0,
    alpha: float = ALPHA,
    paired: bool = True,
) -> Decision:
    """The decision at the look whose seed count is ``len(a)`` (the smaller side when unpaired), for a plan of
    :func:`look_sizes` ``(max_repeats)``. A count between two looks is read as the earlier look (a study stopped
    mid-round); one at or past the last look is the last look, which never continues."""
    sizes = look_sizes(max_repeats)
    n = min(len(a), len(b))
    look = max(1, sum(1 for s in sizes if s <= n))
    last = n >= sizes[-1]
    k = len(sizes)
    iv = interval(a, b, 1 - alpha / k, paired)
    # Differences that do not vary at all (a quantised figure on a small test split) carry no estimate of the
    # noise: a non-zero one is no evidence of a difference. Zero in every seed is identical results.
    no_noise = iv is not None and iv.low == iv.high and iv.diff != 0
    if iv is not None and not no_noise and (iv.low > 0 or iv.high < 0):
        outcome: Outcome = "different"
    elif iv is not None and not no_noise and margin > 0 and -margin < iv.low and iv.high < margin:
        outcome = "equivalent"
    else:
        outcome = "unresolved" if last else "continue"
    return Decision(outcome, iv, look, k, margin)


__all__ = ["START", "STEP", "Decision", "Interval", "decide", "interval", "look_sizes"]
