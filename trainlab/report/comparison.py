"""The report's one comparison rule: the test that fits (paired or Welch), Holm-adjusted over the family of
comparisons the report makes for a figure, with its effect size (docs/measurements.md, statistics).

Every sentence or mark that judges a difference — the verdict, the tables' ``*``, the best-variant and
significance findings, ``trainlab compare`` — reads a :class:`Comparison` made here:

- :func:`compare_groups` is the rule for one pair: each side is a :data:`Group` ``{pairing key: value}`` (the key is
  the seed; across grid cells ``(other factors, seed)``). A paired t-test when both sides have the same keys,
  else Welch's; None without 2+ finite values on both sides, and None for a quantised figure (counts, epochs)
  whose values do not vary within either side: equal integers show no noise, so they are no evidence of none.
- :func:`judge` runs it over a family of pairs and Holm-adjusts their p-values together.
- :func:`figure_family` is the family of one figure of a study: every variant against the baseline, and the
  best against the worst variant (the pair the verdict and the ▲/▼ marks speak of) when that is not already one.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, TypeVar

from trainlab.measure.metrics import BY_KEY
from trainlab.measure.stats import (
    ALPHA,
    PAIRED_TEST_NAME,
    TEST_NAME,
    finite,
    holm,
    paired_test,
    seeds_needed,
    welch_test,
)
from trainlab.report.settle import auto_settings, settling

if TYPE_CHECKING:
    from trainlab.report.study import StudyView, VariantView

Group = Mapping[Hashable, float | None]  # one side of a comparison: {pairing key (the seed): value}
K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True)
class Comparison:
    """One side against another on one metric, over seeds (docs/measurements.md, statistics)."""

    test: str  # the test's name: paired t-test (same seeds) or Welch's
    p: float  # the test's own two-sided p-value
    p_adjusted: float  # Holm-adjusted over the family of comparisons made for this figure
    diff: float  # a - b: difference of means, or mean of the per-seed differences when paired
    effect_size: float | None  # d_z when paired, else Hedges' g
    n: int  # pairs, or the smaller group's seeds
    paired: bool
    family: int  # comparisons in the Holm family
    alpha: float = ALPHA
    # The seeds-until-settled rule's outcome for this pair (repeats = "auto"; trainlab.report.settle), or None.
    # Its seeds were added until it settled, so a fixed-sample test of them is no longer valid: this judges.
    settled: str | None = None

    @property
    def significant(self) -> bool:
        """Larger than the noise: the Holm-adjusted p below alpha, or, for the pair a ``repeats = "auto"``
        study settled, that rule's verdict ``different``."""
        if self.settled is not None:
            return self.settled == "different"
        return self.p_adjusted < self.alpha

    @property
    def p_text(self) -> str:
        """E.g. ``paired t-test p = 0.012, Holm-adjusted 0.036``."""
        name = "paired t-test" if self.paired else "Welch"
        text = f"{name} p = {self.p:.2g}"
        text += f", Holm-adjusted {self.p_adjusted:.2g}" if self.family > 1 else ""
        return text + (f"; judged by the seeds-until-settled rule: {self.settled}" if self.settled else "")

    def flipped(self) -> Comparison:
        """The same test read the other way round (b against a)."""
        eff = None if self.effect_size is None else -self.effect_size
        return replace(self, diff=-self.diff, effect_size=eff)

    def seeds_needed(self) -> int | None:
        """Seeds per variant at which this effect size would be detected with 80% power (None: no effect)."""
        if self.effect_size is None or not math.isfinite(self.effect_size) or self.effect_size == 0:
            return None
        return seeds_needed(abs(self.effect_size), paired=self.paired)


def no_spread(values: Sequence[float | int | None]) -> bool:
    """All finite values equal (2 or more of them)."""
    xs = finite(values)
    return len(xs) >= 2 and statistics.pvariance(xs) == 0.0


def compare_groups(a: Group, b: Group, quantised: bool = False) -> Comparison | None:
    """The rule for one pair, unadjusted (``family = 1``): a paired t-test when ``a`` and ``b`` have the same
    pairing keys, else Welch's; None without 2+ finite values on each side, or for a ``quantised`` figure
    whose values do not vary within either side."""
    if quantised and no_spread(list(a.values())) and no_spread(list(b.values())):
        return None
    paired = paired_test(a, b) if set(a) == set(b) else None
    if paired is not None:
        return Comparison(PAIRED_TEST_NAME, paired.p, paired.p, paired.mean_diff, paired.d_z, paired.n_pairs, True, 1)
    w = welch_test(list(a.values()), list(b.values()))
    if w is None:
        return None
    return Comparison(TEST_NAME, w.p, w.p, w.diff, w.effect_size, min(w.n_a, w.n_b), False, 1)


