"""Seeds until settled, read from the store: which pair a ``repeats = "auto"`` study settles, where its rule
stands (:mod:`trainlab.measure.sequential`), and the sentence the verdict ends with (the ``settled`` rule).

The pair is the verdict's: the best and the worst finished variant on the figure the verdict judges (the
study's quality metric, read on validation when there is a validation split). Choosing the pair from the data
is itself a comparison among all ``k`` variants, so the rule runs at ``alpha / (k (k - 1) / 2)``: Bonferroni over
the pairs it could have picked, on top of the spending over the looks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from trainlab.measure.improvement import probability_of_improvement
from trainlab.measure.metrics import BY_KEY
from trainlab.measure.sequential import Decision, decide, look_sizes
from trainlab.measure.stats import ALPHA
from trainlab.report import anchors
from trainlab.report.finding import Finding, metric_label, rounded

if TYPE_CHECKING:  # the study view imports the comparison rule, which asks this module about settled pairs
    from trainlab.report.study import StudyView, VariantView


@dataclass(frozen=True)
class Settling:
    """Where a ``repeats = "auto"`` study stands: the pair, the figure and the rule's decision."""

    key: str  # the figure compared (e.g. val_acc)
    best: str
    worst: str
    decision: Decision
    alpha: float  # the rule's overall level for this pair (after the correction over pairs)
    max_repeats: int
    a: tuple[float, ...] = ()  # the best variant's values the rule read (paired by seed when ``paired``)
    b: tuple[float, ...] = ()  # the worst variant's
    paired: bool = True

    def next_seeds(self) -> int | None:
        """Seeds per variant the pair needs for the next look; None once settled."""
        if self.decision.settled:
            return None
        n = self.decision.interval.n if self.decision.interval is not None else 0
        sizes = look_sizes(self.max_repeats)
        return next((s for s in sizes if s > n), sizes[-1])


def auto_settings(study: StudyView) -> tuple[int, float] | None:
    """``(max_repeats, margin)`` of a ``repeats = "auto"`` study; None for any other."""
    meta: dict[str, Any] = study.meta_study or {}
    if meta.get("repeats") != "auto":
        return None
    return int(meta.get("max_repeats") or 10), float(meta.get("margin") or 0.0)


def settling(study: StudyView, max_repeats: int, margin: float) -> Settling | None:
    """The rule's decision on the verdict's pair; None with fewer than two finished variants or no values
    (memoised on the study: every figure's comparison family and the verdict ask)."""
    cache = study.__dict__.setdefault("_settling", {})
    if (max_repeats, margin) not in cache:
        cache[(max_repeats, margin)] = _settling(study, max_repeats, margin)
    return cache[(max_repeats, margin)]


def _settling(study: StudyView, max_repeats: int, margin: float) -> Settling | None:
    pair = best_and_worst(study)
    if pair is None:
        return None
    key, best, worst = pair
    scored = [v for v in study.variants if v.done and v.mean(key) is not None]
    a, b, paired = sides(best, worst, key)
    pairs = len(scored) * (len(scored) - 1) // 2  # every pair the rule could have picked
    alpha = ALPHA / pairs
    decision = decide(a, b, max_repeats=max_repeats, margin=margin, alpha=alpha, paired=paired)
    return Settling(key, best.name, worst.name, decision, alpha, max_repeats, tuple(a), tuple(b), paired)


def sides(best: VariantView, worst: VariantView, key: str) -> tuple[list[float], list[float], bool]:
    """The two sides' values: paired on the seeds both finished when they share seeds, else each on its own."""
    ga = {s: v for s, v in best.per_seed(key).items() if v is not None}
    gb = {s: v for s, v in worst.per_seed(key).items() if v is not None}
    common = sorted(set(ga) & set(gb), key=str)
    if len(common) >= 2:
        return [ga[s] for s in common], [gb[s] for s in common], True
    return list(ga.values()), list(gb.values()), False


def improvement_text(
    best: str, worst: str, key: str, a: list[float], b: list[float], paired: bool
) -> tuple[str, tuple[float, float, float] | None]:
    """The sentence (with a leading space; empty with fewer than 3 seeds a side) giving how often ``best`` does
    better than ``worst`` on ``key`` on a seed — rliable's probability of improvement — with its interval."""
    sign = -1.0 if BY_KEY[key].better == "lower" else 1.0  # the function reads higher as better
    poi = probability_of_improvement([sign * x for x in a], [sign * x for x in b], paired)
    if poi is None:
        return "", None
    on = "a seed" if paired else "a pair of seeds"
    return (f" Probability that {best} does better than {worst} on {metric_label(key)} on {on}: {poi[0]:.2f}"
            f" (95% interval {poi[1]:.2f}–{poi[2]:.2f})."), poi  # fmt: skip


def best_and_worst(study: StudyView) -> tuple[str, VariantView, VariantView] | None:
    """The key the verdict chooses by and its best and worst finished variants (None with fewer than two)."""
    key = study.choice_key(study.quality_key)
    scored = [(v, m) for v in study.variants if v.done and (m := v.mean(key)) is not None]
    if len(scored) < 2:
        return None
    ranked = sorted(scored, key=lambda vm: vm[1], reverse=BY_KEY[key].better == "higher")
    return key, ranked[0][0], ranked[-1][0]


def settled(study: StudyView) -> list[Finding]:
    """The ``settled`` rule, told at the end of the verdict: how the seeds-until-settled rule ended."""
    auto = auto_settings(study)
    if auto is None:
        return []
    s = settling(study, *auto)
    if s is None or s.decision.interval is None:
        return []
    d, iv = s.decision, s.decision.interval
    label = metric_label(s.key)
    scale, unit = (100.0, " points") if BY_KEY[s.key].unit == "%" else (1.0, "")
    lo, hi = iv.low * scale, iv.high * scale
    span = f"{iv.diff * scale:+.2f}{unit} ({iv.level * 100:.1f}% interval {lo:+.2f} to {hi:+.2f})"
    how = (f"seeds added until settled, alpha = {s.alpha:.3g} spent over at most {s.decision.looks} looks"
           f" (Bonferroni; docs/measurements.md)")  # fmt: skip
    if d.outcome == "different":
        text = f"Settled after {iv.n} seeds: {s.best} beats {s.worst} on {label} by {span}; {how}."
    elif d.outcome == "equivalent":
        text = (f"Settled after {iv.n} seeds: {s.best} and {s.worst} are equivalent within ±{d.margin * scale:g}{unit}"
                f" on {label}: {span}; {how}.")  # fmt: skip
    elif d.outcome == "unresolved":
        text = (f"Unresolved after {iv.n} seeds (max_repeats): {s.best} vs {s.worst} on {label} is {span}, which"
                f" neither excludes 0 nor lies within the margin; {how}.")  # fmt: skip
    else:
        text = f"Not settled yet at {iv.n} seeds ({s.best} vs {s.worst} on {label}: {span}); the study adds seeds."
    said, poi = improvement_text(s.best, s.worst, s.key, s.a, s.b, s.paired)
    text += said
    figures = {"settle_outcome": d.outcome, "settle_seeds": iv.n, "settle_diff": rounded(iv.diff),
               "settle_low": rounded(iv.low), "settle_high": rounded(iv.high),
               "settle_pair": [s.best, s.worst],
               "settle_p_improvement": rounded(poi[0]) if poi else None}  # fmt: skip
    return [Finding("settled", "info", text, figures, anchors.COMPARISON)]


__all__ = ["Settling", "auto_settings", "best_and_worst", "improvement_text", "settled", "settling", "sides"]
