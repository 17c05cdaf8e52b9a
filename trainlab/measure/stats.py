"""Statistics for repeated runs: intervals, tests, effect sizes, power, and timing noise.

- **Mean ± 95% CI**: the half-width is ``t(0.975, n-1) * s / sqrt(n)`` with ``s`` the sample standard deviation
  (ddof = 1) and ``t`` Student's t quantile (``scipy.stats.t``). It needs n >= 2, but the report prints it only
  from :data:`CI_MIN_N` (3) values: with two, ``t(0.975, 1) = 12.7`` and the range of the two values is shown
  instead (:func:`spread_bounds`).
- **Welch's t-test** (``scipy.stats.ttest_ind(equal_var=False)``, two-sided): compares a variant's values over
  its seeds with the baseline's, without assuming equal variances. A difference "exceeds the noise" when
  p < :data:`ALPHA`. Both groups need n >= 2. The result carries Hedges' g as its effect size.
- **Bootstrap CI of the mean** (:func:`bootstrap_ci`): ``scipy.stats.bootstrap`` of ``numpy.mean`` over the finite
  values, two-sided at :data:`CONFIDENCE`, ``n_resamples`` resamples (default 9999), method BCa (bias-corrected
  and accelerated), from ``numpy.random.default_rng(seed)`` (seed 0) so that a report is reproducible. Where BCa
  cannot be computed (scipy raises, or returns NaN as it does for a degenerate resampling distribution) the
  percentile interval (same resamples, same seed) is used; all-equal values give ``(x, x)``. It needs n >= 3:
  with two values the resampled means take only three values and the "interval" is just their range.
- **Holm–Bonferroni correction** (:func:`holm`) for a family of m tests (each variant against the baseline): with
  the p-values sorted ascending, p_(1) <= ... <= p_(m), the adjusted p-value is
  ``p~_(i) = max_{j <= i} min(1, (m - j + 1) * p_(j))``, returned in the input order. Rejecting where
  ``p~ < alpha`` (:func:`holm_reject`) keeps the family-wise error rate at most alpha for any dependence
  between the tests.
- **Paired t-test** (:func:`paired_test`, ``scipy.stats.ttest_rel``, two-sided) for variants run with the same
  seeds: the values are paired by seed (only seeds where both have a finite value), ``diff = a - b`` per
  seed, ``t = mean(diff) / (sd(diff) / sqrt(n))`` with ``n - 1`` degrees of freedom; it needs n >= 2 pairs.
  Effect size ``d_z = mean(diff) / sd(diff)`` (sd with ddof = 1). With zero spread of the differences, as for
  Welch: ``t`` and ``d_z`` are 0 with p = 1 for a zero mean difference, and ±inf with p = 0 otherwise.
- **Hedges' g** (:func:`hedges_g`) for unpaired groups: Cohen's d with the pooled standard deviation,
  ``d = (mean(a) - mean(b)) / s_p`` with ``s_p = sqrt(((n_a - 1) s_a^2 + (n_b - 1) s_b^2) / (n_a + n_b - 2))``,
  times the small-sample correction ``J = 1 - 3 / (4 (n_a + n_b) - 9)``. Both groups need n >= 2; with
  ``s_p = 0`` it is 0 for equal means and ±inf otherwise.
- **Seeds needed** (:func:`seeds_needed`, :func:`power_of`): the power of the two-sided t-test at level alpha
  for a standardised effect d is ``P(T > t_crit) + P(T < -t_crit)`` with ``T`` noncentral t
  (``scipy.stats.nct``) and ``t_crit = t(1 - alpha/2, df)``: two independent groups of n seeds each
  (pooled test): ``df = 2n - 2``, noncentrality ``d * sqrt(n/2)``; paired (same seeds) or one-sample:
  ``df = n - 1``, noncentrality ``d * sqrt(n)`` (d is then d_z). The seeds needed are the smallest n >= 2
  whose power reaches the target (0.8 by default); d = 0.5 needs 64 seeds per variant (paired: 34).
- **Timing noise with one seed**: without repeats there is no run-to-run spread to test against, so the report
  states the coefficient of variation (std / mean) of epoch times *within* each run, epoch 1 excluded (it holds
  warm-up: allocator growth, lazy initialisation, caches). Timing differences smaller than that cannot be told
  apart from noise.
"""

