"""Robust statistics for repeats: bootstrap CI, Holm correction, paired test, Hedges' g, seeds needed."""

from __future__ import annotations

import inspect
import itertools
import math

import numpy as np
import pytest
from scipy import stats as sps

from trainlab.measure.stats import (
    ALPHA,
    CONFIDENCE,
    WelchResult,
    bootstrap_ci,
    hedges_g,
    holm,
    holm_reject,
    paired_test,
    power_of,
    seeds_needed,
    welch_test,
)

# --- bootstrap CI -------------------------------------------------------------------------------------------

RNG_KEY = "rng" if "rng" in inspect.signature(sps.bootstrap).parameters else "random_state"  # scipy < 1.15


def _scipy_ci(xs: list[float], method: str, n_resamples: int = 9999, seed: int = 0) -> tuple[float, float]:
    res = sps.bootstrap(
        (np.asarray(xs),),
        np.mean,
        confidence_level=CONFIDENCE,
        n_resamples=n_resamples,
        method=method,
        **{RNG_KEY: np.random.default_rng(seed)},
    )
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def test_bootstrap_ci_equals_scipy_bca_with_the_same_settings_and_is_reproducible() -> None:
    xs = list(np.random.default_rng(1).normal(0.9, 0.02, size=8))
    ci = bootstrap_ci(xs)
    assert ci is not None
    assert ci == pytest.approx(_scipy_ci(xs, "BCa"), rel=1e-12)
    assert bootstrap_ci(xs) == ci  # fixed seed: the same interval every time
    assert bootstrap_ci(xs, seed=5) == pytest.approx(_scipy_ci(xs, "BCa", seed=5), rel=1e-12)
    assert ci[0] < float(np.mean(xs)) < ci[1]
    # missing values are dropped before resampling
    assert bootstrap_ci([*xs, None, float("nan"), float("inf")]) == ci


def test_bootstrap_ci_covers_the_true_mean_about_95_percent_of_the_time() -> None:
    rng = np.random.default_rng(2024)
    samples = rng.normal(loc=3.0, scale=2.0, size=(200, 20))
    covered = 0
    for row in samples:
        ci = bootstrap_ci(list(row), n_resamples=999)
        assert ci is not None
        covered += ci[0] <= 3.0 <= ci[1]
    assert 0.90 <= covered / len(samples) <= 1.0


def test_bootstrap_ci_degenerate_inputs() -> None:
    assert bootstrap_ci([]) is None
    assert bootstrap_ci([1.0, 2.0]) is None  # two values: no interval (documented minimum is 3)
    assert bootstrap_ci([1.0, 2.0, None, float("nan")]) is None
    assert bootstrap_ci([0.5, 0.5, 0.5, 0.5]) == (0.5, 0.5)
    with pytest.warns(Warning):  # what the shortcut avoids: scipy's BCa is NaN for constant data
        raw = sps.bootstrap((np.asarray([3.0, 3.0, 3.0, 3.0]),), np.mean, method="BCa", n_resamples=99)
    assert math.isnan(raw.confidence_interval.low)
    # nearly constant data: BCa still works, and stays inside the data's range
    ci = bootstrap_ci([1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 2.0], n_resamples=999)
    assert ci is not None and 1.0 <= ci[0] <= ci[1] <= 2.0


@pytest.mark.parametrize("failure", ["nan", "raise"])
def test_bootstrap_ci_falls_back_to_the_percentile_interval_when_bca_fails(
    monkeypatch: pytest.MonkeyPatch, failure: str
) -> None:
    real = sps.bootstrap

    def failing_bca(data, statistic, **kwargs):  # type: ignore[no-untyped-def]
        if kwargs["method"] == "BCa":
            if failure == "raise":
                raise ValueError("BCa cannot be computed")
            res = real(data, statistic, **kwargs)
            return type("R", (), {"confidence_interval": type(res.confidence_interval)(math.nan, math.nan)})()
        return real(data, statistic, **kwargs)

    xs = [0.91, 0.93, 0.92, 0.95, 0.90]
    monkeypatch.setattr(sps, "bootstrap", failing_bca)
    ci = bootstrap_ci(xs, n_resamples=999)
    monkeypatch.undo()
    assert ci == pytest.approx(_scipy_ci(xs, "percentile", n_resamples=999), rel=1e-12)
    assert ci != pytest.approx(_scipy_ci(xs, "BCa", n_resamples=999), rel=1e-12)


# --- Holm -------------------------------------------------------------------------------------------------