def judge(pairs: Mapping[K, tuple[Group, Group]], quantised: bool = False) -> dict[K, Comparison]:
    """:func:`compare_groups` over every pair, p-values Holm-adjusted together over the pairs that could be tested."""
    raw = {k: t for k, (a, b) in pairs.items() if (t := compare_groups(a, b, quantised)) is not None}
    adjusted = holm([t.p for t in raw.values()]) if raw else []
    return {k: replace(t, p_adjusted=adj, family=len(raw)) for (k, t), adj in zip(raw.items(), adjusted, strict=True)}


def seed_group(v: VariantView, key: str) -> dict[Hashable, float | None]:
    """A variant's figure per seed over its finished runs."""
    return v.per_seed(key)


@dataclass(frozen=True)
class Family:
    """The comparisons made for one figure, by ``(variant, reference)``, Holm-adjusted together."""

    comparisons: dict[tuple[str, str], Comparison]
    baseline: str | None

    def vs_baseline(self, name: str) -> Comparison | None:
        return self.comparisons.get((name, self.baseline)) if self.baseline is not None else None

    def pair(self, a: str, b: str) -> Comparison | None:
        """``a`` against ``b``, read either way round from the family."""
        if (a, b) in self.comparisons:
            return self.comparisons[(a, b)]
        c = self.comparisons.get((b, a))
        return c.flipped() if c is not None else None


def extremes(variants: Sequence[VariantView], key: str) -> tuple[VariantView, VariantView] | None:
    """The best and the worst variant by their mean of ``key`` (None without a direction or two means)."""
    m = BY_KEY.get(key)
    means = [(v, mean) for v in variants if (mean := v.mean(key)) is not None]
    if m is None or m.better is None or len(means) < 2:
        return None
    pick = (max, min) if m.better == "higher" else (min, max)
    best, worst = (f(means, key=lambda vm: vm[1])[0] for f in pick)
    return (best, worst) if best is not worst else None


def figure_family(variants: Sequence[VariantView], base: VariantView | None, key: str) -> Family:
    """Every variant against ``base`` and the best against the worst variant on ``key``, by :func:`judge`."""
    pairs: dict[tuple[str, str], tuple[Group, Group]] = {}
    if base is not None:
        ref = seed_group(base, key)
        pairs = {(v.name, base.name): (seed_group(v, key), ref) for v in variants if v is not base}
    ends = extremes(variants, key)
    if ends is not None and base not in ends:
        best, worst = ends
        pairs[(best.name, worst.name)] = (seed_group(best, key), seed_group(worst, key))
    m = BY_KEY.get(key)
    return Family(judge(pairs, quantised=m is not None and m.quantised), base.name if base is not None else None)


def family_of(study: StudyView, key: str) -> Family:
    """:func:`figure_family` of ``study``'s variants and baseline on ``key`` (memoised on the study). In a
    ``repeats = "auto"`` study the pair its rule settled is judged by that rule on the figure it read."""
    cache = study.__dict__.setdefault("_figure_families", {})
    if key not in cache:
        fam = figure_family(study.variants, study.baseline, key)
        auto = auto_settings(study)
        s = settling(study, *auto) if auto is not None else None
        if s is not None and s.key == key:
            fam = Family(
                {
                    pair: replace(c, settled=s.decision.outcome) if set(pair) == {s.best, s.worst} else c
                    for pair, c in fam.comparisons.items()
                },
                fam.baseline,
            )
        cache[key] = fam
    return cache[key]


def compare_with_baseline(variants: Sequence[VariantView], base: VariantView | None, key: str) -> dict[str, Comparison]:
    """Every variant (by name) against ``base`` on ``key``, read from the figure's family (:func:`figure_family`):
    a paired t-test when the two ran the same seeds, else Welch's; pairs without 2+ seeds on both sides are left
    out."""
    fam = figure_family(variants, base, key)
    return {v.name: c for v in variants if (c := fam.vs_baseline(v.name)) is not None}


__all__ = [
    "Comparison",
    "Family",
    "Group",
    "compare_groups",
    "compare_with_baseline",
    "family_of",
    "figure_family",
    "judge",
]