from __future__ import annotations

import inspect
import math
import statistics
import warnings
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

CONFIDENCE = 0.95  # two-sided confidence level of the intervals shown in tables
ALPHA = 0.05  # significance level of the tests (Welch, paired, Holm): p below it means "larger than the noise"
TEST_NAME = "Welch's two-sided t-test (unequal variances)"
PAIRED_TEST_NAME = "paired two-sided t-test (same seeds)"
POWER = 0.8  # target power of :func:`seeds_needed`
BOOTSTRAP_MIN_N = 3  # fewest finite values :func:`bootstrap_ci` gives an interval for
CI_MIN_N = 3  # fewest values a mean is shown with ± its interval: from 2, t(0.975, 1) = 12.7 makes it meaningless


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
    """Welch's t-test of ``a`` against ``b``: ``diff = mean(a) - mean(b)``; significant when p < alpha.

    ``effect_size`` is Hedges' g of ``a`` against ``b`` (:func:`hedges_g`), None when not computed.
    """

    t: float
    p: float
    diff: float
    n_a: int
    n_b: int
    alpha: float = ALPHA
    effect_size: float | None = None

    @property
    def significant(self) -> bool:
        return self.p < self.alpha


@dataclass(frozen=True)
class PairedResult:
    """Paired t-test of ``a`` against ``b`` over shared seeds: ``mean_diff = mean(a - b)``; significant when p < alpha.

    ``d_z = mean_diff / sd(a - b)`` is the paired effect size (±inf, or 0 for no difference, with zero spread).
    """

    t: float
    p: float
    mean_diff: float
    n_pairs: int
    d_z: float
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


def spread_bounds(values: Sequence[float | int | None]) -> tuple[float, float] | None:
    """What to show around a mean: its 95% t interval from :data:`CI_MIN_N` finite values, the range of the two
    values with two, None with fewer."""
    xs = finite(values)
    if len(xs) == 2:
        return (min(xs), max(xs))
    s = mean_ci(xs) if len(xs) >= CI_MIN_N else None
    return (s.low, s.high) if s is not None and s.low is not None and s.high is not None else None


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
        t = _signed_inf(diff)
        return WelchResult(t, p, diff, len(xa), len(xb), alpha, effect_size=t)
    from scipy import stats as sps  # deferred: scipy.stats takes ~1 s to import

    with warnings.catch_warnings():
        # Nearly identical values make scipy warn about precision loss; the p-value is still the right answer.
        warnings.simplefilter("ignore", RuntimeWarning)
        res = sps.ttest_ind(xa, xb, equal_var=False)
    g = _hedges_g(xa, xb)
    return WelchResult(float(res.statistic), float(res.pvalue), diff, len(xa), len(xb), alpha, effect_size=g)


def _signed_inf(x: float) -> float:
    """±inf with the sign of ``x``, 0.0 for zero: a ratio over a zero spread."""
    return math.copysign(math.inf, x) if x else 0.0


def hedges_g(a: Sequence[float | int | None], b: Sequence[float | int | None]) -> float | None:
    """Hedges' g of the finite values of ``a`` against ``b``; None unless both have >= 2 values.

    ``g = J * (mean(a) - mean(b)) / s_p`` with the pooled standard deviation
    ``s_p = sqrt(((n_a - 1) s_a^2 + (n_b - 1) s_b^2) / (n_a + n_b - 2))`` (ddof = 1 within each group) and the
    small-sample correction ``J = 1 - 3 / (4 (n_a + n_b) - 9)``. With ``s_p = 0`` it is 0 for equal means and
    ±inf otherwise.
    """
    xa, xb = finite(a), finite(b)
    if len(xa) < 2 or len(xb) < 2:
        return None
    return _hedges_g(xa, xb)


def _hedges_g(xa: list[float], xb: list[float]) -> float:
    na, nb = len(xa), len(xb)
    diff = statistics.fmean(xa) - statistics.fmean(xb)
    pooled_var = ((na - 1) * statistics.variance(xa) + (nb - 1) * statistics.variance(xb)) / (na + nb - 2)
    if pooled_var == 0.0:
        return _signed_inf(diff)
    j = 1.0 - 3.0 / (4.0 * (na + nb) - 9.0)
    return j * diff / math.sqrt(pooled_var)