def _holm_brute_force(ps: list[float]) -> list[float]:
    """Holm's adjusted p-values straight from the definition, one hypothesis at a time."""
    m = len(ps)
    order = sorted(range(m), key=lambda i: (ps[i], i))
    rank = {i: r for r, i in enumerate(order)}  # 0-based rank in the sorted order
    return [max(min(1.0, (m - j) * ps[order[j]]) for j in range(rank[i] + 1)) for i in range(m)]


def test_holm_textbook_example() -> None:
    ps = [0.01, 0.04, 0.03, 0.005]
    # sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 = 0.04 -> max with 0.06
    assert holm(ps) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm_reject(ps) == [True, False, False, True]
    assert holm_reject(ps, alpha=0.1) == [True, True, True, True]
    assert holm([]) == [] and holm_reject([]) == []
    assert holm([0.2]) == [0.2]
    assert holm([0.6, 0.7]) == [1.0, 1.0]  # capped at 1


def test_holm_matches_brute_force_and_is_monotone_on_random_pvalues() -> None:
    rng = np.random.default_rng(7)
    for m in [1, 2, 3, 5, 8, 13]:
        for _ in range(30):
            ps = list(rng.uniform(0, 0.2, size=m) ** 2)
            if m > 2:
                ps[1] = ps[0]  # a tie
            adj = holm(ps)
            assert adj == pytest.approx(_holm_brute_force(ps), abs=1e-15)
            assert all(a >= p for a, p in zip(adj, ps))  # never below the raw p
            assert all(a <= 1.0 for a in adj)
            by_p = [adj[i] for i in sorted(range(m), key=ps.__getitem__)]
            assert all(x <= y for x, y in itertools.pairwise(by_p))  # monotone in the sorted order
            # permuting the input permutes the output
            perm = list(rng.permutation(m))
            assert holm([ps[i] for i in perm]) == pytest.approx([adj[i] for i in perm])


def test_holm_refuses_values_outside_the_unit_interval() -> None:
    for bad in (float("nan"), -0.1, 1.5):
        with pytest.raises(ValueError):
            holm([0.01, bad])


# --- paired test ------------------------------------------------------------------------------------------


def test_paired_test_equals_scipy_ttest_rel() -> None:
    rng = np.random.default_rng(3)
    base = rng.normal(0.9, 0.02, size=6)
    a = {s: float(v + 0.01 + rng.normal(0, 0.003)) for s, v in enumerate(base)}
    b = {s: float(v) for s, v in enumerate(base)}
    res = paired_test(a, b)
    ref = sps.ttest_rel([a[s] for s in range(6)], [b[s] for s in range(6)])
    assert res is not None and res.n_pairs == 6
    assert res.t == pytest.approx(ref.statistic) and res.p == pytest.approx(ref.pvalue)
    diffs = np.array([a[s] - b[s] for s in range(6)])
    assert res.mean_diff == pytest.approx(diffs.mean())
    assert res.d_z == pytest.approx(diffs.mean() / diffs.std(ddof=1))
    assert res.d_z == pytest.approx(res.t / math.sqrt(6))
    assert res.significant and res.p < ALPHA
    # Welch on the same numbers does not see it: the seed-to-seed spread hides the shift
    welch = welch_test(list(a.values()), list(b.values()))
    assert welch is not None and not welch.significant


def test_paired_test_pairs_by_seed_whatever_the_order_and_the_seed_sets() -> None:
    a = {11: 1.0, 3: 2.5, 7: 2.0, 99: 5.0, 4: float("nan")}
    b = {7: 1.5, 11: 0.7, 3: 2.0, 42: 9.0, 4: 1.0}  # 99 and 42 unpaired; seed 4 has a NaN
    res = paired_test(a, b)
    ref = sps.ttest_rel([1.0, 2.5, 2.0], [0.7, 2.0, 1.5])
    assert res is not None and res.n_pairs == 3
    assert res.t == pytest.approx(ref.statistic) and res.p == pytest.approx(ref.pvalue)
    assert res.mean_diff == pytest.approx((0.3 + 0.5 + 0.5) / 3)
    flipped = paired_test(b, a)
    assert flipped is not None and flipped.t == pytest.approx(-res.t) and flipped.p == pytest.approx(res.p)


def test_paired_test_needs_two_pairs_and_handles_zero_spread() -> None:
    assert paired_test({1: 1.0, 2: 2.0}, {1: 1.0, 3: 2.0}) is None
    assert paired_test({1: 1.0, 2: None}, {1: 1.0, 2: 2.0}) is None
    assert paired_test({}, {}) is None
    same = paired_test({1: 3.0, 2: 4.0}, {1: 3.0, 2: 4.0})
    assert same is not None and same.p == 1.0 and same.t == 0.0 and same.d_z == 0.0 and not same.significant
    shifted = paired_test({1: 3.5, 2: 4.5}, {1: 3.0, 2: 4.0})  # every seed exactly 0.5 better
    assert shifted is not None and shifted.p == 0.0 and shifted.significant
    assert shifted.t == math.inf and shifted.d_z == math.inf and shifted.mean_diff == pytest.approx(0.5)


