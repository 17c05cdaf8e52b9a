"""Statistics for repeats: mean ± t-interval, Welch's t-test, within-run timing variation."""

from __future__ import annotations

import math

import pytest
from scipy import stats as sps

from trainlab.measure.stats import (
    ALPHA,
    CONFIDENCE,
    coefficient_of_variation,
    epoch_time_cv,
    finite,
    mean_ci,
    relative_change,
    timing_noise,
    welch_test,
)


def test_mean_ci_matches_the_t_distribution_by_hand() -> None:
    # 1..5: mean 3, sample std sqrt(2.5), t(0.975, df=4) = 2.7764451...
    ci = mean_ci([1, 2, 3, 4, 5])
    assert ci is not None and ci.n == 5
    assert ci.mean == pytest.approx(3.0)
    assert ci.std == pytest.approx(math.sqrt(2.5))
    assert ci.half_width == pytest.approx(2.7764451 * math.sqrt(2.5) / math.sqrt(5), rel=1e-6)
    assert (ci.low, ci.high) == pytest.approx((3 - ci.half_width, 3 + ci.half_width))
    lo, hi = sps.t.interval(CONFIDENCE, df=4, loc=3.0, scale=sps.sem([1, 2, 3, 4, 5]))
    assert (ci.low, ci.high) == pytest.approx((lo, hi))


def test_mean_ci_with_one_value_has_no_interval_and_ignores_missing_values() -> None:
    one = mean_ci([0.9, None, float("nan")])
    assert one is not None and one.n == 1 and one.mean == 0.9 and one.half_width is None and one.low is None
    assert mean_ci([]) is None
    assert mean_ci([None, float("inf")]) is None
    assert finite([1, True, None, 2.5, float("nan"), "x"]) == [1.0, 2.5]  # booleans are not numbers


def test_welch_matches_scipy_and_flags_a_real_difference() -> None:
    a, b = [0.95, 0.96, 0.955, 0.962], [0.90, 0.91, 0.905, 0.899]
    res = welch_test(a, b)
    ref = sps.ttest_ind(a, b, equal_var=False)
    assert res is not None
    assert res.p == pytest.approx(ref.pvalue) and res.t == pytest.approx(ref.statistic)
    assert res.diff == pytest.approx(sum(a) / 4 - sum(b) / 4)
    assert res.significant and res.p < ALPHA


def test_welch_says_noise_for_overlapping_groups() -> None:
    res = welch_test([1.0, 1.2, 0.9, 1.1], [1.05, 0.95, 1.15, 1.0])
    assert res is not None and not res.significant and res.p > 0.5


def test_welch_needs_two_values_per_group_and_handles_zero_variance() -> None:
    assert welch_test([1.0], [1.0, 2.0]) is None
    assert welch_test([1.0, None], [1.0, 2.0]) is None
    same = welch_test([3, 3, 3], [3, 3])
    assert same is not None and same.p == 1.0 and not same.significant
    differ = welch_test([3, 3, 3], [4, 4])
    assert differ is not None and differ.p == 0.0 and differ.significant and differ.diff == -1


def test_epoch_time_cv_leaves_out_the_warm_up_epoch() -> None:
    assert epoch_time_cv([10.0, 1.0, 1.0, 1.0]) == 0.0  # epoch 1 (warm-up) is 10x slower: excluded
    times = [5.0, 1.0, 1.1, 0.9]
    later = times[1:]
    mean = sum(later) / 3
    std = math.sqrt(sum((t - mean) ** 2 for t in later) / 2)
    assert epoch_time_cv(times) == pytest.approx(std / mean)
    assert epoch_time_cv([1.0, 2.0]) is None  # one epoch after the first: no variation to measure
    assert coefficient_of_variation([0.0, 0.0]) is None


def test_timing_noise_is_the_median_over_runs_with_enough_epochs() -> None:
    noise = timing_noise([[9, 1.0, 1.0, 1.0], [9, 1.0, 1.2, 0.8], [9, 1.0, 1.1, 0.9], [1.0, 1.0]])
    assert noise is not None and noise.runs == 3
    assert noise.cv_median == pytest.approx(epoch_time_cv([9, 1.0, 1.1, 0.9]))
    assert noise.cv_max == pytest.approx(epoch_time_cv([9, 1.0, 1.2, 0.8]))
    assert timing_noise([[1.0, 2.0]]) is None


def test_relative_change() -> None:
    assert relative_change(110, 100) == pytest.approx(0.10)
    assert relative_change(90, -100) == pytest.approx(1.9)  # relative to |reference|
    assert relative_change(1, 0) is None and relative_change(None, 1) is None