def paired_test(
    a: Mapping[Hashable, float | int | None], b: Mapping[Hashable, float | int | None], alpha: float = ALPHA
) -> PairedResult | None:
    """Paired two-sided t-test (``scipy.stats.ttest_rel``) of ``a`` against ``b``, each ``{seed: value}``.

    Values are paired by seed; only seeds that both have, with a finite value in both, count. None with fewer
    than 2 pairs. ``mean_diff = mean(a - b)``, ``d_z = mean_diff / sd(a - b)`` (ddof = 1). When the differences
    have zero spread, t and d_z are 0 with p = 1 for a zero mean difference, ±inf with p = 0 otherwise.
    """
    pairs = []
    for seed in _ordered(set(a) & set(b)):
        pair = finite([a[seed], b[seed]])
        if len(pair) == 2:  # both values finite
            pairs.append(pair)
    if len(pairs) < 2:
        return None
    xa = [va for va, _ in pairs]
    xb = [vb for _, vb in pairs]
    diffs = [va - vb for va, vb in pairs]
    n = len(diffs)
    mean_diff = statistics.fmean(diffs)
    sd = statistics.stdev(diffs)
    if sd == 0.0:
        t = _signed_inf(mean_diff)
        return PairedResult(t, 1.0 if mean_diff == 0.0 else 0.0, mean_diff, n, t, alpha)
    from scipy import stats as sps  # deferred: scipy.stats takes ~1 s to import

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # precision-loss warnings for nearly equal values
        res = sps.ttest_rel(xa, xb)
    return PairedResult(float(res.statistic), float(res.pvalue), mean_diff, n, mean_diff / sd, alpha)


def _ordered(seeds: set[Hashable]) -> list[Hashable]:
    """The seeds sorted (by their text when they do not compare), so that pairing is deterministic."""
    try:
        return sorted(seeds)  # type: ignore[type-var]
    except TypeError:
        return sorted(seeds, key=repr)


