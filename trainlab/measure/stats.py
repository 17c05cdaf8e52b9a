"""Statistics for repeated runs: mean ± confidence interval, Welch's t-test, and timing noise.

- **Mean ± 95% CI**: the half-width is ``t(0.975, n-1) * s / sqrt(n)`` with ``s`` the sample standard deviation
  (ddof = 1) and ``t`` Student's t quantile (``scipy.stats.t``). It needs n >= 2; with one value there is no
  interval.
- **Welch's t-test** (``scipy.stats.ttest_ind(equal_var=False)``, two-sided): compares a variant's values over
  its seeds with the baseline's, without assuming equal variances. A difference "exceeds the noise" when
  p < :data:`ALPHA`. Both groups need n >= 2.
- **Timing noise with one seed**: without repeats there is no run-to-run spread to test against, so the report
  states the coefficient of variation (std / mean) of epoch times *within* each run, epoch 1 excluded (it holds
  warm-up: allocator growth, lazy initialisation, caches). Timing differences smaller than that cannot be told
  apart from noise.
"""

from __future__ import annotations

import math
import statistics
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

CONFIDENCE = 0.95  # two-sided confidence level of the intervals shown in tables
ALPHA = 0.05  # significance level of Welch's t-test: p below this means "larger than the noise"
TEST_NAME = "Welch's two-sided t-test (unequal variances)"


@dataclass(frozen=True)
class MeanCI:
    """Mean of ``n`` values with the half-width of its confidence interval (None when n < 2)."""

    mean: float
    half_width: float | None
    n: int
    std: float | None  # sample standard deviation (ddof = 1); None when n < 2

    @property
    def low(self) -> float | None:
        return None if self.half_width is None else self.mean - self.half_width

    @property
    def high(self) -> float | None:
        return None if self.half_width is None else self.mean + self.half_width


@dataclass(frozen=True)
class WelchResult:
    """Welch's t-test of ``a`` against ``b``: ``diff = mean(a) - mean(b)``; significant when p < alpha."""

    t: float
    p: float
    diff: float
    n_a: int
    n_b: int
    alpha: float = ALPHA

    @property
    def significant(self) -> bool:
        return self.p < self.alpha


@dataclass(frozen=True)
class TimingNoise:
    """Within-run variation of epoch times (epoch 1 excluded), over the runs that have enough epochs."""

    cv_median: float  # median over runs of std/mean of epoch_time_s (a fraction: 0.03 = 3%)
    cv_max: float
    runs: int  # runs that contributed (each with >= 2 epochs after the first)


def finite(values: Sequence[float | int | None]) -> list[float]:
    """The finite numbers of ``values`` as floats (None, NaN, inf and booleans dropped)."""
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int | float):
            continue
        if math.isfinite(v):
            out.append(float(v))
    return out


def mean_ci(values: Sequence[float | int | None], confidence: float = CONFIDENCE) -> MeanCI | None:
    """Mean and t-distribution confidence half-width of the finite ``values``; None when there are none."""
    xs = finite(values)
    n = len(xs)
    if n == 0:
        return None
    mean = statistics.fmean(xs)
    if n < 2:
        return MeanCI(mean, None, 1, None)
    from scipy import stats as sps  # imported on first use: scipy.stats takes ~1 s to import

    std = statistics.stdev(xs)
    t_crit = float(sps.t.ppf(0.5 + confidence / 2, df=n - 1))
    return MeanCI(mean, t_crit * std / math.sqrt(n), n, std)


def welch_test(
    a: Sequence[float | int | None], b: Sequence[float | int | None], alpha: float = ALPHA
) -> WelchResult | None:
    """Welch's t-test of the finite values of ``a`` against ``b``; None unless both have >= 2 values.

    When both groups have zero variance (e.g. identical epoch counts) the t statistic is undefined; the
    result is then p = 1 for equal means and p = 0 for different ones (any difference is exact, not noise).
    """
    xa, xb = finite(a), finite(b)
    if len(xa) < 2 or len(xb) < 2:
        return None
    diff = statistics.fmean(xa) - statistics.fmean(xb)
    if statistics.pvariance(xa) == 0.0 and statistics.pvariance(xb) == 0.0:
        p = 1.0 if diff == 0.0 else 0.0
        return WelchResult(math.copysign(math.inf, diff) if diff else 0.0, p, diff, len(xa), len(xb), alpha)
    from scipy import stats as sps  # deferred: scipy.stats takes ~1 s to import

    with warnings.catch_warnings():
        # Nearly identical values make scipy warn about precision loss; the p-value is still the right answer.
        warnings.simplefilter("ignore", RuntimeWarning)
        res = sps.ttest_ind(xa, xb, equal_var=False)
    return WelchResult(float(res.statistic), float(res.pvalue), diff, len(xa), len(xb), alpha)


def coefficient_of_variation(values: Sequence[float | int | None]) -> float | None:
    """Sample std / mean of the finite values (None with fewer than 2 values or a zero mean)."""
    xs = finite(values)
    if len(xs) < 2:
        return None
    mean = statistics.fmean(xs)
    if mean == 0.0:
        return None
    return statistics.stdev(xs) / abs(mean)


def epoch_time_cv(epoch_times: Sequence[float | int | None]) -> float | None:
    """Coefficient of variation of one run's epoch times, epoch 1 (warm-up) excluded; needs 3+ epochs."""
    return coefficient_of_variation(list(epoch_times)[1:])


def timing_noise(runs_epoch_times: Sequence[Sequence[float | int | None]]) -> TimingNoise | None:
    """Within-run timing variation over several runs (each a list of epoch times in epoch order)."""
    cvs = [cv for times in runs_epoch_times if (cv := epoch_time_cv(times)) is not None]
    if not cvs:
        return None
    return TimingNoise(cv_median=statistics.median(cvs), cv_max=max(cvs), runs=len(cvs))


def relative_change(value: float | None, reference: float | None) -> float | None:
    """(value - reference) / |reference| as a fraction; None when either is missing or the reference is 0."""
    if value is None or reference is None or reference == 0 or not math.isfinite(reference):
        return None
    return (value - reference) / abs(reference)
