"""A variant against the baseline over seeds: the test that fits (paired or Welch), Holm-adjusted over the family
of variants compared with the baseline on one metric, with its effect size (docs/measurements.md, statistics)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from trainlab.measure.stats import ALPHA, PAIRED_TEST_NAME, TEST_NAME, holm, paired_test, seeds_needed, welch_test

if TYPE_CHECKING:
    from trainlab.report.study import VariantView


@dataclass(frozen=True)
class Comparison:
    """A variant against the baseline on one metric, over seeds (docs/measurements.md, statistics)."""

    test: str  # the test's name: paired t-test (same seeds) or Welch's
    p: float  # the test's own two-sided p-value
    p_adjusted: float  # Holm-adjusted over the variants compared with the baseline on this metric
    diff: float  # variant - baseline: difference of means, or mean of the per-seed differences when paired
    effect_size: float | None  # d_z when paired, else Hedges' g
    n: int  # pairs, or the smaller group's seeds
    paired: bool
    family: int  # comparisons in the Holm family
    alpha: float = ALPHA

    @property
    def significant(self) -> bool:
        """Larger than the noise: the Holm-adjusted p below alpha."""
        return self.p_adjusted < self.alpha

    @property
    def p_text(self) -> str:
        """E.g. ``paired t-test p = 0.012, Holm-adjusted 0.036``."""
        name = "paired t-test" if self.paired else "Welch"
        text = f"{name} p = {self.p:.2g}"
        return text + (f", Holm-adjusted {self.p_adjusted:.2g}" if self.family > 1 else "")

    def seeds_needed(self) -> int | None:
        """Seeds per variant at which this effect size would be detected with 80% power (None: no effect)."""
        if self.effect_size is None or not math.isfinite(self.effect_size) or self.effect_size == 0:
            return None
        return seeds_needed(abs(self.effect_size), paired=self.paired)


def compare_with_baseline(variants: Sequence[VariantView], base: VariantView | None, key: str) -> dict[str, Comparison]:
    """Every variant (by name) against ``base`` on ``key``: a paired t-test when the two ran the same seeds, else
    Welch's; variants without 2+ seeds on both sides are left out. p-values Holm-adjusted together."""
    raw: dict[str, tuple[str, float, float, float | None, int, bool]] = {}
    if base is not None:
        base_by_seed = {r.seed: r.value(key) for r in base.done}
        for v in variants:
            if v is base:
                continue
            by_seed = {r.seed: r.value(key) for r in v.done}
            paired = paired_test(by_seed, base_by_seed) if set(by_seed) == set(base_by_seed) else None
            if paired is not None:
                raw[v.name] = (PAIRED_TEST_NAME, paired.p, paired.mean_diff, paired.d_z, paired.n_pairs, True)
                continue
            w = welch_test(v.values(key), base.values(key))
            if w is not None:
                raw[v.name] = (TEST_NAME, w.p, w.diff, w.effect_size, min(w.n_a, w.n_b), False)
    adjusted = holm([r[1] for r in raw.values()]) if raw else []
    return {
        name: Comparison(test, p, adj, diff, eff, n, paired, len(raw))
        for (name, (test, p, diff, eff, n, paired)), adj in zip(raw.items(), adjusted, strict=True)
    }


__all__ = ["Comparison", "compare_with_baseline"]