def bootstrap_ci(
    values: Sequence[float | int | None], confidence: float = CONFIDENCE, n_resamples: int = 9999, seed: int = 0
) -> tuple[float, float] | None:
    """Bootstrap confidence interval ``(low, high)`` of the mean of the finite ``values``.

    ``scipy.stats.bootstrap`` of ``numpy.mean``, two-sided at ``confidence``, ``n_resamples`` resamples from
    ``numpy.random.default_rng(seed)``, method BCa; where BCa fails or gives NaN (degenerate data) the
    percentile interval with the same resamples. All-equal values give ``(x, x)``. None with fewer than
    :data:`BOOTSTRAP_MIN_N` (3) finite values: with two, the resampled means take only three values.
    """
    xs = finite(values)
    if len(xs) < BOOTSTRAP_MIN_N:
        return None
    if min(xs) == max(xs):
        return (xs[0], xs[0])
    from scipy import stats as sps  # deferred: scipy.stats takes ~1 s to import

    data = (np.asarray(xs, dtype=float),)
    # scipy >= 1.15 takes the generator as ``rng``; older versions as ``random_state`` (same stream)
    key = "rng" if "rng" in inspect.signature(sps.bootstrap).parameters else "random_state"
    for method in ("BCa", "percentile"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # DegenerateDataWarning, division warnings: the NaN says it all
            try:
                res = sps.bootstrap(
                    data,
                    np.mean,
                    n_resamples=n_resamples,
                    confidence_level=confidence,
                    method=method,
                    **{key: np.random.default_rng(seed)},
                )
            except (ValueError, FloatingPointError):
                continue
        low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
        if math.isfinite(low) and math.isfinite(high):
            return (low, high)
    return None


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm–Bonferroni step-down adjusted p-values, in the order of ``pvalues``.

    With the m p-values sorted ascending, ``p_(1) <= ... <= p_(m)``, the adjusted value of the i-th is
    ``max_{j <= i} min(1, (m - j + 1) * p_(j))`` (monotone in the sorted order, never below the raw p). Ties
    get equal adjusted values. Each p must lie in [0, 1] (NaN is refused: leave tests not run out of the family).
    """
    ps = [float(p) for p in pvalues]
    for p in ps:
        if not 0.0 <= p <= 1.0:  # also false for NaN
            raise ValueError(f"p-values must lie in [0, 1], got {p!r}")
    m = len(ps)
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(sorted(range(m), key=ps.__getitem__)):
        running = max(running, min(1.0, (m - rank) * ps[i]))
        adjusted[i] = running
    return adjusted


def holm_reject(pvalues: Sequence[float], alpha: float = ALPHA) -> list[bool]:
    """Which hypotheses the Holm–Bonferroni procedure rejects at family-wise level ``alpha``: adjusted p < alpha."""
    return [p < alpha for p in holm(pvalues)]


def power_of(effect_size: float, n: int, alpha: float = ALPHA, paired: bool = False) -> float:
    """Power of the two-sided t-test at level ``alpha`` for the standardised ``effect_size`` with ``n`` seeds.

    ``P(T > t_crit) + P(T < -t_crit)``, ``T`` noncentral t (``scipy.stats.nct``), ``t_crit = t(1 - alpha/2, df)``.
    Two independent groups of n each (``paired=False``, pooled test): ``df = 2n - 2``, noncentrality
    ``d * sqrt(n / 2)``. Paired or one-sample (``paired=True``, n pairs): ``df = n - 1``, noncentrality
    ``d * sqrt(n)``. Needs n >= 2. The sign of the effect does not matter.
    """
    if n < 2:
        raise ValueError(f"the t-test needs n >= 2, got {n}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha!r}")
    d = abs(float(effect_size))
    if math.isnan(d):
        raise ValueError("effect_size is NaN")
    if math.isinf(d):
        return 1.0
    from scipy import stats as sps  # deferred: scipy.stats takes ~1 s to import

    df, nc = (n - 1, d * math.sqrt(n)) if paired else (2 * n - 2, d * math.sqrt(n / 2))
    if nc > 1e4:  # power is 1 to double precision (already from nc ~ 1e3 at df = 1); nct can give NaN up here
        return 1.0
    t_crit = float(sps.t.ppf(1.0 - alpha / 2.0, df))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        # P(T < -t_crit) as P(T' > t_crit) with T' of noncentrality -nc: nct.cdf returns NaN far in the lower tail
        power = float(sps.nct.sf(t_crit, df, nc)) + float(sps.nct.sf(t_crit, df, -nc))
    if math.isnan(power):
        raise FloatingPointError(f"noncentral t gave NaN (df={df}, nc={nc})")
    return min(1.0, power)


def seeds_needed(
    effect_size: float, power: float = POWER, alpha: float = ALPHA, paired: bool = False, max_n: int = 1000
) -> int | None:
    """Smallest n >= 2 (seeds per variant, or pairs when ``paired``) at which :func:`power_of` reaches ``power``.

    None when ``effect_size`` is 0 (no n detects it) or when even ``max_n`` falls short. The power grows with
    n, so the answer is found by bisection.
    """
    if not 0.0 < power < 1.0:
        raise ValueError(f"power must lie in (0, 1), got {power!r}")
    if effect_size == 0 or max_n < 2 or power_of(effect_size, max_n, alpha, paired) < power:
        return None
    lo, hi = 2, max_n  # invariant: power_of(hi) >= power; the answer is in [lo, hi]
    while lo < hi:
        mid = (lo + hi) // 2
        if power_of(effect_size, mid, alpha, paired) >= power:
            hi = mid
        else:
            lo = mid + 1
    return lo


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


def relative_gap(a: float, b: float) -> float | None:
    """|a - b| as a share of the larger magnitude (0..1 for same-signed values; None when both are 0): a gap
    between two timings that does not depend on which one is the reference."""
    top = max(abs(a), abs(b))
    return abs(a - b) / top if top else None


def relative_change(value: float | None, reference: float | None) -> float | None:
    """(value - reference) / |reference| as a fraction; None when either is missing or the reference is 0."""
    if value is None or reference is None or reference == 0 or not math.isfinite(reference):
        return None
    return (value - reference) / abs(reference)
