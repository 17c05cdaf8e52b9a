"""The probability of improvement: how often one variant does better than another on a seed (rliable's
"probability of improvement"), with a percentile-bootstrap interval. A pure function of per-seed values."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from trainlab.measure.stats import BOOTSTRAP_MIN_N, CONFIDENCE, finite


def probability_of_improvement(
    a: Sequence[float],
    b: Sequence[float],
    paired: bool,
    confidence: float = CONFIDENCE,
    n_resamples: int = 9999,
    seed: int = 0,
) -> tuple[float, float, float] | None:
    """``(P, low, high)``: the probability that ``a`` beats ``b`` on a seed, with its bootstrap interval.

    Paired (``a[i]`` and ``b[i]`` share a seed): the share of seeds where ``a`` is higher, ties counting one
    half. Unpaired: the same over every pair ``(a[i], b[j])`` (the Mann–Whitney U statistic over n·m). The
    interval is the percentile bootstrap at ``confidence``: seeds resampled with replacement (each side on its
    own when unpaired), ``n_resamples`` times from ``numpy.random.default_rng(seed)``, widened where needed to
    the Wilson score interval of the share over the smaller side's seed count (:func:`wilson`: the bootstrap
    of 3 seeds that all win is 1.00-1.00, which 3 seeds cannot show). "Higher" is better:
    negate a lower-is-better figure first. None with fewer than :data:`BOOTSTRAP_MIN_N` values on a side.
    """
    xa, xb = np.asarray(finite(a), dtype=float), np.asarray(finite(b), dtype=float)
    if xa.size < BOOTSTRAP_MIN_N or xb.size < BOOTSTRAP_MIN_N or (paired and xa.size != xb.size):
        return None
    rng = np.random.default_rng(seed)
    tail = (1 - confidence) / 2
    if paired:
        wins = (xa > xb) + 0.5 * (xa == xb)  # shape (n,)
        draws = wins[rng.integers(0, wins.size, (n_resamples, wins.size))].mean(axis=1)  # shape (R,)
        point = float(wins.mean())
    else:

        def prob(ya: np.ndarray, yb: np.ndarray) -> np.ndarray:
            # ya: (..., n), yb: (..., m) -> P over the n x m pairs: (...)
            d = ya[..., :, None] - yb[..., None, :]
            return ((d > 0) + 0.5 * (d == 0)).mean(axis=(-2, -1))

        point = float(prob(xa, xb))
        ia = rng.integers(0, xa.size, (n_resamples, xa.size))
        ib = rng.integers(0, xb.size, (n_resamples, xb.size))
        draws = prob(xa[ia], xb[ib])
    low, high = np.quantile(draws, [tail, 1 - tail])
    if not np.all(draws == 0.5) or point != 0.5:  # identical results on every seed: exactly one half, no doubt
        # The bootstrap cannot show what a few seeds leave open: with 3 seeds that all win, every resample wins
        # too (1.00-1.00). n seeds cannot pin a probability closer than the Wilson score interval of their
        # share, n = the smaller side's seeds: the interval is never narrower than that.
        w_low, w_high = wilson(point, int(min(xa.size, xb.size)), confidence)
        low, high = min(low, w_low), max(high, w_high)
    return point, float(low), float(high)


def wilson(p: float, n: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """The Wilson score interval of a proportion ``p`` observed over ``n`` trials, at ``confidence``."""
    from scipy.stats import norm  # heavy (scipy.stats), and only the report's comparisons need it

    z = float(norm.ppf(1 - (1 - confidence) / 2))
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, float(centre - half)), min(1.0, float(centre + half))


__all__ = ["probability_of_improvement", "wilson"]
