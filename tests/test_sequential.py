"""Seeds until settled: the group-sequential rule keeps its error rate over repeated looks (by simulation of
studies drawn from a seed-noise model), resolves a real difference early, and never calls identical variants
different."""

from __future__ import annotations

import math

import numpy as np
import pytest

from trainlab.measure.sequential import decide, interval, look_sizes

MAX = 10
SIGMA = 0.01  # seed-to-seed standard deviation of each variant's accuracy (1 point)


def _run_study(rng: np.random.Generator, delta: float, margin: float = 0.0, paired: bool = True):
    """One synthetic study: per seed, a shared seed effect (paired designs share the seed's data order and
    initialisation) plus each variant's own noise; seeds are added look by look until the rule settles."""
    seed_effect = rng.normal(0, SIGMA, MAX)
    a = 0.9 + delta + (seed_effect if paired else 0) * 0.5 + rng.normal(0, SIGMA, MAX)
    b = 0.9 + (seed_effect if paired else 0) * 0.5 + rng.normal(0, SIGMA, MAX)
    for n in look_sizes(MAX):
        d = decide(a[:n], b[:n], max_repeats=MAX, margin=margin, paired=paired)
        if d.settled:
            return d, n
    raise AssertionError("the last look always settles")


@pytest.mark.parametrize("paired", [True, False])
def test_with_no_true_difference_at_most_5_percent_of_studies_declare_one(paired: bool) -> None:
    rng = np.random.default_rng(0)
    studies = 4000
    declared = sum(_run_study(rng, 0.0, paired=paired)[0].outcome == "different" for _ in range(studies))
    rate = declared / studies
    mc_error = math.sqrt(0.05 * 0.95 / studies)  # the Monte-Carlo standard error at the nominal rate
    assert rate <= 0.05 + 2 * mc_error, f"{rate:.4f} of null studies declared a difference"
    # Uncorrected repeated looks at 5% each would declare far more: the correction is doing the work.
    naive = 0
    for _ in range(1000):
        a, b = rng.normal(0, SIGMA, MAX), rng.normal(0, SIGMA, MAX)
        naive += any(
            (iv := interval(a[:n], b[:n], 0.95, paired)) is not None and (iv.low > 0 or iv.high < 0)
            for n in look_sizes(MAX)
        )
    assert naive / 1000 > rate


def test_a_difference_of_two_standard_deviations_resolves_before_the_maximum() -> None:
    rng = np.random.default_rng(1)
    results = [_run_study(rng, 2 * SIGMA) for _ in range(1000)]
    seeds = [n for _, n in results]
    assert np.mean(seeds) < MAX
    assert sum(d.outcome == "different" and d.interval.diff > 0 for d, _ in results) / len(results) > 0.8
    assert not any(d.outcome == "different" and d.interval.diff < 0 for d, _ in results)


def test_identical_variants_are_equivalent_or_unresolved_never_different() -> None:
    same = [0.91, 0.93, 0.92, 0.90, 0.94]
    d = decide(same[:3], same[:3], max_repeats=MAX, margin=0.005)
    assert d.outcome == "equivalent" and d.look == 1 and d.looks == len(look_sizes(MAX))
    assert decide(same[:3], same[:3], max_repeats=MAX).outcome == "continue"  # no margin: nothing to settle yet
    assert decide(same + same, same + same, max_repeats=MAX).outcome == "unresolved"
    # Two names for one config whose runs still differ (nondeterministic kernels): noise only, so mostly
    # equivalent within a margin of 3 sigma, and "different" no more often than the error rate allows.
    rng = np.random.default_rng(2)
    outcomes = [_run_study(rng, 0.0, margin=3 * SIGMA)[0].outcome for _ in range(1000)]
    assert outcomes.count("equivalent") > 800 and outcomes.count("different") <= 50 + 2 * math.sqrt(1000 * 0.05)


def test_a_quantised_difference_without_spread_is_no_evidence() -> None:
    a, b = [0.625, 0.5, 0.75], [0.5, 0.375, 0.625]  # 8 test samples: every seed one sample apart
    assert decide(a, b, max_repeats=MAX, margin=0.5).outcome == "continue"


def test_the_looks_and_the_interval() -> None:
    assert look_sizes(10) == (3, 5, 7, 9, 10) and look_sizes(3) == (3,) and look_sizes(6) == (3, 5, 6)
    with pytest.raises(ValueError, match="at least"):
        look_sizes(2)
    iv = interval([1.0, 2.0, 3.0], [0.0, 0.0, 0.0], 0.95, paired=True)
    assert iv is not None and iv.diff == 2.0 and iv.low == pytest.approx(2 - 4.302653 / math.sqrt(3), rel=1e-5)
    assert interval([1.0], [2.0], 0.95, paired=False) is None
    # a look between two planned ones is read as the earlier one; past the last it never continues
    assert decide([0.1, 0.2, 0.3, 0.2], [0.1, 0.25, 0.2, 0.3], max_repeats=MAX).look == 1


def test_probability_of_improvement() -> None:
    from trainlab.measure.improvement import probability_of_improvement

    p, low, high = probability_of_improvement([3.0, 2.0, 5.0, 1.0], [1.0, 2.0, 4.0, 2.0], paired=True)
    assert p == pytest.approx((1 + 0.5 + 1 + 0) / 4) and 0 <= low <= p <= high <= 1
    same = [0.9, 0.8, 0.7]
    assert probability_of_improvement(same, same, paired=True) == (0.5, 0.5, 0.5)  # all ties: one half
    # unpaired: the share of the n x m pairs, the Mann-Whitney U over n m
    p, _, _ = probability_of_improvement([1.0, 2.0, 3.0], [0.0, 2.0, 4.0], paired=False)
    assert p == pytest.approx((1 + 1.5 + 2) / 9)
    assert probability_of_improvement([1.0, 2.0], [0.0, 1.0], paired=True) is None  # too few seeds
    # three seeds that all win: the bootstrap alone says 1.00-1.00; three seeds cannot, and the interval says so
    p, low, high = probability_of_improvement([2.0, 3.0, 4.0], [1.0, 2.0, 3.0], paired=True)
    assert p == 1.0 and high == 1.0 and 0.4 < low < 0.5  # Wilson, 3 of 3: 0.44
    p, low, high = probability_of_improvement([5.0] * 10, [1.0] * 10, paired=False)
    assert p == 1.0 and 0.65 < low < 0.75  # Wilson, 10 of 10: 0.72
    again = probability_of_improvement([3.0, 2.0, 5.0, 1.0], [1.0, 2.0, 4.0, 2.0], paired=True)
    assert again == probability_of_improvement([3.0, 2.0, 5.0, 1.0], [1.0, 2.0, 4.0, 2.0], paired=True)
