"""Significance findings (each variant against the baseline, with repeats) and the noise finding: what the
noise allows. Both read the report's one comparison rule (:mod:`trainlab.report.comparison`)."""

from __future__ import annotations

import math
from typing import Any

from trainlab.measure.format import fmt_delta, fmt_value
from trainlab.measure.metrics import BY_KEY, Metric
from trainlab.measure.stats import ALPHA, PAIRED_TEST_NAME, TEST_NAME
from trainlab.report import anchors
from trainlab.report.comparison import Comparison, family_of
from trainlab.report.finding import Finding, figure_text, metric_label, rounded
from trainlab.report.nondeterminism import performance_only_study
from trainlab.report.study import StudyView, VariantView


def significance(study: StudyView) -> list[Finding]:
    """With repeats: each variant against the baseline on the quality metric and training time (training time
    only when every factor is performance-only: accuracy differences there are nondeterminism)."""
    out: list[Finding] = []
    perf_only = performance_only_study(study)
    base = study.baseline
    if base is None or study.repeats < 2:
        return out
    for v in study.variants:
        if v is base:
            continue
        parts, figs = [], {}
        keys = ("train_time_s",) if perf_only else (study.quality_key, "train_time_s")
        for key in keys:
            m = BY_KEY[key]
            test = family_of(study, key).vs_baseline(v.name)
            if test is None:
                continue
            if v.busy_for(m) or base.busy_for(m):
                parts.append(f"{metric_label(key)} not judged (timed on a busy machine)")
                continue
            # Seeds the observed effect would need for 80% power, when this study had too few to show it.
            needed = test.seeds_needed() if not test.significant else None
            needed = needed if needed is not None and needed > test.n else None
            parts.append(_comparison_text(m, v, base, test, needed))
            figs[f"p_{key}"] = rounded(test.p, 3)
            figs[f"p_adjusted_{key}"] = rounded(test.p_adjusted, 3)
            figs[f"diff_{key}"] = rounded(test.diff)
            if test.effect_size is not None and math.isfinite(test.effect_size):
                figs[f"effect_size_{key}"] = rounded(test.effect_size, 3)
            if needed is not None:
                figs[f"seeds_needed_{key}"] = needed
        if parts:
            text = f"{v.name} vs {base.name}: " + "; ".join(parts) + f" (α = {ALPHA:g})."
            out.append(Finding("significance", "info", text, figs, anchors.STATISTICS, variant=v.name))
    return out


def _comparison_text(m: Metric, v: VariantView, base: VariantView, test: Comparison, needed: int | None) -> str:
    """E.g. ``test acc +1.2 pp, 95% bootstrap CI 90.1–91.0% vs 89.0–89.9% (paired t-test p = 0.004, Holm-adjusted
    0.012; d_z = 2.1): larger than the noise``; with too few seeds for the effect, how many it would take."""
    text = f"{metric_label(m.key)} {fmt_delta(m, v.mean(m.key), base.mean(m.key))}"
    cis = [v.bootstrap(m.key), base.bootstrap(m.key)]
    if all(cis):
        lo_v, hi_v = cis[0]  # type: ignore[misc]
        lo_b, hi_b = cis[1]  # type: ignore[misc]
        text += f", 95% bootstrap CI {fmt_range(m, lo_v, hi_v)} vs {fmt_range(m, lo_b, hi_b)}"
    stat = test.p_text
    if test.effect_size is not None and math.isfinite(test.effect_size):
        stat += f"; {'d_z' if test.paired else 'g'} = {test.effect_size:.2g}"
    text += f" ({stat}): {'larger than the noise' if test.significant else 'within the noise'}"
    if needed is not None:
        text += (
            f" — with the spread observed, a difference this size needs about {needed} seeds per variant to be "
            f"detected 80% of the time (this study has {test.n})"
        )
    return text


def fmt_range(m: Metric, lo: float, hi: float) -> str:
    """``90.1–91.0%`` in the metric's display unit."""
    unit = figure_text(m.key, hi)[len(fmt_value(m, hi)) :]
    return f"{fmt_value(m, lo)}–{fmt_value(m, hi)}{unit}"


def noise(study: StudyView) -> list[Finding]:
    """The noise finding, for a study with runs."""
    return [noise_finding(study)] if study.runs else []


def noise_finding(study: StudyView) -> Finding:
    """What the noise allows: the test used with repeats, or the within-run timing variation with one seed."""
    noise = study.timing_noise
    if study.repeats >= 2:
        text = (
            f"Each variant ran with up to {study.repeats} seeds: tables show mean ± 95% confidence interval "
            f"(t distribution) from 3 seeds, with a bootstrap interval beside it; with 2 seeds, the two values' "
            f"range (n = 2: low–high), since a t interval from 2 values means nothing. Every comparison — each "
            f"variant against the baseline, the best against the worst — is a {PAIRED_TEST_NAME} where both ran "
            f"the same seeds, else {TEST_NAME}; the p-values of one figure's comparisons are Holm-adjusted "
            f"together, and an adjusted p < {ALPHA:g} counts as larger than the noise. Whole numbers (epochs, "
            "counts) equal in every seed of both sides are not tested: they show no noise, not that there is none."
        )
        figs: dict[str, Any] = {"repeats": study.repeats, "alpha": ALPHA}
    else:
        text = "Each variant ran with one seed, so run-to-run variation was not measured. "
        figs = {"repeats": 1}
        if noise is not None:
            text += (
                f"Epoch times vary by {noise.cv_median * 100:.1f}% within a run (median coefficient of variation, "
                f"epoch 1 excluded, over {noise.runs} run{'s' if noise.runs != 1 else ''}; max "
                f"{noise.cv_max * 100:.1f}%, busy epochs left out). A single timing (latency) varies by that much, "
                "a total or mean over a run's epochs (train time, epoch time) by that over √(epochs − 1); a timing "
                "difference within twice its figure's noise cannot be told apart from it (≈)."
            )
            total = study.timing_noise_of("train_time_s")
            if total is not None:
                figs["train_time_noise"] = rounded(total, 3)
            figs.update(
                timing_cv_median=rounded(noise.cv_median, 3), timing_cv_max=rounded(noise.cv_max, 3), runs=noise.runs
            )
        else:
            text += (
                "Runs have fewer than 3 epochs, so timing variation could not be measured; treat small timing "
                "differences as noise."
            )
        text += " Use repeats = N in the study for confidence intervals and significance tests."
    return Finding("noise", "info", text, figs, anchors.STATISTICS)


__all__ = ["fmt_range", "noise", "noise_finding", "significance"]