# --- Hedges' g --------------------------------------------------------------------------------------------


def test_hedges_g_against_the_direct_formula() -> None:
    a, b = [2.0, 4.0, 6.0, 8.0], [1.0, 2.0, 3.0]
    # means 5 and 2; variances 20/3 and 1; pooled var = (3*20/3 + 2*1) / 5 = 22/5; J = 1 - 3/(4*7 - 9) = 16/19
    expected = (16 / 19) * 3.0 / math.sqrt(22 / 5)
    assert hedges_g(a, b) == pytest.approx(expected)
    assert hedges_g(b, a) == pytest.approx(-expected)
    rng = np.random.default_rng(11)
    xa, xb = rng.normal(1.0, 1.0, 12), rng.normal(0.0, 2.0, 9)
    sp = math.sqrt((11 * xa.var(ddof=1) + 8 * xb.var(ddof=1)) / 19)
    assert hedges_g(list(xa), list(xb)) == pytest.approx((1 - 3 / (4 * 21 - 9)) * (xa.mean() - xb.mean()) / sp)


def test_hedges_g_edge_cases_and_welch_carries_it() -> None:
    assert hedges_g([1.0], [1.0, 2.0]) is None
    assert hedges_g([1.0, None, float("nan")], [1.0, 2.0]) is None
    assert hedges_g([1.0, 1.0], [1.0, 1.0]) == 0.0
    assert hedges_g([2.0, 2.0], [1.0, 1.0]) == math.inf
    a, b = [0.95, 0.96, 0.955, 0.962], [0.90, 0.91, 0.905, 0.899]
    res = welch_test(a, b)
    assert res is not None and res.effect_size == pytest.approx(hedges_g(a, b))
    zero = welch_test([2.0, 2.0], [1.0, 1.0])
    assert zero is not None and zero.effect_size == math.inf
    # constructor calls without the new field still work
    old = WelchResult(1.0, 0.5, 0.1, 3, 3)
    assert old.effect_size is None and old.alpha == ALPHA and not old.significant


# --- power and seeds needed -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("d", "paired", "n"),
    [(0.5, False, 64), (0.8, False, 26), (0.2, False, 394), (0.5, True, 34), (-0.5, False, 64)],
)
def test_seeds_needed_textbook_values(d: float, paired: bool, n: int) -> None:
    assert seeds_needed(d, power=0.8, alpha=0.05, paired=paired) == n
    assert power_of(d, n, 0.05, paired) >= 0.8 > power_of(d, n - 1, 0.05, paired)


def test_power_of_against_a_direct_noncentral_t_computation() -> None:
    n, d = 10, 0.7
    df, nc = 18, d * math.sqrt(n / 2)
    tc = sps.t.ppf(0.975, df)
    assert power_of(d, n) == pytest.approx(sps.nct.sf(tc, df, nc) + sps.nct.cdf(-tc, df, nc))
    df, nc = 9, d * math.sqrt(n)
    tc = sps.t.ppf(0.975, df)
    assert power_of(d, n, paired=True) == pytest.approx(sps.nct.sf(tc, df, nc) + sps.nct.cdf(-tc, df, nc))
    assert power_of(0.0, 10) == pytest.approx(ALPHA)  # no effect: the test rejects at its level
    assert power_of(math.inf, 2) == 1.0
    with pytest.raises(ValueError):
        power_of(0.5, 1)


@pytest.mark.parametrize("paired", [False, True])
def test_seeds_needed_is_the_smallest_n_reaching_the_power(paired: bool) -> None:
    for d, power, alpha in [(0.3, 0.8, 0.05), (1.2, 0.9, 0.01), (2.0, 0.8, 0.05), (0.6, 0.95, 0.05)]:
        n = seeds_needed(d, power=power, alpha=alpha, paired=paired)
        assert n is not None and n >= 2
        assert power_of(d, n, alpha, paired) >= power
        assert n == 2 or power_of(d, n - 1, alpha, paired) < power


def test_seeds_needed_none_when_out_of_reach() -> None:
    assert seeds_needed(0.0) is None
    assert seeds_needed(0.05) is None  # needs ~6280 per group, more than max_n
    assert seeds_needed(0.05, max_n=10_000) == 6281
    assert seeds_needed(0.5, max_n=63) is None and seeds_needed(0.5, max_n=64) == 64
    assert seeds_needed(1e6) == 2 and seeds_needed(math.inf) == 2
    with pytest.raises(ValueError):
        seeds_needed(0.5, power=1.0)
